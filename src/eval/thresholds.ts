/**
 * Operating points: the counts and rates at a threshold (a sample is called positive when its score is >= the
 * threshold), and thresholds chosen by a rule on validation data. Candidate thresholds are the distinct scores,
 * so a chosen threshold is always a score that occurred; ties between candidates go to the highest threshold.
 * A chosen threshold's uncertainty is a percentile bootstrap: the rule chooses again on each resample (of samples,
 * or of whole clusters such as patients), with the same selection code weighted by how often each was drawn.
 */
import { type Labels, type Scores, checkBinary, descendingOrder } from './binary.js';
import { percentileInterval } from './bootstrap.js';
import { SeededRandom } from './random.js';
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

/**
 * The rule models are calibrated with unless told otherwise: the lowest threshold keeping 90% of the validation
 * negatives negative. Youden's J on a few hundred validation images with a handful of positives lands at low
 * thresholds that call most images positive; a stated specificity says what a positive call costs.
 */
export const DEFAULT_THRESHOLD_RULE: ThresholdRule = { kind: 'specificity', target: 0.9 };

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
  const best = selectCandidate(rule, thresholds.length, tps, fps, positives, negatives);
  if (best < 0) {
    const what = rule.kind === 'specificity' ? 'specificity' : 'sensitivity';
    throw new Error(`no threshold reaches ${what} ${(rule as { target: number }).target} on this data`);
  }
  const tp = tps[best];
  const fp = fps[best];
  return { rule, threshold: thresholds[best], point: pointFromCounts(thresholds[best], tp, fp, negatives - fp, positives - tp) };
}

/**
 * The candidate a rule picks among thresholds in decreasing order, given the (possibly weighted) true and false
 * positives at each and the class totals; -1 when none qualifies. The one selection both chooseThreshold and the
 * bootstrap use, so a resample is chosen exactly as the full data is.
 */
function selectCandidate(rule: ThresholdRule, count: number, tps: ArrayLike<number>, fps: ArrayLike<number>, positives: number, negatives: number): number {
  let best = -1;
  let bestValue = -Infinity;
  for (let i = 0; i < count; i++) {
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
  return bestValue === -Infinity ? -1 : best;
}

export interface ThresholdIntervalOptions {
  /** Default 1000. */
  resamples?: number;
  /** Default 0: the same seed gives the same interval everywhere. */
  seed?: number;
  /** Default 0.95. */
  level?: number;
  /** The cluster (e.g. patient) of each sample, as integers: whole clusters are drawn. Default: samples are drawn. */
  clusters?: ArrayLike<number>;
}

export interface ThresholdInterval {
  lower: number;
  upper: number;
  level: number;
  /** Resamples in which the rule chose a threshold. */
  used: number;
  /** Resamples without a positive or a negative, or where no threshold met the rule's target. */
  skipped: number;
}

/**
 * Percentile bootstrap interval of the threshold `rule` chooses on these scores: each resample draws as many
 * samples (or clusters) as there are, with replacement, and the rule chooses again among the scores drawn. Null
 * when no resample gave a threshold. One sort; each resample is one weighted pass over the sorted scores.
 */
export function thresholdInterval(scores: Scores, labels: Labels, rule: ThresholdRule, options: ThresholdIntervalOptions = {}): ThresholdInterval | null {
  checkBinary(scores, labels);
  const resamples = options.resamples ?? 1000;
  const level = options.level ?? 0.95;
  if (!Number.isInteger(resamples) || resamples < 1) throw new Error(`bootstrap resamples must be a positive whole number, got ${resamples}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`confidence level must be between 0 and 1, got ${level}`);
  const n = scores.length;
  if (options.clusters && options.clusters.length !== n) throw new Error(`clusters: ${options.clusters.length} given for ${n} samples`);
  // Units drawn: clusters renumbered 0..k-1, or the samples themselves.
  const unitOf = new Int32Array(n);
  let units = n;
  if (options.clusters) {
    const renumber = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      let id = renumber.get(options.clusters[i]);
      if (id === undefined) renumber.set(options.clusters[i], (id = renumber.size));
      unitOf[i] = id;
    }
    units = renumber.size;
  } else for (let i = 0; i < n; i++) unitOf[i] = i;
  // Samples in decreasing score; groupEnd[g] is one past the last sample of the g-th distinct score.
  const order = descendingOrder(scores);
  const groupEnds: number[] = [];
  const groupValues: number[] = [];
  for (let k = 0; k < n; k++) {
    if (k === n - 1 || scores[order[k + 1]] !== scores[order[k]]) {
      groupEnds.push(k + 1);
      groupValues.push(scores[order[k]]);
    }
  }
  const sortedUnit = Int32Array.from(order, (i) => unitOf[i]);
  const sortedPositive = Uint8Array.from(order, (i) => labels[i]);
  const random = new SeededRandom(options.seed ?? 0);
  const weights = new Int32Array(units);
  const tps = new Float64Array(groupEnds.length);
  const fps = new Float64Array(groupEnds.length);
  const candidates = new Float64Array(groupEnds.length);
  const values = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    weights.fill(0);
    for (let i = 0; i < units; i++) weights[random.below(units)]++;
    let tp = 0;
    let fp = 0;
    let count = 0;
    let k = 0;
    for (let g = 0; g < groupEnds.length; g++) {
      let drawn = 0;
      for (; k < groupEnds[g]; k++) {
        const w = weights[sortedUnit[k]];
        drawn += w;
        if (sortedPositive[k] === 1) tp += w;
        else fp += w;
      }
      // A score no drawn sample has is not a candidate, as on the full data.
      if (drawn === 0) continue;
      tps[count] = tp;
      fps[count] = fp;
      candidates[count++] = groupValues[g];
    }
    if (tp === 0 || fp === 0) {
      values[r] = NaN;
      continue;
    }
    const best = selectCandidate(rule, count, tps, fps, tp, fp);
    values[r] = best < 0 ? NaN : candidates[best];
  }
  const interval = percentileInterval(values, level);
  return interval ? { lower: interval.lower, upper: interval.upper, level, used: interval.used, skipped: interval.skipped } : null;
}
