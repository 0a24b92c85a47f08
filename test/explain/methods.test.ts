/**
 * The methods' own rules on hand-computed examples, and their behaviour through the Explainer on a real NIH image
 * (MobileNetV2 with the zoo parity weights at 64 px): several findings in one pass equal one at a time, the
 * probability target is the chain rule, Integrated Gradients add up to the score difference (on a smooth model), and requests that
 * cannot be served fail naming what is valid.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  EXPLANATION_METHODS,
  Explainer,
  GradCam,
  GradCamPlusPlus,
  HiResCam,
  LayerCam,
  XGradCam,
  explainWithRunner,
  inputGradientMethod,
} from '../../src/explain/index.js';
import { type DecodedImage, decodeImageFile } from '../../src/imaging/index.js';
import { importWeights } from '../../src/models/import/index.js';
import { modelInfoToMetadata } from '../../src/models/metadata.js';
import { GraphBuilder, createModel, float32 } from '../../src/onnx/index.js';
import { readFixture, sharedDataPath } from '../helpers/fixtures.js';

describe('CAM weighting rules (pytorch-grad-cam formulas) on a 2-channel, 1 x 2 example', () => {
  // A0 = [1, 3], A1 = [2, 0]; G0 = [1, 3], G1 = [-2, 0].
  const activation = Float32Array.of(1, 3, 2, 0);
  const gradient = Float32Array.of(1, 3, -2, 0);
  const dims = [2, 1, 2] as const;
  const cam = (method: { map: GradCam['map'] }) => [...method.map(activation, gradient, dims).data];
  const close = (actual: number[], expected: number[]) => actual.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-6, `${actual} vs ${expected}`));

  it('Grad-CAM: mean gradient per channel, weighted sum, ReLU', () => close(cam(new GradCam()), [0, 6]));
  it('HiResCAM: sum over channels of gradient x activation, ReLU', () => close(cam(new HiResCam()), [0, 9]));
  it('LayerCAM: sum over channels of ReLU(gradient) x activation', () => close(cam(new LayerCam()), [1, 9]));
  it('XGrad-CAM: sum(G A) / sum(A) per channel', () => close(cam(new XGradCam()), [0, 2.5 * 3 - 2 * 0]));
  it('Grad-CAM++: alpha = G^2 / (2 G^2 + sum(A) G^3 + 1e-6) on positive gradients', () => {
    const w0 = 1 / (2 + 4 + 1e-6) + (9 / (18 + 4 * 27 + 1e-6)) * 3;
    close(cam(new GradCamPlusPlus()), [w0 * 1, w0 * 3]);
  });
  it('refuses mismatched sizes', () => {
    assert.throws(() => new GradCam().map(activation, gradient.subarray(1), dims), /gradcam: activation \(4\) and gradient \(3\) must both hold 2x1x2 values/);
  });
});

/** logits = W tanh(3 x) over a 1 x 16 x 16 input: smooth, so a midpoint Riemann sum converges fast. */
function smoothModel() {
  const b = new GraphBuilder('smooth');
  const image = b.input('image', 'float32', ['batch', 1, 16, 16]);
  const squashed = b.op('Tanh', [b.op('Mul', [image, b.scalar(3)])]);
  const weight = Float32Array.from({ length: 2 * 256 }, (_, i) => Math.sin(i * 0.37));
  b.output(b.op('Gemm', [b.op('Flatten', [squashed], { axis: 1 }), b.constant(float32([2, 256], weight))], { transB: 1 }), 'logits');
  b.output(squashed, 'features');
  return createModel(
    b.build(),
    modelInfoToMetadata({
      architecture: 'test-smooth',
      labels: ['Effusion', 'Nodule'],
      preprocessing: { height: 16, width: 16, channels: 1, mean: [0.5], std: [0.25], resize: 'stretch' },
      io: { input: 'image', logits: 'logits', features: 'features' },
      blocks: [],
      weights: 'hand-set',
    }),
  );
}

describe('Integrated Gradients', () => {
  it('add up to the score difference between image and baseline (completeness), for each baseline', async () => {
    const explainer = await Explainer.create(smoothModel(), { threads: 1 });
    try {
      const image = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', '00001369_000.png'));
      const prepared = explainer.prepareImage(image);
      const runner = explainer.runner(image);
      for (const baseline of ['black', 'mean', 0.3] as const) {
        const results = await inputGradientMethod('integrated-gradients').attributions(runner, prepared.tensor.data, prepared.tensor.dims, [0, 1], {
          integratedGradients: { steps: 32, baseline },
          preprocessing: explainer.info.preprocessing,
        });
        const level = baseline === 'black' ? 0 : baseline === 'mean' ? 0.5 : baseline;
        const start = new Float32Array(256).fill((level - 0.5) / 0.25);
        const both = new Float32Array(512);
        both.set(prepared.tensor.data);
        both.set(start, 256);
        const logits = await runner.logits(float32([2, 1, 16, 16], both));
        results.forEach(({ attribution, map }, label) => {
          const difference = logits[label] - logits[2 + label];
          const sum = attribution.reduce((a, b) => a + b, 0);
          assert.ok(Math.abs(difference) > 0.1, 'the image and the baseline score differently');
          assert.ok(Math.abs(sum - difference) <= 1e-3 * Math.abs(difference), `${baseline}/${label}: sum ${sum}, difference ${difference}`);
          assert.ok(Math.abs(map.data.reduce((a, b) => a + b, 0) - sum) < 1e-4 * Math.abs(sum), 'the map sums the channels (signed)');
        });
      }
    } finally {
      await explainer.close();
    }
  });
});

describe('methods through the Explainer on a real NIH image', () => {
  const SIZE = 64;
  let explainer: Explainer;
  let image: DecodedImage;
  before(async () => {
    const { model } = importWeights(readFixture('zoo', 'mobilenet_v2.pth.br'), 'mobilenet_v2.pth', { height: SIZE, width: SIZE });
    explainer = await Explainer.create(model, { threads: 2 });
    image = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', '00001369_000.png'));
  });
  after(() => explainer.close());

  it('opens a session only for what a method runs: Grad-CAM its CAM graph, not the model a Predictor already holds', async () => {
    const fresh = await Explainer.create(explainer.model, { threads: 1 });
    try {
      assert.deepEqual(fresh.openSessions(), []);
      await fresh.explain(image, { method: 'gradcam', findings: ['Mass'] });
      assert.deepEqual(fresh.openSessions(), [`cam:${fresh.defaultLayer}`]);
      await fresh.explain(image, { method: 'occlusion', findings: ['Mass'], occlusion: { patch: 16, stride: 16 } });
      assert.deepEqual(fresh.openSessions(), ['model', `cam:${fresh.defaultLayer}`]);
    } finally {
      await fresh.close();
    }
    assert.deepEqual(fresh.openSessions(), []);
  });

  it('several findings in one pass give each finding the map it gets alone, for every CAM and gradient method', async () => {
    const findings = ['Cardiomegaly', 'Mass', 'Hernia'];
    for (const method of ['gradcam', 'gradcam++', 'hirescam', 'layercam', 'xgradcam', 'gradient'] as const) {
      const together = await explainer.explain(image, { method, findings });
      assert.deepEqual(together.findings.map((f) => f.finding), findings);
      for (const [i, finding] of findings.entries()) {
        const alone = await explainer.explain(image, { method, findings: [finding] });
        const a = together.findings[i].map.data;
        const b = alone.findings[0].map.data;
        const scale = Math.max(...b.map(Math.abs));
        assert.ok(scale > 0, `${method}/${finding}: a non-zero map`);
        assert.ok(a.every((v, k) => Math.abs(v - b[k]) <= 1e-5 * scale), `${method}/${finding}`);
        assert.equal(together.findings[i].probability, 1 / (1 + Math.exp(-together.findings[i].logit)), 'sigmoid of its own logit, no softmax');
      }
    }
  });

  it('the probability target scales gradients by p(1 - p), per finding (chain rule)', async () => {
    const findings = ['Mass', 'Nodule'];
    for (const method of ['gradcam', 'hirescam', 'gradient'] as const) {
      const logit = await explainer.explain(image, { method, findings });
      const probability = await explainer.explain(image, { method, target: 'probability', findings });
      assert.equal(probability.target, 'probability');
      logit.findings.forEach((f, i) => {
        const factor = f.probability * (1 - f.probability);
        const scaled = probability.findings[i].map.data;
        const scale = Math.max(...f.map.data);
        assert.ok(f.map.data.every((v, k) => Math.abs(v * factor - scaled[k]) <= 1e-5 * scale * factor), `${method}/${f.finding}`);
      });
    }
  });

  it('SmoothGrad: reproducible per seed, different across seeds, and the plain gradient without noise', async () => {
    const options = (seed: number, noise = 0.15, samples = 4) => ({ method: 'smoothgrad' as const, findings: ['Effusion'], smoothgrad: { seed, noise, samples } });
    const [a, b, c] = await Promise.all([explainer.explain(image, options(1)), explainer.explain(image, options(1)), explainer.explain(image, options(2))]);
    assert.deepEqual(a.findings[0].map.data, b.findings[0].map.data);
    assert.notDeepEqual(a.findings[0].map.data, c.findings[0].map.data);
    const noiseless = await explainer.explain(image, options(1, 0, 1));
    const plain = await explainer.explain(image, { method: 'gradient', findings: ['Effusion'] });
    assert.deepEqual(noiseless.findings[0].map.data, plain.findings[0].map.data);
  });

  it('layers: the default first, then block outputs, no alias twice; other layers give their own resolution', async () => {
    const layers = explainer.layers();
    assert.equal(layers[0], 'features');
    assert.ok(!layers.includes('features.18.2'), 'the default layer is not listed again under its own name');
    const mid = await explainer.explain(image, { method: 'gradcam', findings: ['Effusion'], layer: 'features.13.add' });
    assert.equal(mid.layer, 'features.13.add');
    assert.deepEqual([mid.findings[0].map.width, mid.findings[0].map.height], [4, 4]);
  });

  it('refuses what it cannot serve, naming what is valid', async () => {
    await assert.rejects(explainer.explain(image, { layer: 'features.99' }), /layer "features\.99" is not a tensor of the model; the default is "features", the blocks end at .*features\.13\.add/);
    await assert.rejects(explainer.explain(image, { layer: 'logits' }), /layer "logits" is not a 4-D feature map/);
    await assert.rejects(explainer.explain(image, { findings: [] }), /no findings to explain/);
    await assert.rejects(explainer.explain(image, { findings: ['Pneumonitis'] }), /no finding "Pneumonitis"; it knows Atelectasis, Cardiomegaly/);
    await assert.rejects(explainer.explain(image, { method: 'deconvnet' as never }), new RegExp(`unknown explanation method "deconvnet"; choose one of ${EXPLANATION_METHODS.join(', ').replace(/\+/g, '\\+')}`));
    await assert.rejects(explainer.explain(image, { method: 'integrated-gradients', integratedGradients: { baseline: 2 } }), /baseline must be "black", "mean" or a gray level in \[0, 1\], got 2/);
    await assert.rejects(explainer.explain(image, { method: 'smoothgrad', smoothgrad: { samples: 0 } }), /smoothgrad: samples must be a positive whole number, got 0/);
    await assert.rejects(explainer.explain(image, { target: 'softmax' as never }), /target must be "logit" or "probability"/);
  });

  it('a runner with forward passes only (the browser) serves occlusion and says the rest needs the server', async () => {
    const full = explainer.runner(image);
    const forwardOnly = { labels: full.labels, logits: full.logits };
    const prepared = explainer.prepareImage(image);
    const occlusion = await explainWithRunner(forwardOnly, prepared, explainer.info.preprocessing, { method: 'occlusion', findings: ['Effusion'] });
    const reference = await explainer.explain(image, { method: 'occlusion', findings: ['Effusion'] });
    assert.deepEqual(occlusion.findings[0].map.data, reference.findings[0].map.data);
    await assert.rejects(explainWithRunner(forwardOnly, prepared, explainer.info.preprocessing, { method: 'gradcam' }), /"gradcam" needs gradients, which this runner cannot compute \(server only\); methods that run here: occlusion/);
  });
});
