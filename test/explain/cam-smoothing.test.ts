/**
 * pytorch-grad-cam's eigen_smooth and aug_smooth options (scripts/fixtures/make_cam_smoothing_parity.py, float64):
 * Grad-CAM and HiResCAM eigen-smoothed and Grad-CAM augmentation-smoothed equal the reference on the zoo MobileNetV2;
 * smoothing is refused for methods that are not CAMs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { relativeError } from '../helpers/numeric.js';
import { parityExplainer } from './scored-cam-fixture.js';

interface Case {
  method: 'gradcam' | 'hirescam';
  smoothing: 'eigen' | 'aug';
  class: number;
  map: number[];
}

const reference = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'explain', 'cam-smoothing.json'), 'utf8')) as { cases: Case[] };

describe('CAM smoothing options', () => {
  it('eigen_smooth and aug_smooth equal the PyTorch reference to 1e-4, and differ from the plain maps', async (t) => {
    const { explainer, explain } = await parityExplainer();
    try {
      for (const c of reference.cases) {
        const options = { method: c.method, findings: [explainer.labels[c.class]], eigenSmooth: c.smoothing === 'eigen', augSmooth: c.smoothing === 'aug' };
        const [smoothed] = (await explain(options)).findings;
        const [plain] = (await explain({ method: c.method, findings: options.findings })).findings;
        const error = relativeError(smoothed.map.data, c.map);
        t.diagnostic(`${c.method} ${c.smoothing} class ${c.class}: ${error.toExponential(2)}`);
        assert.ok(error < 1e-4, `${c.method} ${c.smoothing} class ${c.class}: ${error}`);
        assert.ok(relativeError(plain.map.data, c.map) > 1e-2, 'the smoothing changes the map');
      }
      await assert.rejects(explain({ method: 'gradient', eigenSmooth: true }), /eigen and augmentation smoothing apply to CAM methods only, not "gradient"/);
    } finally {
      await explainer.close();
    }
  });
});
