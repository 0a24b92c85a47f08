/**
 * Turning a model's logits into findings: each finding's probability is the sigmoid of its own logit (findings
 * are independent, never a softmax across them), recalibrated where the model carries a calibration for it, and
 * only where the model carries a validated threshold does a finding get a decision, named with the rule that chose
 * it and the threshold's confidence interval; without one the decision is null and `decisionNote` says why. Pure:
 * the server, the CLI and the browser's private mode all use it.
 */
import { sigmoid } from '../eval/calibration.js';
import type { Calibration, Thresholds } from '../models/metadata.js';
import { calibratedProbability, isCalibrated } from './calibration.js';

export { sigmoid };

export interface Finding {
  name: string;
  /** sigmoid(logit), or the calibrated probability when the model has a calibration for this finding. */
  probability: number;
  logit: number;
  /** True when the probability went through the model's calibration of this finding; false: the plain sigmoid. */
  calibrated: boolean;
  /** The model's validated operating point for this finding, or null where it has none. */
  threshold: number | null;
  /** The rule that chose the threshold (e.g. "specificity:0.9", "youden"), or null without a threshold. */
  thresholdRule: string | null;
  /** The threshold's bootstrap confidence interval [lower, upper], where the model stores one. */
  thresholdInterval: [number, number] | null;
  /** probability >= threshold; null without a threshold (no decision is made up). */
  decision: 'positive' | 'negative' | null;
  /** Why there is no decision (e.g. too few validation positives for a stable threshold); null with a decision. */
  decisionNote: string | null;
}

/** What a model stores about turning logits into probabilities and decisions. */
export interface OutputRules {
  thresholds?: Pick<Thresholds, 'rule' | 'values' | 'intervals' | 'withheld'>;
  calibration?: Pick<Calibration, 'values'>;
}

/** Findings of one image from its row of logits (labels.length values starting at `offset`). */
export function findingsFromLogits(labels: readonly string[], logits: ArrayLike<number>, rules: OutputRules = {}, offset = 0): Finding[] {
  const thresholds = rules.thresholds;
  return labels.map((name, k) => {
    const logit = logits[offset + k];
    const probability = calibratedProbability(rules.calibration, name, logit);
    const threshold = thresholds?.values[name] ?? null;
    return {
      name,
      probability,
      logit,
      calibrated: isCalibrated(rules.calibration, name),
      threshold,
      thresholdRule: threshold === null ? null : (thresholds?.rule ?? null),
      thresholdInterval: threshold === null ? null : (thresholds?.intervals?.[name] ?? null),
      decision: threshold === null ? null : probability >= threshold ? 'positive' : 'negative',
      decisionNote: threshold !== null ? null : !thresholds ? 'the model has no validated thresholds' : (thresholds.withheld?.[name] ?? 'the model has no validated threshold for this finding'),
    };
  });
}
