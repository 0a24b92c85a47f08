/** Weight import beyond the name-for-name parity cases: structure, quantised files, transfer learning, bad files. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { importWeights } from '../../src/models/import/index.js';
import { alignKeyNames } from '../../src/models/import/keys.js';
import { readModelInfo } from '../../src/models/metadata.js';
import { parameterSlots } from '../../src/models/parameters.js';
import { buildModel } from '../../src/models/zoo/index.js';
import { GraphBuilder, type HostTensor, createModel, encodeModel, float32 } from '../../src/onnx/index.js';
import { OrtSession } from '../../src/runtime/session.js';
import { fixturePath, readFixture, sharedDataPath } from '../helpers/fixtures.js';
import { parityInput, relativeError } from '../helpers/numeric.js';
import { runOnce } from '../helpers/session.js';

const parity = JSON.parse(readFileSync(fixturePath('zoo', 'parity.json'), 'utf8'));
const IMAGENET_LABELS = Array.from({ length: 1000 }, (_, i) => `imagenet_${i}`);


/**
 * ONNX Runtime's u8s8 int8 kernels are exact only with VNNI instructions; on AVX2 without them the 16-bit
 * intermediate sums saturate (ONNX Runtime's quantisation docs), so the int8 model's own output is then no reference
 * for our float dequantisation: there the photos' expected ImageNet classes are the check.
 */
const EXACT_INT8 = (() => {
  try {
    return /\b(avx512_vnni|avx_vnni|amx_int8)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return true;
  }
})();

describe('import by structure', () => {
  it('a default torch.onnx.export with BatchNorms folded into convolutions reproduces torchvision', async () => {
    const result = importWeights(readFixture('zoo', 'densenet121.fused.onnx.br'), 'densenet121.fused.onnx', { height: 64, width: 64 });
    assert.equal(result.architecture, 'densenet121');
    assert.equal(result.method, 'structure');
    // conv0+norm0, each dense layer's conv1+norm2: 1 + 58 folded pairs; the BatchNorms after concatenations stay.
    assert.match(result.notes.join(' '), /^59 BatchNorm layers were folded/);
    const outputs = await runOnce(result.model, { image: float32([2, 3, 64, 64], parityInput(2 * 3 * 64 * 64)) }, 2);
    const bytes = readFixture('zoo', 'densenet121.fused.expected.bin');
    const expected = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    const logitCount = parity.architectures['densenet121.fused'].logits.reduce((a: number, b: number) => a * b, 1);
    assert.ok(relativeError(outputs.logits.data as Float32Array, expected.subarray(0, logitCount)) < 1e-4);
    assert.ok(relativeError(outputs.features.data as Float32Array, expected.subarray(logitCount)) < 1e-4);
  });

  it("the ONNX model zoo's int8 MobileNetV2 dequantises to a float model that classifies real photos like the original", async (t) => {
    const file = sharedDataPath('weights', 'mobilenetv2-12-int8.onnx');
    const bytes = readFileSync(file);
    const result = importWeights(bytes, file, { labels: IMAGENET_LABELS });
    assert.equal(result.architecture, 'mobilenet_v2');
    assert.equal(result.method, 'structure');
    assert.match(result.format, /quantised/);
    assert.equal(result.report.missing.length, 0);
    const ours = await OrtSession.create(result.model, { threads: 2 });
    const original = await OrtSession.create(bytes, { threads: 2 });
    try {
      for (const [photo, expectedClasses] of [
        ['chelsea.png', [281, 282, 283, 284, 285]], // a tabby cat: ImageNet's domestic cat classes
        ['coffee.png', [967, 968]], // espresso, cup
        ['astronaut.png', undefined],
        ['rocket.jpg', undefined],
      ] as const) {
        const x = await imagenetTensor(sharedDataPath('natural-photos', photo));
        const a = (await ours.run({ image: x })).logits.data as Float32Array;
        const b = (await original.run({ input: x })).output.data as Float32Array;
        const topOurs = topK(a, 1)[0];
        if (EXACT_INT8) {
          assert.ok(topK(b, 3).includes(topOurs), `${photo}: our top class ${topOurs} is not in the int8 model's top 3 ${topK(b, 3)}`);
          assert.ok(correlation(a, b) > 0.95, `${photo}: logits correlate ${correlation(a, b)} with the int8 model's`);
        } else {
          t.diagnostic(`${photo}: logits correlate ${correlation(a, b).toFixed(3)} with ONNX Runtime's int8 run, which saturates on this CPU (no VNNI)`);
        }
        if (expectedClasses) assert.ok((expectedClasses as readonly number[]).includes(topOurs), `${photo}: top class ${topOurs}`);
      }
    } finally {
      await ours.release();
      await original.release();
    }
  });
});

describe('transfer learning and channel adaptation', () => {
  it('refuses a 1000-class head for 14 labels, and starts a fresh head when asked', () => {
    const bytes = readFileSync(sharedDataPath('weights', 'mobilenetv2-12-int8.onnx'));
    assert.throws(() => importWeights(bytes, 'mobilenet.onnx'), /classifier has 1000 outputs, not the 14 NIH findings.*--new-head/);
    const result = importWeights(bytes, 'mobilenet.onnx', { newHead: true });
    assert.deepEqual(readModelInfo(result.model).labels.length, 14);
    assert.deepEqual(result.report.reinitialized.sort(), ['classifier.1.bias', 'classifier.1.weight']);
    assert.match(readModelInfo(result.model).weights, /new classifier head/);
    // A recipe asking for the patient-metadata input on a pretrained backbone gets it, with a fresh metadata head.
    const withMetadata = importWeights(bytes, 'mobilenet.onnx', { newHead: true, metadata: true });
    assert.equal(readModelInfo(withMetadata.model).io.metadata, 'metadata');
    assert.deepEqual(withMetadata.report.reinitialized.sort(), ['classifier.1.bias', 'classifier.1.weight', 'metadata_head.bias', 'metadata_head.weight']);
  });

  it('sums RGB first-layer kernels for a 1-channel model, giving the same output on gray images', async () => {
    const bytes = readFixture('zoo', 'mobilenet_v2.pth.br');
    const rgb = importWeights(bytes, 'mobilenet_v2.pth', { height: 64, width: 64 });
    const gray = importWeights(bytes, 'mobilenet_v2.pth', { height: 64, width: 64, channels: 1 });
    assert.deepEqual(gray.report.adapted, ['features.0.0.weight: summed over 3 input channels for a 1-channel model']);
    const plane = parityInput(64 * 64);
    const replicated = float32([1, 3, 64, 64], [...plane, ...plane, ...plane]);
    const a = await runOnce(rgb.model, { image: replicated }, 2);
    const b = await runOnce(gray.model, { image: float32([1, 1, 64, 64], plane) }, 2);
    assert.ok(relativeError(b.logits.data as Float32Array, a.logits.data as Float32Array) < 1e-5);
  });
});

describe('key names', () => {
  it("strips a wrapper prefix and unwraps a Sequential head (CheXNet's densenet121.classifier.0)", () => {
    const expected = new Set(parameterSlots(buildModel('densenet121', { height: 64 })).map((s) => s.name));
    const dict = new Map([...expected].map((name) => [`densenet121.${name.replace(/^classifier\./, 'classifier.0.')}`, float32([1])]));
    const { dict: aligned, renamed } = alignKeyNames(dict, expected);
    assert.deepEqual(new Set(aligned.keys()), expected);
    assert.ok(renamed.some((r) => r.from === 'densenet121.classifier.0.weight' && r.to === 'classifier.weight'));
  });
});

describe('bad weight files', () => {
  it('names every missing, unexpected and mis-shaped tensor of a state dict that does not fit', () => {
    const foreign = buildModel('mobilenet_v2', { height: 64 });
    foreign.graph.initializers.set('features.1.conv.1.weight', float32([16, 32, 1, 1 + 1]));
    foreign.graph.initializers.delete('features.2.conv.0.1.running_var');
    const conv = foreign.graph.nodes.find((n) => n.name === 'features.2.conv.0.1');
    assert.ok(conv);
    conv.inputs[4] = 'features.2.extra';
    foreign.graph.initializers.set('features.2.extra', float32([96]));
    assert.throws(
      () => importWeights(encodeModel(foreign), 'broken.onnx', { height: 64 }),
      (error: Error) =>
        /broken\.onnx: the weights do not fit the mobilenet_v2 model/.test(error.message) &&
        error.message.includes('missing from the file (1): features.2.conv.0.1.running_var') &&
        error.message.includes('in the file but not in the model (1): features.2.extra') &&
        error.message.includes('features.1.conv.1.weight (model [16, 32, 1, 1], file [16, 32, 1, 2])'),
    );
  });

  it('says what a file is when it is not weights', () => {
    const png = readFileSync(sharedDataPath('nih-cxr14-subset', 'images-1024', '00000001_000.png'));
    assert.throws(() => importWeights(png, 'x.png'), /x\.png: not an ONNX model or a PyTorch checkpoint; it looks like a PNG image/);
    assert.throws(() => importWeights(new Uint8Array(), 'empty.onnx'), /empty\.onnx: .*an empty file/);
  });

  it('reports a truncated ONNX file and a truncated checkpoint', () => {
    const onnx = readFixture('zoo', 'mobilenet_v2.onnx.br');
    assert.throws(() => importWeights(onnx.subarray(0, onnx.length / 2), 'cut.onnx'), /cut\.onnx: not a readable ONNX model/);
    const pth = readFixture('zoo', 'mobilenet_v2.pth.br');
    assert.throws(() => importWeights(pth.subarray(0, pth.length / 2), 'cut.pth'), /cut\.pth: .*truncated/i);
  });

  it('reports the tensors of a smaller DenseNet than densenet121 before anything about its labels', () => {
    const tiny = readFileSync(fixturePath('pytorch', 'densenet_tiny.pth'));
    assert.throws(() => importWeights(tiny, 'tiny.pth'), /tiny\.pth: the weights do not fit the densenet121 model:\n  missing from the file \(\d+\): features\.denseblock1\.denselayer2/);
  });

  it('asks which architecture when neither names nor layer counts tell', () => {
    const b = new GraphBuilder('small');
    const x = b.input('input', 'float32', [1, 3, 8, 8]);
    const y = b.op('Conv', [x, b.constant(float32([4, 3, 3, 3]), 'onnx::Conv_1')], { kernel_shape: [3, 3] });
    b.output(b.op('GlobalAveragePool', [y]));
    assert.throws(() => importWeights(encodeModel(createModel(b.build())), 'anonymous.onnx'), /anonymous\.onnx: cannot tell which architecture/);
  });
});

async function imagenetTensor(path: string): Promise<HostTensor<'float32'>> {
  const { data } = await sharp(path).removeAlpha().toColourspace('srgb').resize(224, 224, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const x = float32([1, 3, 224, 224]);
  const plane = 224 * 224;
  for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) x.data[c * plane + i] = (data[i * 3 + c] / 255 - mean[c]) / std[c];
  return x;
}

function topK(values: Float32Array, k: number): number[] {
  return Array.from(values, (v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, k).map((p) => p[1]);
}

function correlation(a: Float32Array, b: Float32Array): number {
  const mean = (v: Float32Array) => v.reduce((s, x) => s + x, 0) / v.length;
  const [ma, mb] = [mean(a), mean(b)];
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - ma) * (b[i] - mb);
    da += (a[i] - ma) ** 2;
    db += (b[i] - mb) ** 2;
  }
  return num / Math.sqrt(da * db);
}
