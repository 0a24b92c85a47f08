/**
 * FullGrad, guided backpropagation, Guided Grad-CAM and Grad-CAM x Integrated Gradients equal their PyTorch
 * definitions (scripts/fixtures/make_attribution_parity.py, float64, pytorch-grad-cam's formulas) on a real NIH film
 * (64 px) through the zoo's random-weight MobileNetV2, two findings from one request.
 *
 * Tolerance: 1e-4 of each map's largest value. PyTorch's own float32 run lands 2-7e-7 from float64 on every map (the
 * generator records it); the maps are sums of ~10^3 float32 products and scalings, whose rounding (~1e-7 relative
 * each, growing as sqrt(n) with the summation order, which differs between AVX2 and AVX-512 kernels) stays two
 * orders below the bound. A map that breaks a definition (a missing layer, an unguided ReLU6, a misaligned
 * upsampling) moves by 1e-2 or more.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Explainer, type ExplanationMethod, explainWithRunner } from '../../src/explain/index.js';
import { biasLayers } from '../../src/explain/graphs.js';
import { computeGeometry, decodeImageFile } from '../../src/imaging/index.js';
import { importWeights } from '../../src/models/import/index.js';
import { modelInfoToMetadata } from '../../src/models/metadata.js';
import { GraphBuilder, createModel, float32 } from '../../src/onnx/index.js';
import { generated } from '../autodiff/generated.js';
import { readFixture, sharedDataPath } from '../helpers/fixtures.js';
import { relativeError } from '../helpers/numeric.js';

interface Case {
  method: ExplanationMethod;
  class: number;
  height: number;
  width: number;
  samples: number[];
  norm: number;
  projection: number;
  torch_float32_error: number;
}

const fixture = JSON.parse(new TextDecoder().decode(readFixture('explain', 'attribution-maps.json.br'))) as {
  film: string;
  mean: number[];
  std: number[];
  steps: number;
  stride: number;
  projection_seed: number;
  bias_layers: number;
  logits: number[];
  cases: Case[];
};
const SIZE = 64;
const TOLERANCE = 1e-4;

describe('FullGrad, guided backpropagation and the Grad-CAM hybrids against PyTorch on a real NIH film', () => {
  let explainer: Explainer;
  let input: Float32Array;
  before(async () => {
    const { model } = importWeights(readFixture('zoo', 'mobilenet_v2.pth.br'), 'mobilenet_v2.pth', { height: SIZE, width: SIZE });
    explainer = await Explainer.create(model, { threads: 2 });
    const image = await decodeImageFile(sharedDataPath(...fixture.film.split('/')));
    assert.deepEqual([image.width, image.height, image.maxValue], [SIZE, SIZE, 255]);
    // The generator's input: (v / 255 - mean) / std in float64, rounded to float32.
    input = new Float32Array(3 * SIZE * SIZE);
    for (let c = 0; c < 3; c++) image.pixels.forEach((v, i) => (input[c * SIZE * SIZE + i] = (v / 255 - fixture.mean[c]) / fixture.std[c]));
  });
  after(() => explainer.close());

  for (const method of [...new Set(fixture.cases.map((c) => c.method))]) {
    it(`${method}: two findings within ${TOLERANCE} of the map's scale`, async (t) => {
      const cases = fixture.cases.filter((c) => c.method === method);
      const prepared = { tensor: { dims: [3, SIZE, SIZE] as [number, number, number], data: input }, geometry: computeGeometry(SIZE, SIZE, { width: SIZE, height: SIZE, resize: 'stretch' }) };
      const explanation = await explainWithRunner(explainer.runner({ metadata: {} }), prepared, { mean: fixture.mean, std: fixture.std }, {
        method,
        findings: cases.map((c) => explainer.labels[c.class]),
        integratedGradients: { steps: fixture.steps },
      });
      cases.forEach((expected, k) => {
        const { map, logit } = explanation.findings[k];
        assert.deepEqual([map.height, map.width], [expected.height, expected.width]);
        assert.ok(Math.abs(logit - fixture.logits[expected.class]) <= 1e-4 * Math.max(...fixture.logits.map(Math.abs)), `logit ${logit}`);
        const samples: number[] = [];
        for (let y = 0; y < SIZE; y += fixture.stride) for (let x = 0; x < SIZE; x += fixture.stride) samples.push(map.data[y * SIZE + x]);
        const direction = generated(map.data.length, fixture.projection_seed);
        let norm = 0;
        let projection = 0;
        map.data.forEach((v, i) => {
          norm += v * v;
          projection += v * direction[i];
        });
        const sampleError = relativeError(samples, expected.samples);
        const normError = Math.abs(Math.sqrt(norm) - expected.norm) / expected.norm;
        // |projection| <= norm * |direction|, and |direction| = sqrt(4n / 3) for uniform(-2, 2) entries.
        const projectionError = Math.abs(projection - expected.projection) / (expected.norm * Math.sqrt((4 * map.data.length) / 3));
        t.diagnostic(`class ${expected.class}: samples ${sampleError.toExponential(2)}, norm ${normError.toExponential(2)}, projection ${projectionError.toExponential(2)} (PyTorch float32 ${expected.torch_float32_error.toExponential(2)})`);
        assert.ok(Math.max(sampleError, normError, projectionError) <= TOLERANCE, `${method} class ${expected.class}: ${sampleError}, ${normError}, ${projectionError}`);
        assert.ok(expected.samples.some((v) => v > 0), 'the reference map is not all zero');
      });
    });
  }

  it('FullGrad reads every bias layer PyTorch does: the 52 BatchNorms of MobileNetV2 (its convolutions have no bias)', async () => {
    const batch = { dtype: 'float32' as const, dims: [1, 3, SIZE, SIZE], data: input };
    const { layers } = await explainer.runner({ metadata: {} }).biasGradients!(batch, [3]);
    assert.equal(layers.length, fixture.bias_layers);
    assert.equal(fixture.bias_layers, 52);
  });

  it('the guided rules stay in their own graph: a model never explained before gives the same plain gradient after a guided one, and it differs from the guided', async () => {
    const fresh = await Explainer.create(explainer.model, { threads: 2 });
    try {
      const runner = fresh.runner({ metadata: {} });
      const batch = { dtype: 'float32' as const, dims: [1, 3, SIZE, SIZE], data: input };
      const guided = await runner.inputGradients(batch, [3], 'guided');
      const plain = await runner.inputGradients(batch, [3]);
      const before = await explainer.runner({ metadata: {} }).inputGradients(batch, [3]);
      assert.deepEqual(plain.gradients, before.gradients);
      assert.equal(guided.logits[0], plain.logits[0]);
      assert.ok(relativeError(guided.gradients, plain.gradients) > 0.1, 'guided backpropagation changes the gradient');
    } finally {
      await fresh.close();
    }
  });
});

describe('FullGrad\'s bias layers', () => {
  it('a Conv\'s bias as it is, a BatchNorm\'s inference bias B - mean x scale / sqrt(var + eps), and nothing off the path to the logits', () => {
    const b = new GraphBuilder('biases');
    const image = b.input('image', 'float32', ['batch', 1, 4, 4]);
    const kernel = b.initializer('conv.weight', float32([2, 1, 1, 1], [1, -1]));
    const conv = b.op('Conv', [image, kernel, b.initializer('conv.bias', float32([2], [0.5, -0.25]))], {}, { name: 'conv' });
    const parameters = (name: string, values: number[]) => b.initializer(`bn.${name}`, float32([2], values));
    const bn = b.op('BatchNormalization', [conv, parameters('weight', [2, 3]), parameters('bias', [1, 0]), parameters('mean', [0.5, -1]), parameters('var', [4, 0.09])], { epsilon: 1e-5 }, { name: 'bn' });
    const side = b.op('Conv', [image, b.initializer('side.weight', float32([1, 1, 1, 1], [1])), b.initializer('side.bias', float32([1], [7]))], {}, { name: 'side' });
    const pooled = b.op('Flatten', [b.op('GlobalAveragePool', [bn], {}, { name: 'pool' })], { axis: 1 }, { name: 'flatten' });
    b.output(pooled, 'logits');
    b.output(bn, 'features');
    b.output(side, 'side_output');
    const model = createModel(
      b.build(),
      modelInfoToMetadata({
        architecture: 'test-biases',
        labels: ['A', 'B'],
        preprocessing: { height: 4, width: 4, channels: 1, mean: [0.5], std: [0.25], resize: 'stretch' },
        io: { input: 'image', logits: 'logits', features: 'features' },
        blocks: [],
        weights: 'hand-set',
      }),
    );
    const layers = biasLayers(model);
    assert.deepEqual(layers.map((l) => l.tensor), ['conv', 'bn']);
    assert.deepEqual([...layers[0].bias], [0.5, -0.25]);
    const expected = [1 - (0.5 * 2) / Math.sqrt(4 + 1e-5), 0 - (-1 * 3) / Math.sqrt(0.09 + 1e-5)];
    layers[1].bias.forEach((v, c) => assert.ok(Math.abs(v - expected[c]) < 1e-6, `channel ${c}: ${v} vs ${expected[c]}`));
  });
});
