/**
 * The checkpoints the chest X-ray field publishes, imported with no options: torchxrayvision's DenseNet-121 (state
 * dict and whole pickled module) and ResNet-50, and CheXNet re-implementations (arnoweng's DataParallel legacy
 * checkpoint, jrzech's {'model': model, ...}). Fixtures and PyTorch's outputs on real NIH films come from
 * scripts/fixtures/make_ecosystem_checkpoints.py; here each film goes through the imported model's own stored
 * preprocessing and must reproduce PyTorch's logits and each project's own outputs (xrv's op_norm, CheXNet's
 * sigmoid) to 1e-4.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { NIH_FINDINGS } from '../../src/data/labels.js';
import { decodeImageFile } from '../../src/imaging/index.js';
import { preprocess } from '../../src/imaging/preprocess.js';
import { type ImportResult, importWeights } from '../../src/models/import/index.js';
import { XRV_PATHOLOGIES } from '../../src/models/import/presets.js';
import { readModelInfo } from '../../src/models/metadata.js';
import { float32, readModelFile } from '../../src/onnx/index.js';
import { REPO_ROOT, fixturePath, readFixture, sharedDataPath } from '../helpers/fixtures.js';
import { relativeError } from '../helpers/numeric.js';
import { runOnce } from '../helpers/session.js';

interface Case {
  files: string[];
  size: number;
  /** [image][output] in the file's output order. */
  logits: number[][];
  /** What the source framework's forward returns: xrv's op_norm outputs, CheXNet's probabilities. */
  outputs: number[][];
  torch_float32_error: number;
  op_threshs?: (number | null)[];
}

const expected: { images: string[]; xrv_labels: string[]; cases: Record<string, Case> } = JSON.parse(
  readFileSync(fixturePath('pytorch', 'ecosystem', 'expected.json'), 'utf8'),
);
const XRV_EXTRAS = ['Lung Lesion', 'Fracture', 'Lung Opacity', 'Enlarged Cardiomediastinum'];
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** torchxrayvision's op_norm: a probability rescaled so that its operating point lands on 0.5 (no point: 0.5). */
function opNorm(p: number, threshold: number | undefined): number {
  if (threshold === undefined) return 0.5;
  return p < threshold ? p / (threshold * 2) : 1 - (1 - p) / ((1 - threshold) * 2);
}

function importFixture(file: string, as = file.replace(/\.br$/, '')): ImportResult {
  return importWeights(readFixture('pytorch', 'ecosystem', file), as);
}

const XRV_ALL_RELEASE = 'nih-pc-chex-mimic_ch-google-openi-kaggle-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt';
const XRV_RESNET_RELEASE = 'pc-nih-rsna-siim-vin-resnet50-test512-e400-state.pt';

/** The imported model's logits on the real films, each through the model's own stored preprocessing. */
async function logitsOnFilms(result: ImportResult): Promise<Float32Array> {
  const spec = readModelInfo(result.model).preprocessing;
  const plane = spec.channels * spec.height * spec.width;
  const batch = float32([expected.images.length, spec.channels, spec.height, spec.width]);
  for (const [i, image] of expected.images.entries()) batch.data.set(preprocess(await decodeImageFile(sharedDataPath(image)), spec).tensor.data, i * plane);
  return (await runOnce(result.model, { image: batch }, 2)).logits.data as Float32Array;
}

/** Our outputs rearranged into the file's output order, [image][output] flattened. */
function inFileOrder(ours: Float32Array, labels: string[], fileLabels: readonly string[]): number[] {
  const at = fileLabels.map((name) => labels.indexOf(name));
  assert.ok(at.every((i) => i >= 0), `every output of the file has a place in the model: ${labels.join(', ')}`);
  return expected.images.flatMap((_, i) => at.map((j) => ours[i * labels.length + j]));
}

describe('torchxrayvision checkpoints', () => {
  // State dicts of xrv's models (op_threshs inside), and its releases as published (a whole pickled DenseNet without
  // op_threshs; the ResNet's inner torchvision state dict), whose operating points come from xrv's table by file name.
  for (const [name, arch, file, as] of [
    ['xrv_densenet121', 'densenet121', 'xrv_densenet121.pth.br', 'weights.pth'],
    ['xrv_densenet121', 'densenet121', 'xrv_densenet121_module.pt.br', XRV_ALL_RELEASE],
    ['xrv_resnet50', 'resnet50', 'xrv_resnet50.pth.br', 'weights.pth'],
    ['xrv_resnet50', 'resnet50', 'xrv_resnet50_published.pth.br', XRV_RESNET_RELEASE],
  ] as const) {
    it(`${file} as ${as}: recognised as xrv, NIH's 14 first, op_threshs as thresholds, logits and op_norm outputs match PyTorch on real films`, async (t) => {
      const c = expected.cases[name];
      const result = importFixture(file, as);
      const info = readModelInfo(result.model);
      assert.equal(result.architecture, arch);
      assert.equal(result.preset.name, 'xrv');
      assert.deepEqual(result.report.missing, []);
      assert.deepEqual(result.report.unexpected, []);
      // [0, 255] -> [-1024, 1024] on one channel, centre crop, xrv's native size.
      assert.deepEqual(info.preprocessing, { height: c.size, width: c.size, channels: 1, mean: [0.5], std: [1 / 2048], resize: 'crop' });
      assert.deepEqual(info.labels, [...NIH_FINDINGS, ...XRV_EXTRAS]);
      assert.deepEqual(expected.xrv_labels, [...XRV_PATHOLOGIES]);

      // Thresholds: each output's op_thresh, NaN ones withheld with the reason.
      const points = c.op_threshs ?? [];
      XRV_PATHOLOGIES.forEach((label, i) => {
        const point = points[i];
        if (point === null) assert.match(info.thresholds?.withheld?.[label] ?? '', /no operating point .*op_threshs is NaN/, label);
        else assert.ok(Math.abs((info.thresholds?.values[label] ?? NaN) - point) < 1e-7, `${label}: ${info.thresholds?.values[label]} vs ${point}`);
      });
      assert.match(info.thresholds?.rule ?? '', /op_threshs/);
      assert.match(info.thresholds?.source ?? '', as === 'weights.pth' ? /stored in weights\.pth/ : /torchxrayvision's ".*-all" weights .*matched by the file name/);

      const ours = inFileOrder(await logitsOnFilms(result), info.labels, XRV_PATHOLOGIES);
      const logitError = relativeError(ours, c.logits.flat());
      assert.ok(logitError < 1e-4, `logits relative error ${logitError} (PyTorch float32: ${c.torch_float32_error})`);
      // xrv's forward output, from our probability and the model's stored threshold; and the decision it implies.
      const normed = ours.map((logit, k) => opNorm(sigmoid(logit), info.thresholds?.values[XRV_PATHOLOGIES[k % XRV_PATHOLOGIES.length]]));
      const outputError = Math.max(...normed.map((v, k) => Math.abs(v - c.outputs.flat()[k])));
      assert.ok(outputError < 1e-4, `op_norm outputs differ by ${outputError}`);
      t.diagnostic(`logits relative error ${logitError.toExponential(2)} (PyTorch float32 ${c.torch_float32_error.toExponential(2)}), op_norm outputs max difference ${outputError.toExponential(2)}`);
      const sides = normed.map((v) => v >= 0.5);
      assert.deepEqual(sides, c.outputs.flat().map((v) => v >= 0.5));
      assert.ok(sides.includes(true) && sides.includes(false), 'the films fall on both sides of the operating points');
    });
  }
});

describe('torchxrayvision releases without operating points in the file', () => {
  it("under the name of xrv's NIH-only weights: the 4 untrained outputs are kept without thresholds", () => {
    const result = importFixture('xrv_densenet121_module.pt.br', 'nih-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt');
    const thresholds = readModelInfo(result.model).thresholds;
    assert.deepEqual(Object.keys(thresholds?.values ?? {}), [...NIH_FINDINGS]);
    assert.equal(thresholds?.values.Hernia, 0.0004403434);
    for (const extra of XRV_EXTRAS) assert.match(thresholds?.withheld?.[extra] ?? '', /not trained for these weights/, extra);
    assert.ok(result.notes.some((n) => /marks 4 outputs as not trained .*Lung Lesion/.test(n)), result.notes.join('\n'));
  });

  it('under another name: no thresholds, and the notes say why', () => {
    const result = importFixture('xrv_densenet121_module.pt.br', 'renamed.pt');
    assert.equal(result.preset.name, 'xrv');
    assert.equal(readModelInfo(result.model).thresholds, undefined);
    assert.ok(result.notes.some((n) => /no operating points: the file holds no op_threshs/.test(n)), result.notes.join('\n'));
  });
});

describe('CheXNet re-implementations', () => {
  for (const file of ['chexnet.pth.tar.br', 'chexnet_module.pth.br']) {
    it(`${file}: recognised as chexnet; logits are the Linear's output (not the file's probabilities) on real films`, async (t) => {
      const c = expected.cases.chexnet;
      const result = importFixture(file);
      const info = readModelInfo(result.model);
      assert.equal(result.preset.name, 'chexnet');
      assert.deepEqual(info.preprocessing, { height: 224, width: 224, channels: 3, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], resize: 'crop' });
      assert.deepEqual(info.labels, [...NIH_FINDINGS]);
      assert.equal(info.thresholds, undefined);
      const ours = Array.from(await logitsOnFilms(result));
      const logitError = relativeError(ours, c.logits.flat());
      assert.ok(logitError < 1e-4, `logits relative error ${logitError} (PyTorch float32: ${c.torch_float32_error})`);
      const probabilityError = Math.max(...ours.map((logit, k) => Math.abs(sigmoid(logit) - c.outputs.flat()[k])));
      assert.ok(probabilityError < 1e-4, `sigmoid of our logits vs the file's probabilities: ${probabilityError}`);
      t.diagnostic(`logits relative error ${logitError.toExponential(2)} (PyTorch float32 ${c.torch_float32_error.toExponential(2)}), probabilities max difference ${probabilityError.toExponential(2)}`);
      // A sigmoid left in the graph would give probabilities in (0, 1) here instead of the logits.
      assert.ok(ours.every((logit) => logit < 0) && c.outputs.flat().every((p) => p > 0));
    });
  }

  it('`cxr import chexnet.pth.tar -o chexnet.onnx` works as the README writes it, with renames summarised', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cxr-chexnet-'));
    writeFileSync(join(dir, 'chexnet.pth.tar'), readFixture('pytorch', 'ecosystem', 'chexnet.pth.tar.br'));
    const run = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'cxr.js'), 'import', 'chexnet.pth.tar', '-o', 'chexnet.onnx'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, CXR_NO_REEXEC: '1' },
    });
    assert.equal(run.status, 0, run.stderr);
    const lines = run.stdout.trim().split('\n');
    assert.ok(lines.length <= 12, `a summary, not one line per key:\n${run.stdout}`);
    assert.match(run.stdout, /606 tensors loaded/);
    assert.match(run.stdout, /chexnet preset/);
    assert.match(run.stdout, /DataParallel's "module\." prefix removed: 606 keys/);
    assert.match(run.stdout, /pre-0\.4 torchvision DenseNet names .*: 580 keys/);
    assert.match(run.stdout, /classifier unwrapped .*: 2 keys/);
    const info = readModelInfo(readModelFile(join(dir, 'chexnet.onnx')));
    assert.equal(info.architecture, 'densenet121');
    assert.match(info.weights, /imported from chexnet\.pth\.tar/);
  });
});

describe('presets and overrides', () => {
  it('--preset and pixel overrides replace parts of the recognised contract; a 1-value mean spreads over channels', () => {
    const bytes = readFixture('pytorch', 'ecosystem', 'xrv_densenet121.pth.br');
    const result = importWeights(bytes, 'xrv.pth', { height: 64, preprocessing: { mean: [0.25], resize: 'stretch' } });
    assert.deepEqual(readModelInfo(result.model).preprocessing, { height: 64, width: 64, channels: 1, mean: [0.25], std: [1 / 2048], resize: 'stretch' });
    const chexnet = importWeights(readFixture('pytorch', 'ecosystem', 'chexnet_module.pth.br'), 'c.pth', { preset: 'imagenet', height: 64, preprocessing: { std: [0.5] } });
    assert.deepEqual(chexnet.preset, { name: 'imagenet', reason: 'chosen with the preset option' });
    assert.deepEqual(readModelInfo(chexnet.model).preprocessing, { height: 64, width: 64, channels: 3, mean: [0.485, 0.456, 0.406], std: [0.5, 0.5, 0.5], resize: 'pad' });
  });

  it('given labels name the file outputs as they are: no reordering, thresholds follow them', () => {
    const names = XRV_PATHOLOGIES.map((n) => `xrv ${n}`);
    const result = importWeights(readFixture('pytorch', 'ecosystem', 'xrv_resnet50.pth.br'), 'r.pth', { labels: names, height: 64 });
    const info = readModelInfo(result.model);
    assert.deepEqual(info.labels, names);
    assert.deepEqual(Object.keys(info.thresholds?.withheld ?? {}), ['xrv Lung Lesion', 'xrv Enlarged Cardiomediastinum']);
  });

  it('a fresh head for fine-tuning drops the file\'s operating points', () => {
    const result = importWeights(readFixture('pytorch', 'ecosystem', 'xrv_densenet121.pth.br'), 'x.pth', { newHead: true, height: 64 });
    assert.equal(readModelInfo(result.model).thresholds, undefined);
    assert.equal(readModelInfo(result.model).labels.length, 14);
    assert.equal(readModelInfo(result.model).preprocessing.channels, 1);
  });

  it('refuses a whole pickled model of an unknown class through importWeights, naming it', () => {
    const bytes = new Uint8Array(readFileSync(fixturePath('pytorch', 'ecosystem', 'unknown_module_class.pth')));
    assert.throws(() => importWeights(bytes, 'mine.pth'), /mine\.pth: .*class model\.CheXNetPlus, which this reader does not know/);
  });
});
