/**
 * The metrics against scikit-learn 1.2, NumPy and SciPy on the fixtures written by
 * scripts/fixtures/make_eval_fixtures.py (ties, float32 probabilities, degenerate cases), to 1e-9 or better.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { percentileOfSorted } from '../../src/eval/bootstrap.js';
import { applyPlatt, brierScore, expectedCalibrationError, fitPlatt, fitTemperature, reliabilityCurve } from '../../src/eval/calibration.js';
import { delong, delongInterval, delongPairedTest } from '../../src/eval/delong.js';
import { normalCdf, normalQuantile, normalSf } from '../../src/eval/normal.js';
import { averagePrecision, precisionRecallCurve } from '../../src/eval/pr.js';
import { auroc, rocCurve } from '../../src/eval/roc.js';
import { chooseThreshold, operatingPoint, parseThresholdRule } from '../../src/eval/thresholds.js';
import { assertAllClose, assertClose, evalFixture } from './helpers.js';

type Nums = (number | null)[];
interface Case {
  name: string;
  scores: number[];
  labels: number[];
  expected: {
    positives: number;
    negatives: number;
    auroc?: number;
    averagePrecision?: number;
    roc?: { fpr: Nums; tpr: Nums; thresholds: Nums };
    rocAll?: { fpr: Nums; tpr: Nums; thresholds: Nums };
    pr?: { precision: Nums; recall: Nums; thresholds: Nums };
    delong?: { auc: number; variance: number | null; plain95: Nums; logit95: Nums; plain90: Nums };
    thresholds?: Record<string, number | null>;
    operatingPoints?: Record<string, Record<string, number | null>>;
    brier?: number;
    calibration?: Record<string, { strategy: 'uniform' | 'quantile'; bins: number; edges: Nums; counts: number[]; fractionPositive: Nums; meanPredicted: Nums; ece: number }>;
  };
}

const { cases, versions } = evalFixture<{ cases: Case[]; versions: Record<string, string> }>('metrics.json');
const TOL = 1e-12;

describe(`binary metrics vs scikit-learn ${versions.sklearn}`, () => {
  for (const c of cases) {
    const e = c.expected;
    describe(c.name, () => {
      if (e.auroc !== undefined) {
        it('AUROC and average precision', () => {
          assertClose(auroc(c.scores, c.labels), e.auroc!, TOL, 'auroc');
          assertClose(averagePrecision(c.scores, c.labels), e.averagePrecision!, TOL, 'average precision');
        });
        it('ROC curve, with and without intermediate points', () => {
          for (const [key, drop] of [['roc', true], ['rocAll', false]] as const) {
            const curve = rocCurve(c.scores, c.labels, { dropIntermediate: drop });
            assertAllClose(curve.fpr, e[key]!.fpr, TOL, `${key} fpr`);
            assertAllClose(curve.tpr, e[key]!.tpr, TOL, `${key} tpr`);
            assert.equal(curve.thresholds[0], Infinity);
            assertAllClose(curve.thresholds.subarray(1), e[key]!.thresholds, 0, `${key} thresholds`);
          }
        });
        it('precision-recall curve', () => {
          const curve = precisionRecallCurve(c.scores, c.labels);
          assertAllClose(curve.precision, e.pr!.precision, TOL, 'precision');
          assertAllClose(curve.recall, e.pr!.recall, TOL, 'recall');
          assertAllClose(curve.thresholds, e.pr!.thresholds, 0, 'thresholds');
        });
        it('DeLong variance and intervals match the Sun & Xu reference implementation', () => {
          const estimate = delong(c.scores, c.labels);
          assertClose(estimate.auc, e.delong!.auc, 1e-12, 'auc');
          assertClose(estimate.variance, e.delong!.variance, 1e-15, 'variance');
          const plain = delongInterval(estimate);
          assertAllClose([plain.lower, plain.upper], e.delong!.plain95, 1e-12, 'plain 95% interval');
          const logit = delongInterval(estimate, { scale: 'logit' });
          assertAllClose([logit.lower, logit.upper], e.delong!.logit95, 1e-12, 'logit 95% interval');
          const ninety = delongInterval(estimate, { level: 0.9 });
          assertAllClose([ninety.lower, ninety.upper], e.delong!.plain90, 1e-12, 'plain 90% interval');
        });
        it('thresholds chosen by each rule, and the operating points there', () => {
          for (const [rule, expected] of Object.entries(e.thresholds!)) {
            if (expected === null) {
              assert.throws(() => chooseThreshold(c.scores, c.labels, parseThresholdRule(rule)), /no threshold reaches specificity 0\.8/);
              continue;
            }
            const chosen = chooseThreshold(c.scores, c.labels, parseThresholdRule(rule));
            assert.equal(chosen.threshold, expected, `${rule} threshold`);
            const point = operatingPoint(c.scores, c.labels, chosen.threshold);
            for (const [key, value] of Object.entries(e.operatingPoints![rule])) {
              assertClose(point[key as keyof typeof point], value, 1e-15, `${rule} ${key}`);
              assertClose(chosen.point[key as keyof typeof point], value, 1e-15, `${rule} ${key} (from the curve)`);
            }
          }
        });
      } else {
        it('AUROC and average precision are NaN (undefined) with one class', () => {
          assert.ok(Number.isNaN(auroc(c.scores, c.labels)));
          assert.ok(Number.isNaN(averagePrecision(c.scores, c.labels)));
          assert.ok(Number.isNaN(delong(c.scores, c.labels).variance));
          assert.throws(() => chooseThreshold(c.scores, c.labels, { kind: 'youden' }), /cannot choose a threshold by youden: the data has 0 positives and 3 negatives/);
        });
      }
      if (e.calibration) {
        it('reliability curve, ECE and Brier score (scikit-learn calibration_curve bins)', () => {
          assertClose(brierScore(c.scores, c.labels), e.brier!, TOL, 'brier');
          for (const [key, expected] of Object.entries(e.calibration!)) {
            const options = { bins: expected.bins, strategy: expected.strategy };
            const curve = reliabilityCurve(c.scores, c.labels, options);
            assertAllClose(curve.edges, expected.edges, 1e-15, `${key} edges`);
            assert.deepEqual(curve.bins.map((b) => b.count), expected.counts, `${key} counts`);
            const filled = curve.bins.filter((b) => b.count > 0);
            assertAllClose(filled.map((b) => b.fractionPositive), expected.fractionPositive, TOL, `${key} fraction positive`);
            assertAllClose(filled.map((b) => b.meanPredicted), expected.meanPredicted, TOL, `${key} mean predicted`);
            assertClose(expectedCalibrationError(c.scores, c.labels, options), expected.ece, TOL, `${key} ECE`);
          }
        });
      }
    });
  }
});

interface Extras {
  paired: { scoresA: number[]; scoresB: number[]; labels: number[]; aucs: number[]; covariance: number[][]; z: number; pValue: number }[];
  temperature: { logits: number[]; labels: number[]; temperature: number; logLossAfter: number; logLossBefore: number };
  platt: { scores: number[]; labels: number[]; a: number; b: number; logLoss: number; sklearnA: number; sklearnB: number };
  normal: { quantile: [number, number][]; sf: [number, number][]; cdf: [number, number][] };
  percentiles: { values: number[]; q: number[]; expected: number[] }[];
}
const extras = evalFixture<Extras>('extras.json');

describe('paired DeLong test, calibration fits, normal distribution, percentiles', () => {
  it('paired DeLong test: AUROCs, covariance, z and p-value as the reference computes them', () => {
    for (const p of extras.paired) {
      const test = delongPairedTest(p.scoresA, p.scoresB, p.labels);
      assertAllClose([test.aucA, test.aucB], p.aucs, 1e-12, 'aucs');
      assertAllClose(test.covariance.flat(), p.covariance.flat(), 1e-15, 'covariance');
      assertClose(test.z, p.z, 1e-9, 'z');
      assertClose(test.pValue, p.pValue, 1e-12, 'p');
      assert.ok(Math.abs(test.pValue - p.pValue) <= 1e-9 * p.pValue, 'p-value relative error');
    }
  });

  it('temperature scaling finds the log-loss minimum', () => {
    const t = extras.temperature;
    const fit = fitTemperature(t.logits, t.labels);
    assertClose(fit.temperature, t.temperature, 1e-7, 'temperature');
    assertClose(fit.logLossAfter, t.logLossAfter, 1e-12, 'log-loss after');
    assertClose(fit.logLossBefore, t.logLossBefore, 1e-12, 'log-loss before');
    assert.ok(fit.logLossAfter < fit.logLossBefore);
  });

  it('Platt scaling matches a tight fit of the same objective, and scikit-learn\'s own (with its sign convention)', () => {
    const p = extras.platt;
    const fit = fitPlatt(p.scores, p.labels);
    assertClose(fit.a, p.a, 1e-7, 'a');
    assertClose(fit.b, p.b, 1e-7, 'b');
    assertClose(fit.logLoss, p.logLoss, 1e-12, 'log-loss');
    assertClose(-fit.a, p.sklearnA, 1e-4, 'scikit-learn A');
    assertClose(-fit.b, p.sklearnB, 1e-4, 'scikit-learn B');
    const calibrated = applyPlatt(p.scores, fit);
    assert.ok(calibrated.every((v) => v > 0 && v < 1));
  });

  it('normal quantiles and tails to double precision (SciPy)', () => {
    for (const [p, x] of extras.normal.quantile) assert.ok(Math.abs(normalQuantile(p) - x) <= 1e-14 * Math.max(1, Math.abs(x)), `quantile(${p}) = ${normalQuantile(p)}, SciPy ${x}`);
    for (const [x, sf] of extras.normal.sf) assert.ok(Math.abs(normalSf(x) - sf) <= 1e-13 * sf, `sf(${x}) = ${normalSf(x)}, SciPy ${sf}`);
    for (const [x, cdf] of extras.normal.cdf) assert.ok(Math.abs(normalCdf(x) - cdf) <= 1e-13 * cdf, `cdf(${x}) = ${normalCdf(x)}, SciPy ${cdf}`);
  });

  it('percentiles as NumPy computes them (linear)', () => {
    for (const { values, q, expected } of extras.percentiles) {
      const sorted = Float64Array.from(values).sort();
      q.forEach((qq, i) => assertClose(percentileOfSorted(sorted, qq / 100), expected[i], 1e-15, `percentile ${qq} of ${values.length}`));
    }
  });
});
