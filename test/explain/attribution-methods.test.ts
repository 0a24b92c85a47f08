/**
 * FullGrad, guided backpropagation, Guided Grad-CAM and Grad-CAM x IG with the embedded default model on a real NIH
 * film: each map, as rendered, is neither speckle nor a tint over the film (the bounds every method keeps, see
 * readable.test.ts), and the hybrids are what they are built from (Grad-CAM's support, IG's positive part).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MODEL_PATH, loadModel } from '../../src/api.js';
import { Explainer, readableMap } from '../../src/explain/index.js';
import { type DecodedImage, decodeImageFile } from '../../src/imaging/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { COVERAGE, ENTROPY, coverage, levelsOnFilm, spatialEntropy } from './map-quality.js';

const FINDING = 'Cardiomegaly';

describe('FullGrad, guided backpropagation and the Grad-CAM hybrids with the default model on a real NIH film', () => {
  let explainer: Explainer;
  let image: DecodedImage;
  before(async () => {
    explainer = await Explainer.create(loadModel(DEFAULT_MODEL_PATH).model, { threads: 2 });
    image = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', '00013125_000.png'));
  });
  after(() => explainer?.close());

  for (const method of ['fullgrad', 'guided-backprop', 'guided-gradcam', 'gradcam-ig'] as const) {
    it(`${method}: a finite map over the input, readable (not speckle, not a tint)`, async (t) => {
      const explanation = await explainer.explain(image, { method, findings: [FINDING], integratedGradients: { steps: 8 } });
      const { map } = explanation.findings[0];
      assert.deepEqual([map.width, map.height], [224, 224]);
      assert.ok(map.data.every((v) => Number.isFinite(v) && v >= 0), 'finite and not negative');
      const levels = levelsOnFilm(readableMap(map, method, { featureStride: explanation.featureStride }), explanation, image.width, image.height);
      const covered = coverage(levels);
      const entropy = spatialEntropy(levels, image.width, image.height);
      const rawCovered = coverage(levelsOnFilm(map, explanation, image.width, image.height));
      t.diagnostic(`coverage ${(100 * covered).toFixed(1)}% (raw ${(100 * rawCovered).toFixed(1)}%), entropy ${entropy.toFixed(3)}`);
      assert.ok(covered >= COVERAGE[0] && covered <= COVERAGE[1], `${(100 * covered).toFixed(1)}% of the film drawn`);
      assert.ok(entropy >= ENTROPY[0] && entropy <= ENTROPY[1], `spatial entropy ${entropy.toFixed(3)}`);
    });
  }

  it('each method opens only the graphs it runs, built ahead by prepare()', async () => {
    const expected = {
      fullgrad: ['bias-gradients'],
      'guided-backprop': ['model', 'guided-input-gradients'],
      'guided-gradcam': ['guided-input-gradients', `cam:${explainer.defaultLayer}`],
      'gradcam-ig': ['input-gradients', `cam:${explainer.defaultLayer}`],
    } as const;
    for (const [method, sessions] of Object.entries(expected)) {
      const fresh = await Explainer.create(explainer.model, { threads: 1 });
      try {
        await fresh.prepare([method as keyof typeof expected]);
        assert.deepEqual(fresh.openSessions(), sessions, method);
      } finally {
        await fresh.close();
      }
    }
  });

  it('Guided Grad-CAM is guided backpropagation weighted by Grad-CAM in [0, 1]; Grad-CAM x IG is zero wherever IG is not positive', async () => {
    const options = { findings: [FINDING], integratedGradients: { steps: 8 } };
    const [guided, guidedCam, integrated, hybrid] = await Promise.all(
      (['guided-backprop', 'guided-gradcam', 'integrated-gradients', 'gradcam-ig'] as const).map(async (method) => (await explainer.explain(image, { method, ...options })).findings[0].map.data),
    );
    let weighted = 0;
    guidedCam.forEach((v, i) => {
      assert.ok(v <= guided[i] * (1 + 1e-6), `pixel ${i}: ${v} above the guided gradient ${guided[i]}`);
      if (v < 0.99 * guided[i]) weighted++;
    });
    assert.ok(weighted > 0.1 * guided.length, `the CAM weighs down ${weighted} pixels`);
    assert.ok(hybrid.every((v, i) => integrated[i] > 0 || v === 0));
    assert.ok(hybrid.some((v) => v > 0));
  });
});
