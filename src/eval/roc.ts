/**
 * ROC analysis as scikit-learn does it: one curve point per distinct score (a tie is one step, drawn as a
 * diagonal), and the AUROC as the area under that curve, which equals the Mann-Whitney statistic with ties counted
 * one half. Counts are whole numbers, so the area is summed exactly and divided once.
 */
import { type Labels, type Scores, checkBinary, descendingOrder } from './binary.js';

/**
 * Per distinct score, in decreasing order: how many positives (`tps`) and negatives (`fps`) score at least that
 * much (scikit-learn's `_binary_clf_curve`).
 */
export interface ClassifierCurve {
  thresholds: Float64Array;
  tps: Float64Array;
  fps: Float64Array;
}

export function classifierCurve(scores: Scores, labels: Labels): ClassifierCurve {
  checkBinary(scores, labels);
  const order = descendingOrder(scores);
  const thresholds: number[] = [];
  const tps: number[] = [];
  const fps: number[] = [];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    if (labels[i] === 1) tp++;
    else fp++;
    if (k === order.length - 1 || scores[order[k + 1]] !== scores[i]) {
      thresholds.push(scores[i]);
      tps.push(tp);
      fps.push(fp);
    }
  }
  return { thresholds: Float64Array.from(thresholds), tps: Float64Array.from(tps), fps: Float64Array.from(fps) };
}

/** Area under the ROC curve; NaN when the labels hold only one class (the AUROC is then undefined). */
export function auroc(scores: Scores, labels: Labels): number {
  return aurocOfCurve(classifierCurve(scores, labels));
}

export function aurocOfCurve({ tps, fps }: ClassifierCurve): number {
  const k = tps.length;
  if (k === 0) return NaN;
  const positives = tps[k - 1];
  const negatives = fps[k - 1];
  if (positives === 0 || negatives === 0) return NaN;
  // Twice the trapezoid area in count units: whole numbers, exact in doubles far beyond any real test set.
  let twiceArea = 0;
  let previousTp = 0;
  let previousFp = 0;
  for (let i = 0; i < k; i++) {
    twiceArea += (fps[i] - previousFp) * (tps[i] + previousTp);
    previousTp = tps[i];
    previousFp = fps[i];
  }
  return twiceArea / (2 * positives * negatives);
}

export interface RocCurve {
  /** False-positive rate at each threshold, from 0 to 1. */
  fpr: Float64Array;
  /** True-positive rate (sensitivity) at each threshold, from 0 to 1. */
  tpr: Float64Array;
  /** Decreasing; a sample counts as positive when its score is >= the threshold; the first is Infinity (none). */
  thresholds: Float64Array;
}

export interface RocOptions {
  /** Drop points on straight segments of the curve (scikit-learn's `drop_intermediate`, default true). */
  dropIntermediate?: boolean;
}

/**
 * scikit-learn's `roc_curve`, except that the first threshold is Infinity (as scikit-learn >= 1.3 writes it;
 * 1.2 wrote the highest score + 1). Rates are NaN when a class is absent.
 */
export function rocCurve(scores: Scores, labels: Labels, options: RocOptions = {}): RocCurve {
  let { thresholds, tps, fps } = classifierCurve(scores, labels);
  if ((options.dropIntermediate ?? true) && tps.length > 2) {
    const keep: number[] = [0];
    for (let i = 1; i < tps.length - 1; i++) {
      // Keep corners: where the second difference of either count is non-zero.
      if (fps[i + 1] - 2 * fps[i] + fps[i - 1] !== 0 || tps[i + 1] - 2 * tps[i] + tps[i - 1] !== 0) keep.push(i);
    }
    keep.push(tps.length - 1);
    thresholds = Float64Array.from(keep, (i) => thresholds[i]);
    tps = Float64Array.from(keep, (i) => tps[i]);
    fps = Float64Array.from(keep, (i) => fps[i]);
  }
  const k = tps.length;
  const positives = tps[k - 1];
  const negatives = fps[k - 1];
  const fpr = new Float64Array(k + 1);
  const tpr = new Float64Array(k + 1);
  const outThresholds = new Float64Array(k + 1);
  outThresholds[0] = Infinity;
  for (let i = 0; i < k; i++) {
    fpr[i + 1] = negatives > 0 ? fps[i] / negatives : NaN;
    tpr[i + 1] = positives > 0 ? tps[i] / positives : NaN;
    outThresholds[i + 1] = thresholds[i];
  }
  if (negatives === 0) fpr[0] = NaN;
  if (positives === 0) tpr[0] = NaN;
  return { fpr, tpr, thresholds: outThresholds };
}
