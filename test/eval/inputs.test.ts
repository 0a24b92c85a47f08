/** Bad inputs to the metric functions: clear errors that say which entry, never a silent NaN or a crash. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ascendingOrder, descendingOrder } from '../../src/eval/binary.js';
import { expectedCalibrationError, fitPlatt, fitTemperature, reliabilityCurve } from '../../src/eval/calibration.js';
import { delongInterval, delongPairedTest, zFor } from '../../src/eval/delong.js';
import { averagePrecision } from '../../src/eval/pr.js';
import { SeededRandom } from '../../src/eval/random.js';
import { auroc } from '../../src/eval/roc.js';
import { operatingPoint, parseThresholdRule } from '../../src/eval/thresholds.js';

it('scores and labels: lengths, labels other than 0/1, non-finite scores', () => {
  assert.throws(() => auroc([0.1, 0.2], [0, 1, 1]), /2 scores but 3 labels/);
  assert.throws(() => auroc([0.1, 0.2, 0.3], [0, 2, 1]), /label 1 is 2; labels must be 0 or 1/);
  assert.throws(() => averagePrecision([0.1, Infinity], [0, 1]), /score 1 is Infinity; scores must be finite numbers/);
  assert.throws(() => operatingPoint([0.1, 0.2], [0, 1], NaN), /threshold is NaN/);
});

it('probabilities outside [0, 1] and bad bin settings are refused by the calibration functions', () => {
  assert.throws(() => expectedCalibrationError([0.2, 1.5], [0, 1]), /probabilities: value 1 is 1\.5, outside \[0, 1\]/);
  assert.throws(() => reliabilityCurve([0.2, 0.5], [0, 1], { bins: 0 }), /bins must be a positive whole number, got 0/);
  assert.throws(() => reliabilityCurve([0.2, 0.5], [0, 1], { strategy: 'equal' as 'uniform' }), /strategy must be uniform or quantile, got equal/);
});

it('threshold rules: the accepted spellings and clear errors', () => {
  assert.deepEqual(parseThresholdRule('Youden'), { kind: 'youden' });
  assert.deepEqual(parseThresholdRule('sensitivity:0.9'), { kind: 'sensitivity', target: 0.9 });
  assert.deepEqual(parseThresholdRule('specificity:0.75'), { kind: 'specificity', target: 0.75 });
  assert.throws(() => parseThresholdRule('sensitivity:90'), /target must be a number in \(0, 1\], e\.g\. sensitivity:0\.9/);
  assert.throws(() => parseThresholdRule('accuracy'), /unknown threshold rule "accuracy"; use youden, f1, sensitivity:<0\.\.1> or specificity:<0\.\.1>/);
});

it('DeLong: levels, too few samples for the paired test, zero variance', () => {
  assert.throws(() => zFor(1), /confidence level must be between 0 and 1, got 1/);
  assert.ok(Math.abs(zFor(0.95) - 1.959963984540054) < 1e-15);
  assert.throws(() => delongPairedTest([0.1, 0.9, 0.5], [0.2, 0.8, 0.3], [0, 1, 0]), /at least 2 positives and 2 negatives, got 1 and 2/);
  assert.deepEqual(delongInterval({ auc: 1, variance: 0, standardError: 0, positives: 3, negatives: 3 }, { scale: 'logit' }), { lower: 1, upper: 1 });
});

it('calibration fits refuse data they cannot fit, saying why', () => {
  assert.throws(() => fitTemperature([1, 2, 3], [1, 1, 1]), /needs both classes, got 3 positives and 0 negatives/);
  assert.throws(() => fitTemperature([1, -2, 3, -1], [0, 1, 0, 1]), /do not rank positives above negatives/);
  assert.throws(() => fitTemperature([-3, -1, 2, 4], [0, 0, 1, 1]), /separate the classes perfectly/);
  assert.throws(() => fitPlatt([-3, -1, 2, 4], [0, 0, 1, 1], { targets: 'labels' }), /separate the classes perfectly/);
  const smoothed = fitPlatt([-3, -1, 2, 4], [0, 0, 1, 1]);
  assert.ok(Number.isFinite(smoothed.a) && smoothed.a > 0, 'Platt targets keep a separable fit finite');
});

it('the radix sort behind large inputs orders like a comparison sort: negatives, zeros of both signs, infinities, denormals, ties', () => {
  const random = new SeededRandom(3);
  for (const n of [4095, 4096, 30000]) {
    const scores = Float64Array.from({ length: n }, (_, i) => {
      const u = random.uint32() / 2 ** 32;
      if (i % 7 === 0) return -u * 1e3;
      if (i % 11 === 0) return i % 2 ? 0 : -0;
      if (i % 13 === 0) return u * 1e-310;
      return Math.round(u * 1e4) / 1e4;
    });
    scores[3] = Infinity;
    scores[4] = -Infinity;
    const order = ascendingOrder(scores);
    assert.equal(new Set(order).size, n, 'a permutation');
    for (let i = 1; i < n; i++) assert.ok(scores[order[i - 1]] <= scores[order[i]], `position ${i}`);
    const descending = descendingOrder(scores);
    for (let i = 1; i < n; i++) assert.ok(scores[descending[i - 1]] >= scores[descending[i]], `position ${i}`);
  }
});

it('AUROC on a large input (radix-sorted) equals the pairwise Mann-Whitney count', () => {
  const random = new SeededRandom(4);
  const n = 6000;
  const labels = Uint8Array.from({ length: n }, () => (random.uint32() < 2 ** 30 ? 1 : 0));
  const scores = Float64Array.from(labels, (y) => Math.round((random.uint32() / 2 ** 32 + 0.3 * y) * 100) / 100);
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < n; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < n; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      wins += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  assert.ok(Math.abs(auroc(scores, labels) - wins / pairs) < 1e-12);
});
