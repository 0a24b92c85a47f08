/**
 * Calibration and operating points of the embedded default model (models/default.onnx, MobileNetV2) refitted on
 * its own recipe's validation split (356 real NIH images of patients it never trained on, the data its stored
 * calibration was fitted on): no probability is constant over the images, a finding whose logits rank positives lower stays
 * uncalibrated, thresholds at the default rule (specificity 0.9) hold through the run-time code, each has a
 * bootstrap interval around it, and a finding with too few validation positives gets no decision and the reason.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { DEFAULT_MODEL_PATH } from '../../src/api.js';
import { auroc } from '../../src/eval/roc.js';
import { DEFAULT_THRESHOLD_RULE, chooseThreshold, describeThresholdRule, thresholdInterval } from '../../src/eval/thresholds.js';
import { findingsFromLogits } from '../../src/outputs/findings.js';
import { readModelInfo, setThresholds } from '../../src/models/metadata.js';
import { readModelFile } from '../../src/onnx/index.js';
import { type LabelledImages, chooseThresholds, labelledImages } from '../../src/safety/calibrate.js';
import { MIN_PER_CLASS, calibratedProbabilities, fitCalibration, labelColumn } from '../../src/outputs/calibration.js';
import { calibrationMarkdown } from '../../src/safety/report.js';
import { runImages } from '../../src/safety/features.js';
import { readConfigFile, resolveConfig } from '../../src/train/config.js';
import { readDatasets, splitData } from '../../src/train/data.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { join } from 'node:path';

let labels: string[];
let validation: LabelledImages;
let logits: Float32Array;

/** Positives and negatives of label j among its labelled validation images. */
function counts(j: number): { positives: number; negatives: number } {
  const { truth } = labelColumn({ labels, logits, targets: validation.targets, mask: validation.mask }, j);
  const positives = truth.reduce((a, b) => a + b, 0);
  return { positives, negatives: truth.length - positives };
}

before(async () => {
  const config = resolveConfig(readConfigFile(join(REPO_ROOT, 'configs', 'default-model.yaml')), 'configs/default-model.yaml');
  const data = await splitData(await readDatasets(config), config);
  const model = readModelFile(DEFAULT_MODEL_PATH);
  labels = readModelInfo(model).labels;
  validation = labelledImages(data.validation, `validation split (${data.validation.records.length} images)`);
  logits = (await runImages(model, validation.sources, { threads: 2, batchSize: 16 })).logits.data as Float32Array;
});

describe('calibration of the default model on its real validation images', () => {
  it('no calibrated probability is constant over the images, and each keeps its logits\' ranking (AUROC unchanged)', (t) => {
    const calibration = fitCalibration({ labels, logits, targets: validation.targets, mask: validation.mask }, 'platt', validation.description);
    t.diagnostic(`calibrated: ${Object.keys(calibration.values).join(', ')}; skipped: ${JSON.stringify(calibration.skipped)}`);
    assert.ok(Object.keys(calibration.values).length >= 5, 'the well-supported findings are calibrated');
    const probabilities = calibratedProbabilities(calibration, labels, logits);
    labels.forEach((label, j) => {
      const column = labelColumn({ labels, logits: probabilities, targets: validation.targets, mask: validation.mask }, j);
      const raw = labelColumn({ labels, logits, targets: validation.targets, mask: validation.mask }, j);
      assert.ok(new Set(column.logits).size > column.logits.length / 2, `${label}: ${new Set(column.logits).size} distinct probabilities over ${column.logits.length} images`);
      assert.equal(auroc(column.logits, column.truth), auroc(raw.logits, raw.truth), label);
      // Every label is either calibrated or says why it is not.
      assert.equal(label in calibration.values, !(label in (calibration.skipped ?? {})), label);
      const { positives, negatives } = counts(j);
      if (positives < MIN_PER_CLASS || negatives < MIN_PER_CLASS) assert.match(calibration.skipped?.[label] ?? '', /only \d+ (positive|negative) of the \d+ labelled fitting images/, label);
    });
  });

  it('a finding whose logits rank positives lower (Pneumonia\'s logits negated, AUROC < 0.5) stays uncalibrated even when enough positives are allowed', () => {
    const j = labels.indexOf('Pneumonia');
    // A scorer ranking positives lower, as a weak model's finding can: the real logits with their order reversed.
    const reversed = Float32Array.from(logits, (v, i) => (i % labels.length === j ? -v : v));
    const raw = labelColumn({ labels, logits: reversed, targets: validation.targets, mask: validation.mask }, j);
    assert.ok(auroc(raw.logits, raw.truth) < 0.5, 'the reversed logits rank Pneumonia\'s positives lower');
    const calibration = fitCalibration({ labels, logits: reversed, targets: validation.targets, mask: validation.mask }, 'platt', validation.description, { minPerClass: 1 });
    assert.equal(calibration.values.Pneumonia, undefined);
    assert.match(calibration.skipped?.Pneumonia ?? '', /^the fitted slope -\d.* is not positive/);
    const findings = findingsFromLogits(labels, reversed, { calibration }, 0);
    assert.equal(findings[j].calibrated, false);
    assert.equal(findings[j].probability, 1 / (1 + Math.exp(-findings[j].logit)));
    // The old behaviour held the slope at 1e-6: the same probability, to six decimals, on every image.
    const held = calibratedProbabilities({ values: { Pneumonia: { a: 1e-6, b: -3.94 } } }, ['Pneumonia'], raw.logits);
    assert.equal(new Set(Array.from(held, (p) => p.toFixed(6))).size, 1);
    const kept = calibratedProbabilities(calibration, ['Pneumonia'], raw.logits);
    assert.equal(new Set(kept).size, new Set(raw.logits).size);
    assert.ok(new Set(Array.from(kept, (p) => p.toFixed(4))).size > 50);
  });

  it('specificity:0.9 (the default rule) thresholds keep >= 90% of validation negatives negative through findingsFromLogits, each inside its bootstrap CI; too few positives: no decision, with the reason', (t) => {
    assert.equal(describeThresholdRule(DEFAULT_THRESHOLD_RULE), 'specificity:0.9');
    const calibration = fitCalibration({ labels, logits, targets: validation.targets, mask: validation.mask }, 'platt', validation.description);
    const { thresholds, operatingPoints } = chooseThresholds(labels, logits, validation, calibration, DEFAULT_THRESHOLD_RULE);
    t.diagnostic(JSON.stringify({ values: thresholds.values, intervals: thresholds.intervals, withheld: thresholds.withheld }));
    assert.equal(thresholds.rule, 'specificity:0.9');
    assert.match(thresholds.intervalMethod ?? '', /^95% percentile bootstrap, 1000 resamples of the validation patients \(seed 0\)/);
    assert.ok(operatingPoints.length >= 5, `${operatingPoints.length} thresholds`);
    const c = labels.length;
    const n = logits.length / c;
    const findings = Array.from({ length: n }, (_, i) => findingsFromLogits(labels, logits, { calibration, thresholds }, i * c));
    labels.forEach((label, j) => {
      const { positives, negatives } = counts(j);
      const few = positives < MIN_PER_CLASS || negatives < MIN_PER_CLASS;
      assert.equal(label in thresholds.values, !few, `${label}: ${positives} positives, ${negatives} negatives`);
      if (few) {
        assert.match(thresholds.withheld?.[label] ?? '', new RegExp(`^only ${Math.min(positives, negatives)} (positive|negative) validation images of \\d+ labelled; a stable threshold needs at least ${MIN_PER_CLASS}$`));
        for (const image of findings) {
          assert.equal(image[j].decision, null);
          assert.equal(image[j].threshold, null);
          assert.equal(image[j].decisionNote, thresholds.withheld?.[label]);
        }
        return;
      }
      let negativesCalledNegative = 0;
      let negativeCount = 0;
      findings.forEach((image, i) => {
        if (validation.mask[i * c + j] !== 1 || validation.targets[i * c + j] >= 0.5) return;
        negativeCount++;
        if (image[j].decision === 'negative') negativesCalledNegative++;
      });
      assert.ok(negativesCalledNegative / negativeCount >= 0.9, `${label}: specificity ${negativesCalledNegative}/${negativeCount}`);
      const threshold = thresholds.values[label];
      const [lower, upper] = thresholds.intervals?.[label] ?? [NaN, NaN];
      assert.ok(lower <= threshold && threshold <= upper && lower < upper, `${label}: ${threshold} in [${lower}, ${upper}]`);
      assert.deepEqual(findings[0][j].thresholdInterval, [lower, upper]);
      assert.equal(findings[0][j].decisionNote, null);
      // Not every image called positive any more: specificity 0.9 leaves most negatives negative.
      assert.ok(findings.filter((image) => image[j].decision === 'positive').length < n / 2, label);
    });
    const card = calibrationMarkdown(calibration, thresholds, operatingPoints);
    assert.match(card, /Rule: \*\*specificity:0\.9\*\*/);
    assert.match(card, /\| Effusion \| 0\.\d{4} \| 0\.\d{4}-0\.\d{4} \|/);
    // Every finding with too few validation positives is named, with its count, under both headings.
    const scarce = labels.flatMap((label, j) => (counts(j).positives < MIN_PER_CLASS ? [{ label, positives: counts(j).positives }] : []));
    assert.ok(scarce.length > 0, 'some finding has fewer than 10 validation positives (Hernia here)');
    for (const { label, positives } of scarce) {
      assert.match(card, new RegExp(`\\*\\*Left uncalibrated\\*\\*[\\s\\S]*- ${label}: only ${positives} positive`));
      assert.match(card, new RegExp(`\\*\\*No threshold, so no decision\\*\\*[\\s\\S]*- ${label}: only ${positives} positive validation images`));
    }
  });

  it('the bootstrap interval resamples whole patients and is reproducible; one resample of every image reproduces the threshold', () => {
    const j = labels.indexOf('Effusion');
    const probabilities = calibratedProbabilities(undefined, labels, logits);
    const { logits: scores, truth } = labelColumn({ labels, logits: probabilities, targets: validation.targets, mask: validation.mask }, j);
    const chosen = chooseThreshold(scores, truth, DEFAULT_THRESHOLD_RULE).threshold;
    const patients = Int32Array.from(validation.clusters, (p) => Number(p));
    const a = thresholdInterval(scores, truth, DEFAULT_THRESHOLD_RULE, { resamples: 300, seed: 3, clusters: patients });
    const b = thresholdInterval(scores, truth, DEFAULT_THRESHOLD_RULE, { resamples: 300, seed: 3, clusters: patients });
    assert.deepEqual(a, b);
    assert.ok(a && a.lower <= chosen && chosen <= a.upper && a.used === 300, JSON.stringify(a));
    const other = thresholdInterval(scores, truth, DEFAULT_THRESHOLD_RULE, { resamples: 300, seed: 4, clusters: patients });
    assert.notDeepEqual(other, a);
    // With every image in one cluster, each resample draws all of them: the interval collapses onto the threshold.
    const one = thresholdInterval(scores, truth, DEFAULT_THRESHOLD_RULE, { resamples: 20, clusters: new Int32Array(scores.length) });
    assert.deepEqual([one?.lower, one?.upper], [chosen, chosen]);
  });
});

describe('thresholds in the model file', () => {
  it('new fields round-trip, older thresholds without them still load, and malformed ones are refused naming the field', () => {
    const model = readModelFile(DEFAULT_MODEL_PATH);
    const calibration = fitCalibration({ labels, logits, targets: validation.targets, mask: validation.mask }, 'platt', validation.description);
    const { thresholds } = chooseThresholds(labels, logits, validation, calibration, DEFAULT_THRESHOLD_RULE, { resamples: 100 });
    setThresholds(model, thresholds);
    assert.deepEqual(readModelInfo(model).thresholds, thresholds);
    setThresholds(model, { rule: 'youden', source: 'older model', values: { Effusion: 0.2 } });
    assert.deepEqual(readModelInfo(model).thresholds?.values, { Effusion: 0.2 });
    const bad = (extra: object, message: RegExp) => {
      setThresholds(model, { rule: 'youden', source: 's', values: { Effusion: 0.2 }, ...extra });
      assert.throws(() => readModelInfo(model, 'm.onnx'), message);
    };
    bad({ intervals: { Effusion: [0.3, 0.1] } }, /m\.onnx: metadata "cxr\.thresholds" "intervals" gives "Effusion" \[0\.3,0\.1\]; expected \[lower, upper\]/);
    bad({ intervals: { Lungs: [0.1, 0.3] } }, /"intervals" names "Lungs", which is not one of the model's labels/);
    bad({ withheld: { Effusion: 'too few' } }, /gives "Effusion" a threshold and also withholds it/);
    bad({ withheld: { Hernia: '' } }, /"withheld" must give "Hernia" a reason/);
  });
});
