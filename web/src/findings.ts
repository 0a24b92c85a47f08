/**
 * How the viewer orders and words findings, shared by the list, the first selection and the report: positive calls
 * first, then negative, then findings with no decision, each group by probability; thresholds and their rules in
 * words a reader can check at a glance ("≥ 31.0% · specificity 0.90").
 */
import type { FindingResult } from '../../src/serve/analysis.js';
import type { ModelCard } from '../../src/serve/model-card.js';

/**
 * A finding as the API gives it, with the optional fields newer servers add: why no decision was made, and whether
 * the probability was recalibrated. Older answers lack them; the viewer shows them only when present.
 */
export type FindingView = FindingResult & { decisionNote?: string | null; calibrated?: boolean | null; thresholdInterval?: [number, number] | null };

const GROUP = { positive: 0, negative: 1, none: 2 } as const;

export function decisionOf(f: FindingView): keyof typeof GROUP {
  return f.decision ?? 'none';
}

/** Positives first, then negatives, then no decision; by probability (highest first) within each group. */
export function orderFindings<T extends FindingView>(findings: readonly T[]): T[] {
  return [...findings].sort((a, b) => GROUP[decisionOf(a)] - GROUP[decisionOf(b)] || b.probability - a.probability);
}

export const percent = (p: number) => `${(p * 100).toFixed(1)}%`;

/** "youden" -> "Youden's J", "specificity:0.9" -> "specificity 0.90"; anything else as written. */
export function ruleText(rule: string | null | undefined): string {
  if (!rule) return '';
  const trimmed = rule.trim();
  const lower = trimmed.toLowerCase();
  if (lower === 'youden') return "Youden's J";
  if (lower === 'f1') return 'best F1';
  const match = /^(sensitivity|specificity):\s*([0-9.]+)$/.exec(lower);
  if (match && Number.isFinite(Number(match[2]))) return `${match[1]} ${Number(match[2]).toFixed(2)}`;
  return trimmed;
}

/** "≥ 11.5% · Youden's J", or '' without a threshold. */
export function thresholdText(f: FindingView): string {
  if (f.threshold === null) return '';
  const rule = ruleText(f.thresholdRule);
  return `≥ ${percent(f.threshold)}${rule ? ` · ${rule}` : ''}`;
}

/** The threshold in full, for a tooltip: "threshold 23.3% (interval 18.0-29.1%), chosen by Youden's J". */
export function thresholdTitle(f: FindingView): string | undefined {
  if (f.threshold === null) return undefined;
  const interval = f.thresholdInterval ? ` (confidence interval ${percent(f.thresholdInterval[0])} to ${percent(f.thresholdInterval[1])})` : '';
  const rule = ruleText(f.thresholdRule);
  return `positive when the probability is at least ${percent(f.threshold)}${interval}${rule ? `; threshold chosen by ${rule}` : ''}`;
}

/** Why a finding has no decision: the API's note, else the model card's reason for withholding it, else the plain fact. */
export function noDecisionReason(f: FindingView, card: ModelCard | null): string {
  if (f.decisionNote) return f.decisionNote;
  const withheld = (card?.thresholds as { withheld?: Record<string, string> } | null | undefined)?.withheld?.[f.name];
  if (withheld) return withheld;
  return f.threshold === null ? 'no validated threshold' : 'no decision made';
}
