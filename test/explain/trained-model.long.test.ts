/**
 * Explanations of a trained model on NIH's real boxes: Grad-CAM against random maps on the pointing game, and the
 * trust checks. The model is $CXR_EXPLAIN_MODEL, else the embedded default model (models/default.onnx); without
 * either the tests are skipped and say so (a random-weight model says nothing about localisation).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MODEL_PATH, loadModel } from '../../src/api.js';
import { Explainer, boxedImageFiles, evaluateLocalization, randomizationLines, readBoxedImages, type BoxedImage } from '../../src/explain/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';

const modelPath = process.env.CXR_EXPLAIN_MODEL ?? (existsSync(DEFAULT_MODEL_PATH) ? DEFAULT_MODEL_PATH : undefined);
const skip = modelPath ? false : 'no trained model: set CXR_EXPLAIN_MODEL or add models/default.onnx';

describe('a trained model on NIH\'s boxes', { skip }, () => {
  let explainer: Explainer;
  let images: BoxedImage[];
  before(async () => {
    const { model, path } = loadModel(modelPath);
    explainer = await Explainer.create(model, { threads: 2, source: path });
    const folders = [sharedDataPath('nih-cxr14-subset', 'images'), sharedDataPath('nih-cxr14-64px', 'images')];
    images = await readBoxedImages(await boxedImageFiles(sharedDataPath('nih-meta', 'BBox_List_2017.csv'), folders));
  });
  after(() => explainer?.close());

  it('Grad-CAM points into the boxes at least as often as random maps do, and the report says how clearly', async (t) => {
    const report = await evaluateLocalization(explainer, images, { methods: ['gradcam', 'gradcam++', 'layercam'], randomDraws: 1000, seed: 7 });
    for (const m of report.methods) {
      const hits = Math.round(m.overall.pointing * m.overall.cases);
      t.diagnostic(
        `${m.method}: ${hits}/${m.overall.cases} hits (${(100 * m.overall.pointing).toFixed(0)}%); random maps ${(100 * m.random.pointing.mean).toFixed(1)}% ± ${(100 * m.random.pointing.sd).toFixed(1)}; ` +
          `${(100 * m.random.pointingAtLeastOurs).toFixed(1)}% of 1000 random draws do as well`,
      );
    }
    const gradcam = report.methods[0];
    assert.ok(gradcam.overall.pointing >= gradcam.random.pointing.mean, `Grad-CAM ${gradcam.overall.pointing} below random ${gradcam.random.pointing.mean}`);
    if (gradcam.random.pointingAtLeastOurs >= 0.05) {
      t.diagnostic(
        `Grad-CAM is NOT clearly above chance here (one-sided p = ${gradcam.random.pointingAtLeastOurs.toFixed(2)}): ${gradcam.overall.cases} cases only ` +
          `and most boxes are small (random maps hit ${(100 * gradcam.random.pointing.mean).toFixed(0)}%), so one or two hits decide; ` +
          `the ${report.model.architecture} here was trained on about a thousand images and localises weakly`,
      );
    }
  });

  it('trust checks: maps decorrelate under cascading randomisation; deletion curves are reported beside a random order', async (t) => {
    const subset = images.slice(0, 6);
    const report = await evaluateLocalization(explainer, subset, { methods: ['gradcam'], randomDraws: 10, faithfulness: { steps: 8, road: { fractions: [0.3, 0.7] } }, randomization: true });
    const [m] = report.methods;
    const steps = m.randomization!;
    t.diagnostic(randomizationLines(steps).join('\n'));
    const f = m.faithfulness!;
    t.diagnostic(`deletion AUC ${f.deletionAuc.mean.toFixed(3)} (random order ${f.randomDeletionAuc.mean.toFixed(3)}); insertion AUC ${f.insertionAuc.mean.toFixed(3)} (random order ${f.randomInsertionAuc.mean.toFixed(3)})`);
    for (const s of steps) {
      assert.equal(s.cases + s.constantMaps, subset.length, 'every case either correlated or counted as constant');
      assert.ok(s.spearman === null ? s.cases === 0 && /constant/.test(s.note ?? '') : Number.isFinite(s.spearman), `step ${s.randomized.at(-1)}: a number or a reason`);
      if (s.constantMaps > 0) assert.match(s.note ?? '', new RegExp(`${s.constantMaps} of ${subset.length} randomised maps are constant`));
    }
    assert.doesNotMatch(JSON.stringify(report), /NaN/);
    // null: every map of that step was constant (all ReLU'd away), which has also lost the trained ranking.
    const last = steps.at(-1)!;
    assert.ok(last.spearman === null || last.spearman < 0.5, 'with every block re-initialised the maps no longer follow the trained ones');
    assert.ok(Number.isFinite(f.deletionAuc.mean) && Number.isFinite(f.insertionAuc.mean));
    const road = f.road!;
    t.diagnostic(`ROAD MoRF ${road.morf.mean.toFixed(3)} (random order ${road.randomMorf.mean.toFixed(3)}); LeRF ${road.lerf.mean.toFixed(3)} (random order ${road.randomLerf.mean.toFixed(3)})`);
    assert.deepEqual(road.fractions, [0.3, 0.7]);
    assert.ok(m.cases.every((c) => c.roadMorf! > 0 && c.roadMorf! < 1 && c.roadLerf! > 0 && c.roadLerf! < 1), 'a ROAD score per case');
    assert.equal(m.warnings.some((w) => w.includes('ROAD MoRF')), road.morf.mean > road.randomMorf.mean, 'a MoRF worse than random is warned about');
  });
});
