/** `cxr eval` as users run it (bin/cxr.js in a child process), on the real NIH subset's labels and images. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NIH_FINDINGS } from '../../src/data/labels.js';
import { SeededRandom } from '../../src/eval/random.js';
import { auroc } from '../../src/eval/roc.js';
import { REPO_ROOT, sharedDataPath } from '../helpers/fixtures.js';
import { NIH_SUBSET_CSV, syntheticProbability } from './real-data.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-eval-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function cxr(...args: string[]) {
  const run = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'cxr.js'), ...args], { encoding: 'utf8', env: { ...process.env, CXR_NO_REEXEC: '1' } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** The subset's Data_Entry rows as [image, findings]. */
const entries = readFileSync(NIH_SUBSET_CSV, 'utf8').trim().split(/\r?\n/).slice(1).map((line) => line.split(',').slice(0, 2) as [string, string]);

/** A predictions CSV as `cxr predict --csv` writes it, for the given rows of the subset. */
function writePredictions(name: string, rows: [string, string][], seed: number): { path: string; scores: number[][]; labels: number[][] } {
  const random = new SeededRandom(seed);
  const scores: number[][] = NIH_FINDINGS.map(() => []);
  const labels: number[][] = NIH_FINDINGS.map(() => []);
  const lines = [['file', ...NIH_FINDINGS, 'error'].join(',')];
  for (const [image, findings] of rows) {
    const probabilities = NIH_FINDINGS.map((finding, j) => {
      const label = findings.split('|').includes(finding) ? 1 : 0;
      const p = syntheticProbability(label, random);
      scores[j].push(p);
      labels[j].push(label);
      return p.toFixed(6);
    });
    lines.push([`nih/images/${image}`, ...probabilities, ''].join(','));
  }
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return { path, scores, labels };
}

describe('cxr eval', () => {
  const test = writePredictions('test.csv', entries.slice(0, 250), 1);
  const val = writePredictions('val.csv', entries.slice(250), 2);

  it('--help teaches with examples', () => {
    const help = cxr('eval', '--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Examples:[\s\S]*cxr eval test\.csv --labels Data_Entry_2017\.csv --out report\//);
    assert.match(help.stdout, /--threshold-rule <rule>/);
    assert.match(cxr('--help').stdout, /\n  eval /);
  });

  it('evaluates a predictions CSV: summary table, metrics.json, metrics.csv and an offline report.html', () => {
    const out = join(dir, 'report');
    const run = cxr('eval', test.path, '--labels', NIH_SUBSET_CSV, '--out', out, '--bootstrap', '300');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^finding\s+pos\s+neg\s+AUROC\s+DeLong 95%\s+bootstrap 95%/);
    assert.match(run.stdout, /\nmean \(14\)\s+0\.\d{3}\s+0\.\d{3}-0\.\d{3}/);
    assert.match(run.stderr, /note: 150 labelled image\(s\) of .*Data_Entry\.csv have no prediction and are not evaluated/);
    assert.match(run.stderr, /optimistic/);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    assert.equal(metrics.samples, 250);
    metrics.classes.forEach((k: { label: string; auroc: number }, j: number) => {
      assert.equal(k.label, NIH_FINDINGS[j]);
      assert.ok(Math.abs(k.auroc - auroc(test.scores[j], test.labels[j])) < 1e-12, k.label);
    });
    assert.equal(metrics.unmatched.labelsWithoutPredictions.count, 150);
    assert.equal(metrics.settings.bootstrap.resamples, 300);
    assert.equal(readFileSync(join(out, 'metrics.csv'), 'utf8').trim().split('\n').length, 16);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.doesNotMatch(html, /<script|\ssrc=|<link/i);
    assert.match(html, /predictions: .*test\.csv/);
  });

  it('--val chooses thresholds on validation predictions; --thresholds reuses them from metrics.json', () => {
    const out = join(dir, 'with-val');
    const run = cxr('eval', test.path, '--labels', NIH_SUBSET_CSV, '--val', val.path, '--threshold-rule', 'sensitivity:0.8', '--bootstrap', '0', '--out', out, '--json');
    assert.equal(run.code, 0, run.stderr);
    const metrics = JSON.parse(run.stdout);
    assert.equal(metrics.settings.thresholds.rule, 'sensitivity:0.8');
    assert.match(metrics.settings.thresholds.source, /chosen on .*val\.csv/);
    assert.equal(metrics.settings.bootstrap, null);
    const again = cxr('eval', test.path, '--labels', NIH_SUBSET_CSV, '--thresholds', join(out, 'metrics.json'), '--bootstrap', '0', '--out', join(dir, 'again'), '--json');
    assert.equal(again.code, 0, again.stderr);
    const reused = JSON.parse(again.stdout);
    assert.deepEqual(
      reused.classes.map((k: { operatingPoint: unknown }) => k.operatingPoint),
      metrics.classes.map((k: { operatingPoint: unknown }) => k.operatingPoint),
    );
  });

  it('bad inputs: clear errors naming file, row, column or images, and exit status 1', () => {
    const noColumn = join(dir, 'no-file-column.csv');
    writeFileSync(noColumn, 'image,Effusion\na.png,0.5\n');
    const missing = cxr('eval', noColumn, '--labels', NIH_SUBSET_CSV);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cxr: error: .*no-file-column\.csv: no "file" column/);

    const badValue = join(dir, 'bad-value.csv');
    writeFileSync(badValue, readFileSync(test.path, 'utf8').replace(/^(nih\/images\/00000075_000\.png,)[^,]*/m, '$1abc'));
    assert.match(cxr('eval', badValue, '--labels', NIH_SUBSET_CSV).stderr, /bad-value\.csv, row 1 \(line 2\), column "Atelectasis", value "abc": not a number/);

    const stranger = join(dir, 'stranger.csv');
    writeFileSync(stranger, `${readFileSync(test.path, 'utf8')}elsewhere/99999999_000.png,${NIH_FINDINGS.map(() => '0.5').join(',')},\n`);
    assert.match(cxr('eval', stranger, '--labels', NIH_SUBSET_CSV).stderr, /stranger\.csv: 1 predicted image has no labels in .*Data_Entry\.csv:\n  elsewhere\/99999999_000\.png/);

    assert.match(cxr('eval', test.path, '--labels', NIH_SUBSET_CSV, '--threshold-rule', 'sensitivity:2').stderr, /target must be a number in \(0, 1\]/);
    assert.match(cxr('eval', test.path, '--labels', NIH_SUBSET_CSV, '--bootstrap', '-1').stderr, /bootstrap resamples must be a whole number >= 0, got "-1"/);
    assert.match(cxr('eval', '--labels', NIH_SUBSET_CSV).stderr, /give a predictions CSV, or --model/);
    assert.match(cxr('eval', test.path, '--labels', join(dir, 'nope.csv')).stderr, /nope\.csv: cannot read the labels file/);
  });

  it('--model predicts the listed labelled images, evaluates them, and writes predictions.csv that evaluates the same', () => {
    const model = join(dir, 'mobilenet.onnx');
    const imported = cxr('import', sharedDataPath('weights', 'mobilenetv2-12-int8.onnx'), '--new-head', '--size', '64', '-o', model);
    assert.equal(imported.code, 0, imported.stderr);
    const list = join(dir, 'list.txt');
    writeFileSync(list, `${entries.slice(0, 40).map(([image]) => image).join('\n')}\n`);
    const out = join(dir, 'model-run');
    const run = cxr('eval', '--model', model, '--labels', NIH_SUBSET_CSV, '--list', list, '--bootstrap', '50', '--out', out, '--json');
    assert.equal(run.code, 0, run.stderr);
    const metrics = JSON.parse(run.stdout);
    assert.equal(metrics.samples, 40);
    assert.ok(existsSync(join(out, 'predictions.csv')));
    const rerun = cxr('eval', join(out, 'predictions.csv'), '--labels', NIH_SUBSET_CSV, '--bootstrap', '50', '--out', join(dir, 'rerun'), '--json');
    assert.equal(rerun.code, 0, rerun.stderr);
    const again = JSON.parse(rerun.stdout);
    metrics.classes.forEach((k: { label: string; auroc: number | null }, j: number) => {
      const other = again.classes[j].auroc;
      // predictions.csv keeps every digit of every probability: the same scores, so the same AUROC exactly.
      assert.equal(other, k.auroc, k.label);
    });
    assert.match(cxr('eval', '--model', model, '--labels', NIH_SUBSET_CSV, '--list', list, '--thresholds', 'model').stderr, /the model stores no thresholds; choose them on validation data with --val/);
  });
});
