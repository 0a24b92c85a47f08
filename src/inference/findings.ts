/**
 * Turning a model's logits into findings: each finding's probability is the sigmoid of its own logit (findings
 * are independent, never a softmax across them), recalibrated where the model carries a calibration, and only where
 * the model carries a validated threshold does a finding get a decision, named with the rule that chose it. Pure:
 * the server, the CLI and the browser's private mode all use it.
 */
import { sigmoid } from '../eval/calibration.js';
import type { Calibration, Thresholds } from '../models/metadata.js';
import { calibratedProbability } from '../safety/calibration.js';

export { sigmoid };

export interface Finding {
  name: string;
  /** sigmoid(logit), or the calibrated probability when the model has a calibration for this finding. */
  probability: number;
  logit: number;
  /** The model's validated operating point for this finding, or null where it has none. */
  threshold: number | null;
  /** The rule that chose the threshold (e.g. "youden", "sensitivity:0.9"), or null without a threshold. */
  thresholdRule: string | null;
  /** probability >= threshold; null without a threshold (no decision is made up). */
  decision: 'positive' | 'negative' | null;
}

/** What a model stores about turning logits into probabilities and decisions. */
export interface OutputRules {
  thresholds?: Pick<Thresholds, 'rule' | 'values'>;
  calibration?: Pick<Calibration, 'values'>;
}

/** Findings of one image from its row of logits (labels.length values starting at `offset`). */
export function findingsFromLogits(labels: readonly string[], logits: ArrayLike<number>, rules: OutputRules = {}, offset = 0): Finding[] {
  return labels.map((name, k) => {
    const logit = logits[offset + k];
    const probability = calibratedProbability(rules.calibration, name, logit);
    const threshold = rules.thresholds?.values[name] ?? null;
    return {
      name,
      probability,
      logit,
      threshold,
      thresholdRule: threshold === null ? null : (rules.thresholds?.rule ?? null),
      decision: threshold === null ? null : probability >= threshold ? 'positive' : 'negative',
    };
  });
}
