/**
 * `cxr train --config configs/swin-t.yaml` runs end to end on a tiny real configuration: 48 NIH patients' 64 px
 * films (one each), one epoch, batch 4, 64 px. It checks that the recipe trains Swin-T with its optimiser and
 * warm-up and writes a Swin-T model and card, not that it learns (about 20 s on the shared cores).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { readModelInfo } from '../../src/models/metadata.js';
import { readModelFile } from '../../src/onnx/index.js';
import { REPO_ROOT, sharedDataPath } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-swin-train-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('cxr train --config configs/swin-t.yaml --epochs 1 trains Swin-T on a handful of real NIH films', () => {
  // The first film of each of the first 48 patients in the 64 px set's labels (a patient split needs whole patients).
  const [header, ...rows] = readFileSync(sharedDataPath('nih-cxr14-64px', 'labels.csv'), 'utf8').trim().split('\n');
  const seen = new Set<string>();
  const chosen = rows.filter((row) => {
    const patient = row.split(',').at(-1)!;
    if (seen.has(patient) || seen.size >= 48) return false;
    seen.add(patient);
    return true;
  });
  writeFileSync(join(dir, 'labels.csv'), [header, ...chosen].join('\n'));
  const out = join(dir, 'run');
  const run = spawnSync(
    process.execPath,
    [
      join(REPO_ROOT, 'bin', 'cxr.js'), 'train', '--config', join(REPO_ROOT, 'configs', 'swin-t.yaml'), '--epochs', '1',
      '-d', `nih:${join(dir, 'labels.csv')}:${sharedDataPath('nih-cxr14-64px', 'images')}`,
      '--set', 'split={"method":"patient","train":0.5,"validation":0.25,"test":0.25}', '--set', 'model.size=64', '--set', 'batchSize=4',
      '--set', `cacheDir=${join(dir, 'cache')}`, '--threads', '1', '--out', out,
    ],
    { encoding: 'utf8', env: { ...process.env, CXR_NO_REEXEC: '1' } },
  );
  assert.equal(run.status, 0, run.stderr);
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(config.model.architecture, 'swin_t');
  assert.equal(config.optimizer.weightDecayOn, 'weights');
  const steps = readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.event === 'step');
  assert.equal(steps.length, 6, '24 training films in batches of 4');
  assert.ok(steps.every((s) => Number.isFinite(s.loss) && s.loss > 0));
  // Linear warm-up over 2 epochs of 6 steps: step k at lr x k / 12.
  for (const [k, s] of steps.entries()) assert.ok(Math.abs(s.lr - (config.optimizer.lr * (k + 1)) / 12) < 1e-12, `step ${k + 1} lr ${s.lr}`);
  const info = readModelInfo(readModelFile(join(out, 'model.onnx')));
  assert.equal(info.architecture, 'swin_t');
  assert.match(readFileSync(join(out, 'model-card.md'), 'utf8'), /NOT FOR CLINICAL USE/);
});
