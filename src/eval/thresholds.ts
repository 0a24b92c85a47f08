/**
 * Operating points: the counts and rates at a threshold (a sample is called positive when its score is >= the
 * threshold), and thresholds chosen by a rule on validation data. Candidate thresholds are the distinct scores,
 * so a chosen threshold is always a score that occurred; ties between candidates go to the highest threshold.
 */
import { type Labels, type Scores, checkBinary } from './binary.js';
import { classifierCurve } from './roc.js';

export type ThresholdRule =
  /** Maximises Youden's J = sensitivity + specificity - 1. */
  | { kind: 'youden' }
  /** The highest threshold whose sensitivity reaches the target (so the best specificity at that sensitivity). */
  | { kind: 'sensitivity'; target: number }
  /** The lowest threshold whose specificity reaches the target (so the best sensitivity at that specificity). */
  | { kind: 'specificity'; target: number }
  /** Maximises F1 = 2 PPV sensitivity / (PPV + sensitivity). */
  | { kind: 'f1' };

/** `youden`, `f1`, `sensitivity:0.9` or `specificity:0.8`; the error lists what is accepted. */
export function parseThresholdRule(text: string): ThresholdRule {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === 'youden') return { kind: 'youden' };
  if (trimmed === 'f1') return { kind: 'f1' };
  const match = /^(sensitivity|specificity):(.+)$/.exec(trimmed);
  if (match) {
    const target = Number(match[2]);
    if (!(target > 0 && target <= 1)) throw new Error(`threshold rule "${text}": the target must be a number in (0, 1], e.g. ${match[1]}:0.9`);
    return { kind: match[1] as 'sensitivity' | 'specificity', target };
  }
  throw new Error(`unknown threshold rule "${text}"; use youden, f1, sensitivity:<0..1> or specificity:<0..1>`);
}

export function describeThresholdRule(rule: ThresholdRule): string {
  switch (rule.kind) {
    case 'youden':
      return 'youden';
    case 'f1':
      return 'f1';
    default:
      return `${rule.kind}:${rule.target}`;
  }
}

export interface OperatingPoint {
  threshold: number;
  truePositives: number;
  falsePositives: number;
  trueNegatives: number;
  falseNegatives: number;
  /** Recall, true-positive rate; NaN without positives. */
  sensitivity: number;
  /** True-negative rate; NaN without negatives. */
  specificity: number;
  /** Positive predictive value (precision); NaN when nothing is called positive. */
  ppv: number;
  /** Negative predictive value; NaN when nothing is called negative. */
  npv: number;
  /** NaN when there are no positives and nothing is called positive. */
  f1: number;
  accuracy: number;
}

export function operatingPoint(scores: Scores, labels: Labels, threshold: number): OperatingPoint {
  checkBinary(scores, labels);
  if (Number.isNaN(threshold)) throw new Error('threshold is NaN');
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const called = scores[i] >= threshold;
    if (labels[i] === 1) called ? tp++ : fn++;
    else called ? fp++ : tn++;
  }
  return pointFromCounts(threshold, tp, fp, tn, fn);
}

function pointFromCounts(threshold: number, tp: number, fp: number, tn: number, fn: number): OperatingPoint {
  return {
    threshold,
    truePositives: tp,
    falsePositives: fp,
    trueNegatives: tn,
    falseNegatives: fn,
    sensitivity: tp / (tp + fn),
    specificity: tn / (tn + fp),
    ppv: tp / (tp + fp),
    npv: tn / (tn + fn),
    f1: (2 * tp) / (2 * tp + fp + fn),
    accuracy: (tp + tn) / (tp + fp + tn + fn),
  };
}

export interface ChosenThreshold {
  rule: ThresholdRule;
  threshold: number;
  /** The operating point on the data the threshold was chosen on. */
  point: OperatingPoint;
}

/**
 * The threshold a rule picks on these scores and labels (validation data, not the test set). Needs both classes;
 * a sensitivity or specificity target that no threshold reaches is an error (it cannot happen for sensitivity,
 * whose lowest threshold reaches 1).
 */
export function chooseThreshold(scores: Scores, labels: Labels, rule: ThresholdRule): ChosenThreshold {
  const { positives, negatives } = checkBinary(scores, labels);
  if (positives === 0 || negatives === 0) {
    throw new Error(`cannot choose a threshold by ${describeThresholdRule(rule)}: the data has ${positives} positives and ${negatives} negatives`);
  }
  const { thresholds, tps, fps } = classifierCurve(scores, labels);
  let best = -1;
  let bestValue = -Infinity;
  for (let i = 0; i < thresholds.length; i++) {
    const tpr = tps[i] / positives;
    const tnr = 1 - fps[i] / negatives;
    let value: number;
    switch (rule.kind) {
      case 'youden':
        value = tpr - fps[i] / negatives;
        break;
      case 'f1':
        value = (2 * tps[i]) / (tps[i] + fps[i] + positives);
        break;
      case 'sensitivity':
        // Sensitivity grows as the threshold falls: the first to reach the target is the highest such threshold.
        value = tpr >= rule.target ? Infinity : -Infinity;
        break;
      case 'specificity':
        // Specificity falls with the threshold: the lowest threshold still meeting it has the most sensitivity.
        value = tnr >= rule.target ? i : -Infinity;
        break;
    }
    if (value > bestValue) {
      bestValue = value;
      best = i;
      if (value === Infinity) break;
    }
  }
  if (best < 0 || bestValue === -Infinity) {
    const what = rule.kind === 'specificity' ? 'specificity' : 'sensitivity';
    throw new Error(`no threshold reaches ${what} ${(rule as { target: number }).target} on this data`);
  }
  const tp = tps[best];
  const fp = fps[best];
  return { rule, threshold: thresholds[best], point: pointFromCounts(thresholds[best], tp, fp, negatives - fp, positives - tp) };
}
