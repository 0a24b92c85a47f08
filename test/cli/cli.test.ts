/** The `cxr` command as users run it (bin/cxr.js in a child process), on real NIH images. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MODEL_PATH } from '../../src/api.js';
import { parseCsv } from '../../src/data/csv.js';
import { NIH_FINDINGS } from '../../src/data/labels.js';
import { readPredictionTable } from '../../src/eval/predictions.js';
import { readModelInfo } from '../../src/models/metadata.js';
import { readModelFile } from '../../src/onnx/index.js';
import { REPO_ROOT, sharedDataPath } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-cli-'));
const model = join(dir, 'mobilenet-nih.onnx');
const images = join(dir, 'images');
const nih = (name: string) => sharedDataPath('nih-cxr14-subset', 'images', name);
const NIH_IMAGES = ['00000075_000.png', '00000100_000.png', '00000129_000.png'];

function cxr(...args: string[]) {
  const run = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'cxr.js'), ...args], { encoding: 'utf8', env: { ...process.env, CXR_NO_REEXEC: '1' } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

before(() => {
  const imported = cxr('import', sharedDataPath('weights', 'mobilenetv2-12-int8.onnx'), '--new-head', '--size', '128', '-o', model);
  assert.equal(imported.code, 0, imported.stderr);
  spawnSync('mkdir', ['-p', images]);
  for (const name of NIH_IMAGES) copyFileSync(nih(name), join(images, name));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('cxr', () => {
  it('--help lists the commands, and each command teaches with examples', () => {
    const help = cxr('--help');
    assert.equal(help.code, 0);
    for (const command of ['predict', 'import', 'build', 'info']) assert.match(help.stdout, new RegExp(`\\n  ${command} `));
    assert.match(cxr('predict', '--help').stdout, /Examples:[\s\S]*--csv/);
    assert.match(cxr('import', '--help').stdout, /module\.[\s\S]*Examples:/);
  });

  it('predict --json: the documented object, 14 findings with probabilities, on a real NIH image', () => {
    const run = cxr('predict', join(images, NIH_IMAGES[0]), '--model', model, '--json');
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout);
    assert.equal(out.model.architecture, 'mobilenet_v2');
    assert.deepEqual(out.model.labels, [...NIH_FINDINGS]);
    assert.deepEqual(out.findings.map((f: { name: string }) => f.name), [...NIH_FINDINGS]);
    for (const f of out.findings) {
      assert.ok(f.probability > 0 && f.probability < 1);
      assert.ok(Math.abs(f.probability - 1 / (1 + Math.exp(-f.logit))) < 1e-12);
    }
    assert.deepEqual([out.image.width, out.image.height, out.image.format], [512, 512, 'png']);
  });

  it('without --model: the embedded default model, calibrated, each finding decided at its stored threshold', () => {
    const run = cxr('predict', join(images, NIH_IMAGES[0]), '--json');
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout);
    assert.equal(out.model.file, DEFAULT_MODEL_PATH);
    assert.equal(out.verdict, 'accepted', 'a real frontal NIH image passes the input checks');
    assert.deepEqual(out.findings.map((f: { name: string }) => f.name), [...NIH_FINDINGS]);
    // The rule, thresholds and calibration the model file stores (older models' thresholds, without intervals, load too).
    const info = readModelInfo(readModelFile(DEFAULT_MODEL_PATH));
    for (const f of out.findings) {
      assert.equal(f.calibrated, info.calibration?.values[f.name] !== undefined, f.name);
      if (f.threshold === null) {
        assert.equal(f.decision, null, f.name);
        assert.equal(f.decisionNote, info.thresholds?.withheld?.[f.name] ?? 'the model has no validated threshold for this finding');
        continue;
      }
      assert.equal(f.thresholdRule, info.thresholds?.rule);
      assert.equal(f.decision, f.probability >= f.threshold ? 'positive' : 'negative', f.name);
      assert.equal(f.decisionNote, null);
    }
    // Platt calibration: the probability is no longer the logit's plain sigmoid.
    assert.ok(out.findings.some((f: { probability: number; logit: number }) => Math.abs(f.probability - 1 / (1 + Math.exp(-f.logit))) > 1e-3));
  });

  it('predicts a folder in batches; batching does not change a prediction', () => {
    const single = JSON.parse(cxr('predict', join(images, NIH_IMAGES[1]), '--model', model, '--json').stdout);
    const folder = cxr('predict', images, '--model', model, '--json', '--batch-size', '2', '--csv', join(dir, 'out.csv'));
    assert.equal(folder.code, 0, folder.stderr);
    const out = JSON.parse(folder.stdout);
    assert.equal(out.images.length, NIH_IMAGES.length);
    const batched = out.images.find((r: { file: string }) => r.file.endsWith(NIH_IMAGES[1]));
    batched.findings.forEach((f: { probability: number }, i: number) => assert.ok(Math.abs(f.probability - single.findings[i].probability) < 1e-5));
    const csv = readFileSync(join(dir, 'out.csv'), 'utf8').trim().split('\n');
    assert.equal(csv[0], ['file', ...NIH_FINDINGS, 'verdict', 'flags', 'error'].join(','));
    assert.equal(csv.length, NIH_IMAGES.length + 1);
  });

  it('a command line of over 100 KB (a shell glob over thousands of films) is predicted, not killed by ONNX Runtime', () => {
    // Each argument names the same film through ~2,000 "./" (under PATH_MAX), so 26 predictions make 104 KB.
    const long = `${'./'.repeat(1990)}${NIH_IMAGES[0]}`;
    const files = Array.from({ length: 26 }, () => long);
    // The child must not inherit the setting from this process: the CLI itself has to turn the telemetry off.
    const env: NodeJS.ProcessEnv = { ...process.env, CXR_NO_REEXEC: '1' };
    delete env.ORT_DISABLE_TELEMETRY;
    const run = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'cxr.js'), 'predict', '--model', model, '--json', ...files], { cwd: images, encoding: 'utf8', env });
    assert.equal(run.signal, null, `killed by ${run.signal}`);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).images.length, files.length);
  });

  it('predict --csv keeps every digit (cxr eval reads back the exact probabilities); --show-rejected rows keep their verdict and flags, and stderr says they are shown', () => {
    const folder = join(dir, 'with-hip');
    spawnSync('mkdir', ['-p', folder]);
    for (const name of NIH_IMAGES) copyFileSync(nih(name), join(folder, name));
    // A real hip radiograph: its DICOM tags (Body Part Examined) make every model's input checks reject it.
    copyFileSync(sharedDataPath('dicom', 'neg2_CR_hip_MONO2_10bit_JPEGExtended_RG2.dcm'), join(folder, 'zz-hip.dcm'));
    const csvPath = join(dir, 'shown.csv');
    // The default model: calibrated, with stored thresholds.
    const run = cxr('predict', folder, '--json', '--show-rejected', '--csv', csvPath);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout);
    const hip = out.images.find((r: { file: string }) => r.file.endsWith('zz-hip.dcm'));
    assert.equal(hip.verdict, 'rejected-shown');
    assert.match(run.stderr, /1 of 4 inputs were rejected by the input checks; their findings are shown anyway as asked \(--show-rejected\)/);
    assert.doesNotMatch(run.stderr, /no findings given/);
    const table = readPredictionTable(parseCsv(readFileSync(csvPath, 'utf8'), csvPath));
    assert.deepEqual(table.labels, [...NIH_FINDINGS]);
    assert.deepEqual(table.failed, []);
    assert.deepEqual(table.rejectedShown, [{ path: hip.file, row: 4, flags: hip.inputFlags.map((f: { code: string }) => f.code) }]);
    assert.ok(table.rejectedShown![0].flags.length > 0);
    // Exactly the probabilities --json gives, so no two distinct values collapse into one.
    const json = out.images.flatMap((r: { findings: { probability: number }[] }) => r.findings.map((f) => f.probability));
    assert.deepEqual([...table.probabilities], json);
    NIH_FINDINGS.forEach((_, j) => {
      const column = out.images.map((r: { findings: { probability: number }[] }) => r.findings[j].probability);
      assert.equal(new Set(Array.from({ length: 4 }, (_, i) => table.probabilities[i * NIH_FINDINGS.length + j])).size, new Set(column).size);
    });
    // Without --show-rejected the hip image has no probabilities, its verdict and flags, and an error saying why.
    const hidden = cxr('predict', folder, '--csv', csvPath);
    assert.match(hidden.stderr, /1 of 4 inputs were rejected by the input checks \(no findings given; --show-rejected shows them anyway\)/);
    const rejected = readFileSync(csvPath, 'utf8').trim().split('\n')[4];
    assert.match(rejected, new RegExp(`^[^,]*zz-hip\\.dcm,${','.repeat(NIH_FINDINGS.length - 1)},rejected,[a-z-;]+,"?rejected by the input checks: `));
    assert.equal(readPredictionTable(parseCsv(readFileSync(csvPath, 'utf8'), csvPath)).failed.length, 1);
    // cxr eval reads the --show-rejected CSV back, evaluates the image shown anyway and says so.
    const labelsPath = join(dir, 'hip-labels.csv');
    const truth = (i: number) => NIH_FINDINGS.map((_, j) => String((i + j) % 2)).join(',');
    writeFileSync(labelsPath, `image,${NIH_FINDINGS.join(',')}\n${[...NIH_IMAGES, 'zz-hip.dcm'].map((name, i) => `${name},${truth(i)}`).join('\n')}\n`);
    cxr('predict', folder, '--show-rejected', '--csv', csvPath);
    const evaluated = cxr('eval', csvPath, '--labels', labelsPath, '--bootstrap', '0', '--out', join(dir, 'hip-eval'), '--json');
    assert.equal(evaluated.code, 0, evaluated.stderr);
    assert.equal(JSON.parse(evaluated.stdout).samples, 4);
    assert.match(evaluated.stderr, /note: 1 evaluated image\(s\) were rejected by the input checks and predicted anyway \(rejected-shown\): .*zz-hip\.dcm \(/);
  });

  it('a corrupt file in a folder is reported by name, the others are still predicted, and the exit status is 1', () => {
    const folder = join(dir, 'mixed');
    spawnSync('mkdir', ['-p', folder]);
    copyFileSync(nih(NIH_IMAGES[0]), join(folder, 'good.png'));
    writeFileSync(join(folder, 'broken.png'), readFileSync(nih(NIH_IMAGES[1])).subarray(0, 2000));
    const run = cxr('predict', folder, '--model', model, '--json');
    assert.equal(run.code, 1);
    const out = JSON.parse(run.stdout);
    assert.equal(out.images.find((r: { file: string }) => r.file.endsWith('good.png')).findings.length, 14);
    assert.match(out.images.find((r: { file: string }) => r.file.endsWith('broken.png')).error, /broken\.png/);
    assert.match(run.stderr, /1 of 2 files could not be predicted:\n  .*broken\.png/);
  });

  it('clear errors: no model, a missing image, a file that is not weights, bad option values', () => {
    assert.match(cxr('predict', join(dir, 'nope.png'), '--model', model).stderr, /cxr: error: .*nope\.png: no such file or folder/);
    const notWeights = cxr('import', nih(NIH_IMAGES[0]), '-o', join(dir, 'x.onnx'));
    assert.equal(notWeights.code, 1);
    assert.match(notWeights.stderr, /cxr: error: .*00000075_000\.png: not an ONNX model or a PyTorch checkpoint; it looks like a PNG image/);
    assert.match(cxr('predict', images, '--model', model, '--batch-size', '0').stderr, /batch size must be a positive whole number, got "0"/);
    assert.match(cxr('import', model, '-o', join(dir, 'y.onnx'), '--channels', '2').stderr, /channels must be 1 or 3, got "2"/);
    assert.match(cxr('predict', join(images, NIH_IMAGES[0]), '--model', nih(NIH_IMAGES[0])).stderr, /cxr: error: .*not (a readable ONNX model|an ONNX model)/);
  });

  it('build and info: an untrained model with the asked labels, channels and size', () => {
    const built = join(dir, 'tiny.onnx');
    assert.equal(cxr('build', 'densenet121', '-o', built, '--labels', 'Effusion,Cardiomegaly', '--channels', '1', '--size', '96').code, 0);
    const info = JSON.parse(cxr('info', built, '--json').stdout);
    assert.deepEqual(info.labels, ['Effusion', 'Cardiomegaly']);
    assert.deepEqual([info.preprocessing.channels, info.preprocessing.height], [1, 96]);
    assert.match(info.weights, /untrained/);
    assert.ok(info.parameters > 6.9e6 && info.parameters < 7.1e6, `densenet121 has about 7.0M parameters, got ${info.parameters}`);
    assert.match(cxr('build', 'vgg16', '-o', built).stderr, /unknown architecture "vgg16"; choose one of densenet121, resnet50, alexnet, mobilenet_v2/);
    assert.match(cxr('info', built).stdout, /measured +no model card beside the file/);
    writeFileSync(built.replace(/\.onnx$/, '.card.json'), '{"metrics": ');
    assert.match(cxr('info', built).stderr, /tiny\.card\.json: not a readable model card/);
    writeFileSync(built.replace(/\.onnx$/, '.card.json'), '{"model": {}}');
    assert.match(cxr('info', built).stderr, /tiny\.card\.json: a model card without held-out metrics/);
  });

  it("info: the default model's held-out AUROCs, as its model card measured them", () => {
    const card = JSON.parse(readFileSync(DEFAULT_MODEL_PATH.replace(/\.onnx$/, '.card.json'), 'utf8'));
    const info = JSON.parse(cxr('info', '--json').stdout);
    assert.equal(info.measured.meanAuroc, card.metrics.test.summary.meanAuroc);
    assert.equal(info.measured.findings.length, 14);
    const text = cxr('info').stdout;
    assert.match(text, new RegExp(`measured +mean AUROC ${card.metrics.test.summary.meanAuroc.toFixed(3)} \\(95% CI [0-9.]+-[0-9.]+\\) on the held-out test split \\(${card.metrics.test.samples} images\\)`));
    for (const k of card.metrics.test.classes) assert.match(text, new RegExp(`\\n +${k.label} +${k.auroc.toFixed(3)} \\(`));
  });
});
