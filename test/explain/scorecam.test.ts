/**
 * Score-CAM equals pytorch-grad-cam's definition (scripts/fixtures/make_scored_cam_parity.py, float64) on the zoo
 * MobileNetV2; its upsampling aligns corners as torch's UpsamplingBilinear2d; on a real NIH film with the default
 * model the map marks a region.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MODEL_PATH, loadModel } from '../../src/api.js';
import { Explainer, upsampleAlignCorners } from '../../src/explain/index.js';
import { decodeImageFile } from '../../src/imaging/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { relativeError } from '../helpers/numeric.js';
import { parityExplainer, reference } from './scored-cam-fixture.js';

describe('Score-CAM', () => {
  it('equals the PyTorch reference to 1e-4 for two findings from one set of masked passes', async (t) => {
    const { explainer, explain } = await parityExplainer();
    try {
      const cases = reference.cases.filter((c) => c.method === 'scorecam');
      const explanation = await explain({ method: 'scorecam', findings: cases.map((c) => explainer.labels[c.class]) });
      cases.forEach((c, k) => {
        const { map } = explanation.findings[k];
        assert.deepEqual([map.height, map.width], [c.height, c.width]);
        const error = relativeError(map.data, c.map);
        t.diagnostic(`class ${c.class}: ${error.toExponential(2)} (PyTorch float32 ${c.torch_float32_error.toExponential(2)})`);
        assert.ok(error <= Math.max(1e-4, 2 * c.torch_float32_error), `class ${c.class}: ${error}`);
        assert.ok(c.map.some((v) => v > 0));
      });
    } finally {
      await explainer.close();
    }
  });

  it('upsampling keeps the corners and interpolates linearly between them (align_corners=True)', () => {
    const up = upsampleAlignCorners([0, 1, 2, 3], 2, 2, 3, 3);
    assert.deepEqual([...up], [0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3]);
  });

  it('a real NIH film with the default model: a region, not the whole film (1280 masked passes, ~45 s)', async () => {
    const explainer = await Explainer.create(loadModel(DEFAULT_MODEL_PATH).model, { threads: 2 });
    try {
      const image = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', '00013125_000.png'));
      const { map } = (await explainer.explain(image, { method: 'scorecam', findings: ['Cardiomegaly'], batchSize: 32 })).findings[0];
      let min = Infinity;
      let max = -Infinity;
      for (const v of map.data) [min, max] = [Math.min(min, v), Math.max(max, v)];
      const strong = map.data.filter((v) => v - min >= 0.5 * (max - min)).length;
      assert.ok(max > min && strong >= 2 && strong <= 0.8 * map.data.length, `${strong} of ${map.data.length} cells above half the range`);
    } finally {
      await explainer.close();
    }
  });
});
