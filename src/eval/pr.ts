/**
 * Precision-recall as scikit-learn does it. Average precision is the step-function sum
 * AP = sum_k (R_k - R_(k-1)) P_k over distinct scores (scikit-learn's `average_precision_score`), not the
 * trapezoidal area under the PR curve, which is optimistic.
 */
import type { Labels, Scores } from './binary.js';
import { type ClassifierCurve, classifierCurve } from './roc.js';

export interface PrecisionRecallCurve {
  /** scikit-learn's order: increasing threshold, so recall decreases; the last point is (recall 0, precision 1). */
  precision: Float64Array;
  recall: Float64Array;
  /** Increasing; one fewer than the points (the last point has no threshold). */
  thresholds: Float64Array;
}

/** scikit-learn 1.2's `precision_recall_curve`. Without positives recall is NaN (scikit-learn writes 1 and warns). */
export function precisionRecallCurve(scores: Scores, labels: Labels): PrecisionRecallCurve {
  const { thresholds, tps, fps } = classifierCurve(scores, labels);
  const k = tps.length;
  const positives = tps[k - 1];
  const precision = new Float64Array(k + 1);
  const recall = new Float64Array(k + 1);
  const increasing = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    const j = k - 1 - i;
    precision[i] = tps[j] / (tps[j] + fps[j]);
    recall[i] = positives > 0 ? tps[j] / positives : NaN;
    increasing[i] = thresholds[j];
  }
  precision[k] = 1;
  recall[k] = 0;
  return { precision, recall, thresholds: increasing };
}

/** Average precision; NaN without positives (undefined: there is nothing to recall). */
export function averagePrecision(scores: Scores, labels: Labels): number {
  return averagePrecisionOfCurve(classifierCurve(scores, labels));
}

export function averagePrecisionOfCurve({ tps, fps }: ClassifierCurve): number {
  const k = tps.length;
  const positives = k > 0 ? tps[k - 1] : 0;
  if (positives === 0) return NaN;
  let sum = 0;
  let previousTp = 0;
  for (let i = 0; i < k; i++) {
    if (tps[i] !== previousTp) sum += ((tps[i] - previousTp) / positives) * (tps[i] / (tps[i] + fps[i]));
    previousTp = tps[i];
  }
  return sum;
}
