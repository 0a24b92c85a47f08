/**
 * Parity with a hook-based PyTorch reference (scripts/fixtures/make_explain_parity.py, float64, pytorch-grad-cam's
 * formulas): every CAM method on the default and other layers, all 14 findings from one run of our explain graph,
 * and input gradients, for random-weight DenseNet-121 and MobileNetV2 at 128 px.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type CamMethodName, Explainer, explainWithRunner } from '../../src/explain/index.js';
import { computeGeometry } from '../../src/imaging/index.js';
import { importWeights } from '../../src/models/import/index.js';
import { generated } from '../autodiff/generated.js';
import { readFixture } from '../helpers/fixtures.js';
import { parityInput, relativeError } from '../helpers/numeric.js';

interface CamCase {
  layer: string;
  method: CamMethodName;
  height: number;
  width: number;
  maps: number[][];
  torch_float32_error: number;
}
interface GradientCase {
  size: number;
  class: number;
  samples: number[];
  norm: number;
  projection: number;
  torch_float32_error: number;
}
interface Fixture {
  size: number;
  labels: number;
  stride: number;
  projection_seed: number;
  architectures: Record<string, { logits: number[]; cams: CamCase[]; input_gradients: GradientCase[] }>;
}

const fixture: Fixture = JSON.parse(new TextDecoder().decode(readFixture('explain', 'parity.json.br')));
const { size } = fixture;
const input = parityInput(3 * size * size);
const prepared = { tensor: { dims: [3, size, size] as [number, number, number], data: input }, geometry: computeGeometry(size, size, { width: size, height: size, resize: 'stretch' }) };
const TOLERANCE = 1e-4;

for (const [arch, reference] of Object.entries(fixture.architectures)) {
  describe(`${arch}: explanations against a PyTorch hook-based reference`, () => {
    let explainer: Explainer;
    before(async () => {
      const { model } = importWeights(readFixture('zoo', `${arch}.pth.br`), `${arch}.pth`, { height: size, width: size });
      explainer = await Explainer.create(model, { threads: 2 });
    });
    after(() => explainer.close());

    const explain = (options: Parameters<typeof explainWithRunner>[3]) => explainWithRunner(explainer.runner({ metadata: {} }), prepared, explainer.info.preprocessing, options);

    for (const layer of [...new Set(reference.cams.map((c) => c.layer))]) {
      it(`CAMs on "${layer}": every method, all 14 findings from one run, within ${TOLERANCE} of PyTorch`, async (t) => {
        for (const expected of reference.cams.filter((c) => c.layer === layer)) {
          const explanation = await explain({ method: expected.method, layer: layer === explainer.defaultLayer ? undefined : layer });
          assert.equal(explanation.layer, layer);
          const errors = explanation.findings.map((finding, c) => {
            assert.deepEqual([finding.map.height, finding.map.width], [expected.height, expected.width]);
            assert.ok(Math.abs(finding.logit - reference.logits[c]) <= 1e-4 * Math.max(...reference.logits.map(Math.abs)), `logit ${c}`);
            return relativeError(finding.map.data, expected.maps[c]);
          });
          const worst = Math.max(...errors);
          t.diagnostic(`${expected.method}: max relative error ${worst.toExponential(2)} (PyTorch float32: ${expected.torch_float32_error.toExponential(2)})`);
          assert.ok(worst <= TOLERANCE, `${expected.method} on ${layer}: ${worst}`);
          assert.ok(expected.maps.some((m) => m.some((v) => v > 0)), 'the reference maps are not all zero');
        }
      });
    }

    for (const gradientSize of [...new Set(reference.input_gradients.map((g) => g.size))]) {
      const cases = reference.input_gradients.filter((g) => g.size === gradientSize);
      // The norm and a random projection of the input gradient are sums over every pixel and well conditioned: 1e-4.
      // Single pixels are not: PyTorch's own float32 run lands up to 7e-3 from float64 on this network (the 128 px
      // case, see the generator), and how far a float32 engine lands depends on its summation order, which differs
      // between CPUs (AVX2 and AVX-512 kernels) even for the same engine. So pixels are held to twice the largest
      // distance PyTorch float32 itself shows on this network, at any size, not to one machine's lucky order.
      const pixelBound = Math.max(TOLERANCE, ...reference.input_gradients.map((g) => 2 * g.torch_float32_error));
      it(`input gradients of two findings at ${gradientSize} px: norm and projection within ${TOLERANCE.toExponential(0)}, pixels within ${pixelBound.toExponential(1)} of PyTorch`, async (t) => {
        const { model } = importWeights(readFixture('zoo', `${arch}.pth.br`), `${arch}.pth`, { height: gradientSize, width: gradientSize });
        const sized = gradientSize === size ? explainer : await Explainer.create(model, { threads: 2 });
        try {
          const image = parityInput(3 * gradientSize * gradientSize);
          const classes = cases.map((g) => g.class);
          const batch = { dtype: 'float32' as const, dims: [classes.length, 3, gradientSize, gradientSize], data: new Float32Array(classes.length * image.length) };
          classes.forEach((_, r) => batch.data.set(image, r * image.length));
          const { gradients } = await sized.runner({ metadata: {} }).inputGradients(batch, classes);
          cases.forEach((expected, r) => {
            const ours = gradients.subarray(r * image.length, (r + 1) * image.length);
            const samples: number[] = [];
            for (let c = 0; c < 3; c++) {
              for (let y = 0; y < gradientSize; y += fixture.stride) for (let x = 0; x < gradientSize; x += fixture.stride) samples.push(ours[(c * gradientSize + y) * gradientSize + x]);
            }
            let norm = 0;
            let projection = 0;
            const direction = generated(ours.length, fixture.projection_seed);
            for (let i = 0; i < ours.length; i++) {
              norm += ours[i] * ours[i];
              projection += ours[i] * direction[i];
            }
            const sampleError = relativeError(samples, expected.samples);
            const normError = Math.abs(Math.sqrt(norm) - expected.norm) / expected.norm;
            const projectionError = Math.abs(projection - expected.projection) / (expected.norm * Math.sqrt((4 * ours.length) / 3));
            t.diagnostic(`class ${expected.class}: samples ${sampleError.toExponential(2)}, norm ${normError.toExponential(2)}, projection ${projectionError.toExponential(2)}; PyTorch float32: ${expected.torch_float32_error.toExponential(2)}`);
            assert.ok(Math.max(normError, projectionError) <= TOLERANCE, `class ${expected.class}: norm ${normError}, projection ${projectionError}`);
            assert.ok(sampleError <= pixelBound, `class ${expected.class}: pixels ${sampleError}`);
          });
        } finally {
          if (sized !== explainer) await sized.close();
        }
      });
    }
  });
}
