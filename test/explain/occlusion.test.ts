/** Occlusion maps on a model whose answer is known, and heatmaps drawn over a real NIH image. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { Explainer } from '../../src/explain/index.js';
import { renderHeatmap, renderHeatmaps } from '../../src/explain/render.js';
import { colormap, decodeImageFile, imagenetPreprocessing } from '../../src/imaging/index.js';
import { modelInfoToMetadata } from '../../src/models/metadata.js';
import { GraphBuilder, createModel, float32 } from '../../src/onnx/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';

const SIZE = 32;

/** logits = sum of the input over a fixed square per finding: "Effusion" looks bottom-left, "Nodule" top-right. */
function regionModel() {
  const b = new GraphBuilder('regions');
  const image = b.input('image', 'float32', ['batch', 1, SIZE, SIZE]);
  const weight = new Float32Array(2 * SIZE * SIZE);
  for (let y = 20; y < 28; y++) for (let x = 4; x < 12; x++) weight[y * SIZE + x] = 1;
  for (let y = 4; y < 10; y++) for (let x = 22; x < 28; x++) weight[SIZE * SIZE + y * SIZE + x] = 1;
  const flat = b.op('Flatten', [image], { axis: 1 });
  b.output(b.op('Gemm', [flat, b.constant(float32([2, SIZE * SIZE], weight))], { transB: 1 }), 'logits');
  b.output(image, 'features');
  return createModel(
    b.build(),
    modelInfoToMetadata({
      architecture: 'test-regions',
      labels: ['Effusion', 'Nodule'],
      preprocessing: { ...imagenetPreprocessing(SIZE, SIZE, 1), mean: [0], std: [1] },
      io: { input: 'image', logits: 'logits', features: 'features' },
      blocks: [],
      weights: 'hand-set',
    }),
  );
}

const bright = { width: SIZE, height: SIZE, pixels: new Uint8Array(SIZE * SIZE).fill(255), maxValue: 255, format: 'png' as const, source: 'white.png', metadata: {}, notes: [] };

describe('occlusion sensitivity', () => {
  it('finds exactly the region each finding reads, per finding', async () => {
    const explainer = await Explainer.create(regionModel(), { threads: 1 });
    try {
      const result = await explainer.explain(bright, { method: 'occlusion', occlusion: { patch: 2, stride: 2 } });
      assert.deepEqual(result.findings.map((f) => f.finding), ['Effusion', 'Nodule']);
      const [effusion, nodule] = result.findings.map((f) => f.map.data);
      const at = (map: Float32Array, x: number, y: number) => map[y * SIZE + x];
      assert.ok(at(effusion, 6, 24) > 0 && at(effusion, 25, 6) === 0 && at(effusion, 16, 16) === 0);
      assert.ok(at(nodule, 25, 6) > 0 && at(nodule, 6, 24) === 0);
      // Hiding a 2x2 patch of white (value 1) removes 4 from the logit, spread over the patch's 4 pixels.
      assert.equal(at(effusion, 6, 24), 4);
      assert.equal(result.findings[0].logit, 64);
      // The probability target measures drops in sigmoid(logit); a dim image keeps the sigmoid off saturation.
      const dim = { ...bright, pixels: new Uint8Array(SIZE * SIZE).fill(8) };
      const probability = await explainer.explain(dim, { method: 'occlusion', target: 'probability', occlusion: { patch: 2, stride: 2 } });
      const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
      const v = Math.fround(8 / 255);
      assert.ok(Math.abs(at(probability.findings[0].map.data, 6, 24) - (sigmoid(64 * v) - sigmoid(60 * v))) < 1e-6);
    } finally {
      await explainer.close();
    }
  });

  it('refuses unknown findings, methods and patch sizes by name', async () => {
    const explainer = await Explainer.create(regionModel(), { threads: 1 });
    try {
      await assert.rejects(explainer.explain(bright, { findings: ['Hernia'] }), /the model has no finding "Hernia"; it knows Effusion, Nodule/);
      await assert.rejects(explainer.explain(bright, { method: 'magic' as never }), /unknown explanation method "magic"/);
      await assert.rejects(explainer.explain(bright, { method: 'occlusion', occlusion: { patch: 64 } }), /occlusion patch must be 1\.\.32 pixels, got 64/);
    } finally {
      await explainer.close();
    }
  });
});

describe('rendering', () => {
  it('draws the map over the original 1024 px NIH image, coloured where the map is strong and gray elsewhere', async () => {
    const image = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images-1024', '00000001_000.png'));
    const map = new Float32Array(8 * 8);
    map[2 * 8 + 5] = 1; // one cell of an 8x8 grid over the model input: source x in [640, 768), y in [256, 384)
    const png = await renderHeatmap(image, { geometry: { sourceWidth: 1024, sourceHeight: 1024, width: 8, height: 8, scaleX: 8 / 1024, scaleY: 8 / 1024, offsetX: 0, offsetY: 0, resize: 'stretch' } }, { finding: 'Nodule', probability: 0.5, logit: 0, map: { width: 8, height: 8, data: map } }, { colormap: 'turbo', opacity: 1 });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [1024, 1024, 3], 'opaque: RGB');
    const pixel = (x: number, y: number) => [...data.subarray((y * 1024 + x) * 3, (y * 1024 + x) * 3 + 3)];
    assert.deepEqual(pixel(704, 320), colormap('turbo', 1), 'the peak takes the colour map\'s top colour');
    const far = pixel(100, 900);
    const gray = image.pixels[900 * 1024 + 100];
    assert.deepEqual(far, [gray, gray, gray], 'the X-ray is untouched where the map is zero');
  });

  it('several findings render at once; a contour outlines the region; bad PNG levels are refused', async () => {
    const image = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', '00001369_000.png'));
    const geometry = { sourceWidth: 512, sourceHeight: 512, width: 4, height: 4, scaleX: 4 / 512, scaleY: 4 / 512, offsetX: 0, offsetY: 0, resize: 'stretch' as const };
    const finding = (cell: number) => ({ finding: 'Mass', probability: 0.5, logit: 0, map: { width: 4, height: 4, data: Float32Array.from({ length: 16 }, (_, i) => (i === cell ? 1 : 0)) } });
    const findings = [finding(5), finding(10)];
    const together = await renderHeatmaps(image, { geometry, findings }, { contour: 0.5 });
    for (const [i, f] of findings.entries()) assert.deepEqual(together[i], await renderHeatmap(image, { geometry }, f, { contour: 0.5 }));
    const { data } = await sharp(together[0]).raw().toBuffer({ resolveWithObject: true });
    const white = [];
    for (let i = 0; i < 512 * 512; i++) if (data[3 * i] === 255 && data[3 * i + 1] === 255 && data[3 * i + 2] === 255) white.push(i);
    const ys = white.map((i) => Math.floor(i / 512));
    assert.ok(white.length > 100 && Math.min(...ys) > 100 && Math.max(...ys) < 300, 'a white contour around cell (1, 1) of the 4 x 4 map');
    await assert.rejects(renderHeatmap(image, { geometry }, findings[0], { compressionLevel: 10 }), /compression level must be a whole number 0-9, got 10/);
  });

});
