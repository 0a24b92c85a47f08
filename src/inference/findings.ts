/**
 * Turning a model's logits into findings: each finding's probability is the sigmoid of its own logit (findings
 * are independent, never a softmax across them), and only where the model carries a validated threshold does a
 * finding get a decision. Pure: the server, the CLI and the browser's private mode all use it.
 */
import { sigmoid } from '../eval/calibration.js';

export { sigmoid };

export interface Finding {
  name: string;
  probability: number;
  logit: number;
  /** The model's validated operating point for this finding, or null where it has none. */
  threshold: number | null;
  /** probability >= threshold; null without a threshold (no decision is made up). */
  decision: 'positive' | 'negative' | null;
}

/** Findings of one image from its row of logits (labels.length values starting at `offset`). */
export function findingsFromLogits(labels: readonly string[], logits: ArrayLike<number>, thresholds?: Readonly<Record<string, number>>, offset = 0): Finding[] {
  return labels.map((name, k) => {
    const logit = logits[offset + k];
    const probability = sigmoid(logit);
    const threshold = thresholds?.[name] ?? null;
    return { name, probability, logit, threshold, decision: threshold === null ? null : probability >= threshold ? 'positive' : 'negative' };
  });
}
