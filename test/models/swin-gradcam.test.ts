/**
 * Grad-CAM on Swin-T through its declared channels-last layout, against PyTorch on a real NIH film at 224 px:
 * pytorch-grad-cam's formula with Swin's reshape_transform (scripts/fixtures/make_swin_parity.py, float64), all 14
 * findings, on the final norm (the default layer) and on the last stage's output, whose gradient passes back
 * through the final LayerNormalization.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Explainer } from '../../src/explain/index.js';
import { decodeImageFile } from '../../src/imaging/index.js';
import { importWeights } from '../../src/models/import/index.js';
import { fixturePath, readFixture, sharedDataPath } from '../helpers/fixtures.js';
import { relativeError } from '../helpers/numeric.js';

interface GradCamCase {
  layer: string;
  size: number;
  film: string;
  height: number;
  width: number;
  maps: number[][];
  torch_float32_error: number;
}

const reference: { gradcam: GradCamCase[] } = JSON.parse(readFileSync(fixturePath('zoo', 'swin_t.json'), 'utf8'));
const TOLERANCE = 1e-4;

describe('swin_t: Grad-CAM through the channels-last layout matches PyTorch (pytorch-grad-cam, reshape_transform)', () => {
  let explainer: Explainer;
  before(async () => {
    const { model } = importWeights(readFixture('zoo', 'swin_t.pth.br'), 'swin_t.pth', { height: reference.gradcam[0].size });
    explainer = await Explainer.create(model, { threads: 2 });
  });
  after(() => explainer.close());

  for (const expected of reference.gradcam) {
    it(`"${expected.layer}": all 14 findings within ${TOLERANCE} of PyTorch`, async (t) => {
      const image = await decodeImageFile(sharedDataPath(expected.film));
      const layer = expected.layer === explainer.defaultLayer ? undefined : expected.layer;
      const explanation = await explainer.explain(image, { method: 'gradcam', layer });
      assert.equal(explanation.layer, expected.layer);
      assert.equal(explanation.findings.length, expected.maps.length);
      const errors = explanation.findings.map((finding, c) => {
        assert.deepEqual([finding.map.height, finding.map.width], [expected.height, expected.width]);
        return relativeError(finding.map.data, expected.maps[c]);
      });
      const worst = Math.max(...errors);
      t.diagnostic(`max relative error ${worst.toExponential(2)} (PyTorch float32: ${expected.torch_float32_error.toExponential(2)})`);
      assert.ok(worst <= TOLERANCE, `Grad-CAM on ${expected.layer}: ${worst}`);
      // Where every weighted channel sum is negative the ReLU leaves nothing (4 of 14 findings on the final norm).
      assert.ok(expected.maps.filter((m) => m.some((v) => v > 0)).length >= 10, 'most reference maps are not all zero');
    });
  }

  it('read as NCHW (no declaration), the same activations give other maps', async () => {
    const { model } = importWeights(readFixture('zoo', 'swin_t.pth.br'), 'swin_t.pth', { height: reference.gradcam[0].size });
    delete model.metadata['cxr.layouts'];
    const undeclared = await Explainer.create(model, { threads: 2 });
    try {
      const expected = reference.gradcam[0];
      const explanation = await undeclared.explain(await decodeImageFile(sharedDataPath(expected.film)), { method: 'gradcam', findings: [undeclared.labels[0]] });
      const map = explanation.findings[0].map;
      assert.ok(map.height !== expected.height || map.width !== expected.width || relativeError(map.data, expected.maps[0]) > 0.1);
    } finally {
      await undeclared.close();
    }
  });
});
