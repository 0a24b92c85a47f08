/**
 * DeLong et al. (1988) variance of the AUROC, computed the fast way of Sun & Xu (2014, IEEE Signal Processing
 * Letters 21(11)): one sort gives every sample's placement value (for a positive, the fraction of negatives
 * scoring below it, ties one half; for a negative, the fraction of positives scoring above it); the AUROC is their
 * mean and its variance is var(positive placements)/m + var(negative placements)/n with unbiased (n - 1)
 * variances, exactly as the widely used reference implementation (yandexdataschool/roc_comparison,
 * compare_auc_delong_xu.py) computes it.
 */
import { type Labels, type Scores, checkBinary, descendingOrder } from './binary.js';
import { normalQuantile, normalSf } from './normal.js';

export interface DelongEstimate {
  auc: number;
  /** DeLong variance of the AUROC; NaN with fewer than 2 positives or 2 negatives. */
  variance: number;
  standardError: number;
  positives: number;
  negatives: number;
}

/**
 * Per sample, its placement value: for a positive the fraction of negatives below it, for a negative the fraction
 * of positives above it (ties count one half).
 */
export function placementValues(scores: Scores, labels: Labels): Float64Array {
  const { positives: m, negatives: n } = checkBinary(scores, labels);
  const order = descendingOrder(scores);
  const placements = new Float64Array(scores.length);
  // Walk tie groups from the lowest score up.
  let negativesBelow = 0;
  let positivesBelow = 0;
  let end = order.length;
  while (end > 0) {
    let start = end - 1;
    const value = scores[order[start]];
    while (start > 0 && scores[order[start - 1]] === value) start--;
    let groupPositives = 0;
    for (let k = start; k < end; k++) groupPositives += labels[order[k]];
    const groupNegatives = end - start - groupPositives;
    const positivePlacement = (negativesBelow + 0.5 * groupNegatives) / n;
    const negativePlacement = 1 - (positivesBelow + 0.5 * groupPositives) / m;
    for (let k = start; k < end; k++) placements[order[k]] = labels[order[k]] === 1 ? positivePlacement : negativePlacement;
    negativesBelow += groupNegatives;
    positivesBelow += groupPositives;
    end = start;
  }
  return placements;
}

export function delong(scores: Scores, labels: Labels): DelongEstimate {
  const { positives, negatives } = checkBinary(scores, labels);
  if (positives === 0 || negatives === 0) return { auc: NaN, variance: NaN, standardError: NaN, positives, negatives };
  const [[auc], [[variance]]] = delongMoments([placementValues(scores, labels)], labels, positives, negatives);
  return { auc, variance, standardError: Math.sqrt(variance), positives, negatives };
}

/** AUROCs and their DeLong covariance matrix for several scorers of the same samples. */
function delongMoments(placements: Float64Array[], labels: Labels, m: number, n: number): [number[], number[][]] {
  const k = placements.length;
  const meanPositive = new Array<number>(k).fill(0);
  const meanNegative = new Array<number>(k).fill(0);
  for (let r = 0; r < k; r++) {
    const p = placements[r];
    for (let i = 0; i < p.length; i++) {
      if (labels[i] === 1) meanPositive[r] += p[i];
      else meanNegative[r] += p[i];
    }
    meanPositive[r] /= m;
    meanNegative[r] /= n;
  }
  const covariance = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let a = 0; a < k; a++) {
    for (let b = a; b < k; b++) {
      let sx = 0;
      let sy = 0;
      const pa = placements[a];
      const pb = placements[b];
      for (let i = 0; i < pa.length; i++) {
        if (labels[i] === 1) sx += (pa[i] - meanPositive[a]) * (pb[i] - meanPositive[b]);
        else sy += (pa[i] - meanNegative[a]) * (pb[i] - meanNegative[b]);
      }
      covariance[a][b] = covariance[b][a] = sx / (m - 1) / m + sy / (n - 1) / n;
    }
  }
  return [meanPositive, covariance];
}

export type IntervalScale = 'auc' | 'logit';

export interface ConfidenceInterval {
  lower: number;
  upper: number;
}

/**
 * Normal-approximation interval for the AUROC from its DeLong standard error, at `level` (default 0.95).
 * `auc` (default): AUROC +- z * SE, clipped to [0, 1] (as pROC and the reference implementation report it).
 * `logit`: symmetric on the logit scale, then mapped back: stays inside (0, 1) and is asymmetric near 1.
 * With zero variance (e.g. perfect separation) the interval is the point itself; NaN when the variance is.
 */
export function delongInterval(estimate: DelongEstimate, options: { level?: number; scale?: IntervalScale } = {}): ConfidenceInterval {
  const z = zFor(options.level ?? 0.95);
  const { auc, standardError: se } = estimate;
  if (!Number.isFinite(se) || !Number.isFinite(auc)) return { lower: NaN, upper: NaN };
  if (se === 0) return { lower: auc, upper: auc };
  if ((options.scale ?? 'auc') === 'auc') return { lower: Math.max(0, auc - z * se), upper: Math.min(1, auc + z * se) };
  if (auc <= 0 || auc >= 1) return { lower: auc, upper: auc };
  const center = Math.log(auc / (1 - auc));
  const halfWidth = (z * se) / (auc * (1 - auc));
  return { lower: 1 / (1 + Math.exp(-(center - halfWidth))), upper: 1 / (1 + Math.exp(-(center + halfWidth))) };
}

/** The two-sided normal quantile for a confidence level, e.g. 1.959963984540054 for 0.95. */
export function zFor(level: number): number {
  if (!(level > 0 && level < 1)) throw new RangeError(`confidence level must be between 0 and 1, got ${level}`);
  return normalQuantile(0.5 + level / 2);
}

export interface PairedDelongTest {
  aucA: number;
  aucB: number;
  /** aucA - aucB */
  difference: number;
  /** The DeLong covariance matrix [[var A, cov], [cov, var B]]. */
  covariance: [[number, number], [number, number]];
  standardError: number;
  z: number;
  /** Two-sided p-value of "both scorers have the same AUROC". */
  pValue: number;
  /** Interval for the difference at `level` (normal approximation). */
  interval: ConfidenceInterval;
}

/** DeLong's test of two scorers on the same samples (paired: their placements covary). */
export function delongPairedTest(scoresA: Scores, scoresB: Scores, labels: Labels, options: { level?: number } = {}): PairedDelongTest {
  const { positives, negatives } = checkBinary(scoresA, labels, 'scores A');
  checkBinary(scoresB, labels, 'scores B');
  if (positives < 2 || negatives < 2) throw new Error(`DeLong's test needs at least 2 positives and 2 negatives, got ${positives} and ${negatives}`);
  const [[aucA, aucB], c] = delongMoments([placementValues(scoresA, labels), placementValues(scoresB, labels)], labels, positives, negatives);
  const difference = aucA - aucB;
  const standardError = Math.sqrt(Math.max(0, c[0][0] + c[1][1] - 2 * c[0][1]));
  const z = standardError > 0 ? difference / standardError : difference === 0 ? 0 : Math.sign(difference) * Infinity;
  const half = zFor(options.level ?? 0.95) * standardError;
  return {
    aucA,
    aucB,
    difference,
    covariance: [
      [c[0][0], c[0][1]],
      [c[1][0], c[1][1]],
    ],
    standardError,
    z,
    pValue: Math.min(1, 2 * normalSf(Math.abs(z))),
    interval: { lower: difference - half, upper: difference + half },
  };
}
