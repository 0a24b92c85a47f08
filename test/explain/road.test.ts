/**
 * ROAD's imputation equals its authors' exact sparse solve (scripts/fixtures/make_road_reference.py, scipy) on a
 * crop of a real NIH film, for a solid block and for scattered pixels; the curves run on the default model.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_MODEL_PATH, loadModel } from '../../src/api.js';
import { Explainer, importanceOrder, linearImpute, noisyLinearImpute, road } from '../../src/explain/index.js';
import { SeededRandom } from '../../src/eval/random.js';
import { decodeImageFile } from '../../src/imaging/index.js';
import { REPO_ROOT, sharedDataPath } from '../helpers/fixtures.js';

interface Reference {
  source: string;
  top: number;
  left: number;
  size: number;
  cases: { name: string; removed: number[]; imputed: number[] }[];
}

const reference = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'explain', 'fixtures', 'road-imputation.json'), 'utf8')) as Reference;

describe('ROAD', () => {
  it('the imputation solves the authors\' system: equal to scipy\'s exact solve to 1e-5, for a block and for scattered pixels', async () => {
    const film = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', reference.source));
    const { size, top, left } = reference;
    const crop = Float32Array.from({ length: size * size }, (_, i) => film.pixels[(top + Math.floor(i / size)) * film.width + left + (i % size)] / 255);
    for (const c of reference.cases) {
      const removed = new Uint8Array(size * size);
      for (const i of c.removed) removed[i] = 1;
      const filled = linearImpute(crop, removed, size, size, 1e-8);
      let worst = 0;
      c.removed.forEach((i, k) => (worst = Math.max(worst, Math.abs(filled[i] - c.imputed[k]))));
      assert.ok(worst < 1e-5, `${c.name}: largest difference ${worst}`);
      for (let i = 0; i < crop.length; i++) if (!removed[i]) assert.equal(filled[i], crop[i], 'known pixels are kept');
      // The crop itself differs from the solve: the test would notice an imputation that returned the film.
      assert.ok(c.removed.some((i, k) => Math.abs(crop[i] - c.imputed[k]) > 0.01));
    }
  });

  it('noise is added to removed pixels only, with the given spread', () => {
    const size = 64;
    const input = Float32Array.from({ length: 3 * size * size }, (_, i) => (i % 7) / 7);
    const removed = Uint8Array.from({ length: size * size }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const plain = noisyLinearImpute(input, [3, size, size], removed, 0, new SeededRandom(1));
    const noisy = noisyLinearImpute(input, [3, size, size], removed, 0.05, new SeededRandom(1));
    let sum = 0;
    let n = 0;
    for (let i = 0; i < input.length; i++) {
      if (!removed[i % (size * size)]) assert.equal(noisy[i], input[i]);
      else {
        sum += (noisy[i] - plain[i]) ** 2;
        n++;
      }
    }
    const sd = Math.sqrt(sum / n);
    assert.ok(Math.abs(sd - 0.05) < 0.005, `noise sd ${sd}`);
  });

  it('curves on a real film with the default model: probabilities per fraction, MoRF of Grad-CAM\'s order beside a random order', async (t) => {
    const explainer = await Explainer.create(loadModel(DEFAULT_MODEL_PATH).model, { threads: 2 });
    try {
      const image = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', '00001369_000.png'));
      const { tensor } = explainer.prepareImage(image);
      const [, height, width] = tensor.dims;
      const label = explainer.labels.indexOf('Cardiomegaly');
      const explanation = await explainer.explain(image, { findings: ['Cardiomegaly'] });
      const started = performance.now();
      const ours = await road(explainer.runner(image), tensor.data, tensor.dims, label, importanceOrder(explanation.findings[0].map, height, width, 0), { fractions: [0.2, 0.5, 0.8] });
      const ms = performance.now() - started;
      const flat = { width, height, data: new Float32Array(width * height) };
      const random = await road(explainer.runner(image), tensor.data, tensor.dims, label, importanceOrder(flat, height, width, 1), { fractions: [0.2, 0.5, 0.8] });
      t.diagnostic(`Grad-CAM MoRF ${ours.morf.map((p) => p.toFixed(3)).join(' ')} LeRF ${ours.lerf.map((p) => p.toFixed(3)).join(' ')}; random order MoRF ${random.morf.map((p) => p.toFixed(3)).join(' ')}; ${ms.toFixed(0)} ms for 6 imputed images`);
      assert.deepEqual(ours.fractions, [0.2, 0.5, 0.8]);
      assert.equal(ours.morf.length, 3);
      assert.ok([...ours.morf, ...ours.lerf, ...random.morf].every((p) => p > 0 && p < 1));
      assert.ok(Math.abs(ours.morfMean - (ours.morf[0] + ours.morf[1] + ours.morf[2]) / 3) < 1e-12);
      assert.notDeepEqual(ours.morf, random.morf, 'the order matters');
      await assert.rejects(road(explainer.runner(image), tensor.data, tensor.dims, label, importanceOrder(flat, height, width, 1), { fractions: [0, 0.5] }), /ROAD: fractions must lie in \(0, 1\), got 0, 0.5/);
    } finally {
      await explainer.close();
    }
  });
});
