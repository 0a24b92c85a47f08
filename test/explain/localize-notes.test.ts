/**
 * localize-eval says what it found: methods that coincide are named with the reason, scores below the random
 * baseline get a warning line, and randomisation steps without a correlation say why. On the six boxed NIH films
 * of nih-cxr14-subset with the embedded default model (MobileNetV2: global average pooling, then a linear head).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_MODEL_PATH, loadModel } from '../../src/api.js';
import { Explainer, belowRandom, boxedImageFiles, evaluateLocalization, localizationToHtml, randomizationLines, randomizationStep, readBoxedImages, type BoxedImage, type LocalizationReport, type MethodReport } from '../../src/explain/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';

describe('localize-eval notes and warnings', () => {
  let explainer: Explainer;
  let images: BoxedImage[];
  let report: LocalizationReport;
  before(async () => {
    const { model, path } = loadModel(DEFAULT_MODEL_PATH);
    explainer = await Explainer.create(model, { threads: 2, source: path });
    images = await readBoxedImages(await boxedImageFiles(sharedDataPath('nih-meta', 'BBox_List_2017.csv'), [sharedDataPath('nih-cxr14-subset', 'images')]));
    report = await evaluateLocalization(explainer, images, { methods: ['gradcam', 'hirescam', 'gradcam++', 'xgradcam'], randomDraws: 50, seed: 1 });
  });
  after(() => explainer?.close());

  it('Grad-CAM, HiResCAM and XGrad-CAM coincide by construction at the pooled layer, and the report says so; Grad-CAM++ does not', () => {
    assert.equal(report.coincidences.length, 1, report.coincidences.join('\n'));
    const [note] = report.coincidences;
    assert.match(note, /^gradcam, hirescam, xgradcam gave identical maps on every case, by construction: at \S+ the gradient of a finding's logit is the same at every location/);
    assert.doesNotMatch(note, /gradcam\+\+/);
    assert.ok(localizationToHtml(report).includes('by construction'), 'the HTML report carries the note');
  });

  it('at a layer the head does not pool directly, HiResCAM and Grad-CAM differ and no note is made', async () => {
    const layer = explainer.layers()[1];
    const other = await evaluateLocalization(explainer, images.slice(0, 2), { methods: ['gradcam', 'hirescam'], layer, randomDraws: 5 });
    assert.deepEqual(other.coincidences, [], `layer ${layer}`);
  });

  it('a warning line for exactly the scores below the random baseline', (t) => {
    for (const m of report.methods) {
      for (const w of m.warnings) t.diagnostic(w);
      const below = [
        m.overall.pointing < m.random.pointing.mean,
        ...Object.keys(m.overall.iou).map((k) => m.overall.iou[k] < m.random.iou[k].mean),
        ...Object.keys(m.overall.iobb).map((k) => m.overall.iobb[k] < m.random.iobb[k].mean),
        ...Object.keys(m.perFinding).map((f) => m.perFinding[f].pointing < m.random.perFinding[f].pointing.mean),
      ].filter(Boolean).length;
      assert.equal(m.warnings.length, below, `${m.method}: ${m.warnings.join('; ')}`);
    }
    assert.ok(report.methods.some((m) => m.warnings.length > 0), 'on six cases some score is below random (this model localises weakly)');
  });

  it('the warning names the score, the method and the baseline', () => {
    const m = report.methods[0];
    const made = (pointing: number) => belowRandom({ ...m, overall: { ...m.overall, pointing }, perFinding: {} } as MethodReport);
    const random = m.random.pointing.mean;
    assert.ok(made(random - 0.01).some((w) => w.startsWith(`gradcam: pointing ${(100 * (random - 0.01)).toFixed(1)}% is below random maps' ${(100 * random).toFixed(1)}%`)));
    assert.ok(!made(random + 0.01).some((w) => w.includes(': pointing ')));
    const faithful = { deletionAuc: { mean: 0.4, sd: 0 }, insertionAuc: { mean: 0.3, sd: 0 }, randomDeletionAuc: { mean: 0.3, sd: 0 }, randomInsertionAuc: { mean: 0.5, sd: 0 }, steps: 8 };
    const lines = belowRandom({ ...m, perFinding: {}, faithfulness: faithful } as MethodReport);
    assert.ok(lines.some((w) => /deletion AUC 0\.400 is above a random order's 0\.300/.test(w)));
    assert.ok(lines.some((w) => /insertion AUC 0\.300 is below a random order's 0\.500/.test(w)));
  });

  it('a randomisation step with constant maps says so instead of NaN; one with correlations averages those', () => {
    const none = randomizationStep('gradcam', ['classifier'], [], [], 6, 6, [-2.5, -1.9]);
    assert.equal(none.spearman, null);
    assert.equal(none.cases, 0);
    assert.match(none.note!, /^6 of 6 randomised maps are constant: gradcam's map is zero everywhere after its ReLU/);
    assert.deepEqual(none.constantLogits, [-2.5, -1.9]);
    const some = randomizationStep('gradcam', ['classifier', 'features.18'], [0.2, 0.4], [0.1, 0.3], 1, 3);
    assert.ok(Math.abs(some.spearman! - 0.3) < 1e-12 && Math.abs(some.spearmanAbs! - 0.2) < 1e-12);
    assert.match(some.note!, /^1 of 3 randomised maps are constant/);
    assert.equal(randomizationStep('gradcam', ['classifier'], [0.5], [0.5], 0, 1).note, undefined);
    assert.deepEqual(randomizationLines([none, some, none]), [
      'randomisation (Spearman with the trained maps, classifier first): const 0.30 const',
      `  steps 1, 3 of 3: ${none.note}`,
      `  step 2 of 3: ${some.note}`,
    ]);
  });
});
