/**
 * evaluate() on the real NIH subset's labels (400 images, 14 findings) with synthetic scores: every number is
 * checked against the metric functions, the two kinds of interval against each other, and the awkward cases
 * (masked labels, a class without positives, thresholds from validation data or fixed) against what they must give.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { delong } from '../../src/eval/delong.js';
import { evaluate, type EvaluationInput } from '../../src/eval/evaluate.js';
import { averagePrecision } from '../../src/eval/pr.js';
import { PUBLISHED_NIH_AUROCS } from '../../src/eval/published.js';
import { auroc } from '../../src/eval/roc.js';
import { chooseThreshold, operatingPoint } from '../../src/eval/thresholds.js';
import { expectedCalibrationError } from '../../src/eval/calibration.js';
import { nihSubsetInput } from './real-data.js';

function column(input: EvaluationInput, j: number, rows?: number[]) {
  const c = input.labels.length;
  const n = input.probabilities.length / c;
  const keep = rows ?? Array.from({ length: n }, (_, i) => i);
  return { scores: keep.map((i) => input.probabilities[i * c + j]), labels: keep.map((i) => input.targets[i * c + j]) };
}

describe('evaluate on the NIH subset labels', async () => {
  const input = await nihSubsetInput();
  const result = evaluate(input, { bootstrap: { resamples: 1000, seed: 3 } });

  it('per-class AUROC, AP, counts, calibration and the operating point agree with the metric functions', () => {
    assert.equal(result.samples, 400);
    assert.equal(result.classes.length, 14);
    result.classes.forEach((k, j) => {
      const { scores, labels } = column(input, j);
      assert.equal(k.positives + k.negatives, 400);
      assert.equal(k.positives, labels.filter((v) => v === 1).length);
      assert.equal(k.auroc, auroc(scores, labels));
      assert.equal(k.averagePrecision, averagePrecision(scores, labels));
      assert.equal(k.calibration.ece, expectedCalibrationError(scores, labels));
      const chosen = chooseThreshold(scores, labels, { kind: 'youden' });
      assert.equal(k.threshold!.value, chosen.threshold);
      assert.deepEqual(k.operatingPoint, operatingPoint(scores, labels, chosen.threshold));
      assert.equal(k.delong!.standardError, delong(scores, labels).standardError);
    });
    const aurocs = result.classes.map((k) => k.auroc!);
    assert.equal(result.summary.meanAuroc, aurocs.reduce((a, b) => a + b) / 14);
  });

  it('the bootstrap and DeLong intervals roughly agree on every finding (both contain the AUROC)', () => {
    for (const k of result.classes) {
      assert.ok(k.bootstrap!.lower < k.auroc! && k.auroc! < k.bootstrap!.upper, k.label);
      assert.ok(k.delong!.lower < k.auroc! && k.auroc! < k.delong!.upper, k.label);
      const widthRatio = (k.bootstrap!.upper - k.bootstrap!.lower) / (k.delong!.upper - k.delong!.lower);
      assert.ok(widthRatio > 0.8 && widthRatio < 1.25, `${k.label}: bootstrap width / DeLong width = ${widthRatio}`);
      assert.ok(Math.abs(k.bootstrap!.lower - k.delong!.lower) < 0.04 && Math.abs(k.bootstrap!.upper - k.delong!.upper) < 0.04, k.label);
    }
    const mean = result.summary.meanAurocBootstrap!;
    assert.ok(mean.lower < result.summary.meanAuroc! && result.summary.meanAuroc! < mean.upper);
    assert.ok(mean.upper - mean.lower < 0.1, 'the mean over 14 findings is tighter than any single finding');
  });

  it('thresholds chosen on the evaluated data are flagged as optimistic', () => {
    assert.deepEqual(result.settings.thresholds, { source: 'chosen on the evaluated data itself', rule: 'youden', optimistic: true });
    assert.ok(result.warnings.some((w) => /optimistic/.test(w)));
  });

  it('the published comparison lists every finding, with CheXNet\'s numbers and comparable means', () => {
    const comparison = result.comparison!;
    assert.equal(comparison.rows.length, 14);
    const chexnet = PUBLISHED_NIH_AUROCS.find((s) => s.id === 'chexnet')!;
    for (const row of comparison.rows) assert.equal(row.published.chexnet, chexnet.auroc[row.label]);
    assert.equal(comparison.rows.find((r) => r.label === 'Consolidation')!.published['wang2017-cvpr'], null, 'the CVPR paper has 8 findings');
    assert.equal(comparison.means['wang2017-cvpr']!.findings, 8);
    assert.ok(Math.abs(comparison.means.chexnet!.theirs - 0.8413) < 1e-3, 'CheXNet\'s 14 values average to its reported 0.841');
    assert.ok(Math.abs(comparison.means.swinchex!.theirs - 0.81) < 1e-3, 'SwinCheX\'s 14 values average to its reported 0.810');
  });

  it('a patient bootstrap equals the image bootstrap when every patient has one image', () => {
    const byPatient = evaluate(input, { bootstrap: { resamples: 200, seed: 5, byCluster: true } });
    const byImage = evaluate(input, { bootstrap: { resamples: 200, seed: 5 } });
    assert.equal(new Set(input.clusters).size, 400);
    assert.deepEqual(byPatient.classes.map((k) => k.bootstrap), byImage.classes.map((k) => k.bootstrap));
    assert.equal(byPatient.settings.bootstrap!.unit, 'cluster');
  });
});

describe('evaluate: masks, absent classes, threshold sources, bad input', async () => {
  const input = await nihSubsetInput(2);
  const c = 14;

  it('masked labels are left out of their class only, and counted as ignored', () => {
    const mask = new Uint8Array(400 * c).fill(1);
    const masked = [3, 10, 50, 51, 52, 200];
    for (const i of masked) mask[i * c + 2] = 0;
    const result = evaluate({ ...input, mask }, { bootstrap: false });
    const effusion = result.classes[2];
    assert.equal(effusion.ignored, masked.length);
    const kept = Array.from({ length: 400 }, (_, i) => i).filter((i) => !masked.includes(i));
    const { scores, labels } = column(input, 2, kept);
    assert.equal(effusion.auroc, auroc(scores, labels));
    assert.equal(result.classes[3].ignored, 0);
  });

  it('a class with no positives: AUROC undefined and said so, no interval, the mean over the others', () => {
    const targets = Float64Array.from(input.targets);
    for (let i = 0; i < 400; i++) targets[i * c + 13] = 0; // no Hernia
    const result = evaluate({ ...input, targets }, { bootstrap: { resamples: 100 } });
    const hernia = result.classes[13];
    assert.equal(hernia.auroc, null);
    assert.equal(hernia.note, 'AUROC undefined: no positive samples');
    assert.equal(hernia.bootstrap, null);
    assert.equal(hernia.delong, null);
    assert.equal(hernia.curves, null);
    assert.ok(result.warnings.includes('Hernia: AUROC undefined: no positive samples'));
    assert.ok(result.warnings.includes('Hernia: no threshold, the evaluated data has no positives'));
    assert.equal(result.summary.meanOver.length, 13);
    assert.ok(!result.summary.meanOver.includes('Hernia'));
  });

  it('thresholds chosen on validation data, by a sensitivity target', async () => {
    const validation = await nihSubsetInput(9);
    const rule = { kind: 'sensitivity', target: 0.8 } as const;
    const result = evaluate(input, { bootstrap: false, thresholds: { kind: 'rule', rule, validation, source: 'chosen on val.csv' } });
    assert.deepEqual(result.settings.thresholds, { source: 'chosen on val.csv', rule: 'sensitivity:0.8', optimistic: false });
    result.classes.forEach((k, j) => {
      const v = column(validation, j);
      assert.equal(k.threshold!.value, chooseThreshold(v.scores, v.labels, rule).threshold);
      const t = column(input, j);
      assert.deepEqual(k.operatingPoint, operatingPoint(t.scores, t.labels, k.threshold!.value));
    });
    assert.ok(!result.warnings.some((w) => /optimistic/.test(w)));
  });

  it('fixed thresholds: used as given; a label without one is noted', () => {
    const result = evaluate(input, { bootstrap: false, thresholds: { kind: 'fixed', values: { Atelectasis: 0.2, Effusion: 0.35 }, source: 'model.onnx' } });
    assert.equal(result.classes[0].threshold!.value, 0.2);
    assert.equal(result.classes[2].threshold!.value, 0.35);
    assert.equal(result.classes[1].threshold, null);
    assert.equal(result.classes[1].operatingPoint, null);
    assert.ok(result.warnings.includes('Cardiomegaly: no threshold in model.onnx'));
  });

  it('bad input names the sample and label', () => {
    const probabilities = Float64Array.from(input.probabilities);
    probabilities[5 * c + 4] = 1.5;
    assert.throws(() => evaluate({ ...input, probabilities }), new RegExp(`"${input.ids![5]}", Mass: probability 1\\.5 is not in \\[0, 1\\]`));
    const targets = Float64Array.from(input.targets);
    targets[7 * c] = 0.7;
    assert.throws(() => evaluate({ ...input, targets }), /Atelectasis: target 0\.7 is not 0 or 1/);
    assert.throws(() => evaluate({ ...input, targets: input.targets.subarray(1) }), /5599 targets for 5600 probabilities/);
    assert.throws(() => evaluate({ ...input, labels: input.labels.slice(1) }), /5600 probabilities is not a whole number of rows of 13 labels/);
    assert.throws(() => evaluate(input, { level: 1.2 }), /confidence level must be between 0 and 1, got 1\.2/);
    assert.throws(() => evaluate({ ...input, clusters: undefined }, { bootstrap: { byCluster: true } }), /cluster bootstrap needs cluster keys/);
  });
});
