/** The evaluation as CSV: one row per class and a `mean` row, numbers at full precision, empty where undefined. */
import type { EvaluationResult } from './evaluate.js';

const COLUMNS = [
  'label', 'positives', 'negatives', 'ignored', 'prevalence', 'auroc', 'delong_lower', 'delong_upper', 'delong_se',
  'bootstrap_lower', 'bootstrap_upper', 'bootstrap_se', 'average_precision', 'threshold', 'sensitivity', 'specificity',
  'ppv', 'npv', 'f1', 'accuracy', 'true_positives', 'false_positives', 'true_negatives', 'false_negatives', 'ece', 'brier',
] as const;

export function evaluationToCsv(result: EvaluationResult): string {
  const sources = result.comparison?.sources ?? [];
  const header = [...COLUMNS, ...sources.map((s) => `published_${s.id}`), 'note'];
  const lines = [header.map(quote).join(',')];
  for (const k of result.classes) {
    const p = k.operatingPoint;
    const published = result.comparison?.rows.find((r) => r.label === k.label)?.published;
    const cells = [
      k.label, k.positives, k.negatives, k.ignored, k.prevalence, k.auroc, k.delong?.lower, k.delong?.upper, k.delong?.standardError,
      k.bootstrap?.lower, k.bootstrap?.upper, k.bootstrap?.standardError, k.averagePrecision, k.threshold?.value, p?.sensitivity,
      p?.specificity, p?.ppv, p?.npv, p?.f1, p?.accuracy, p?.truePositives, p?.falsePositives, p?.trueNegatives, p?.falseNegatives,
      k.calibration.ece, k.calibration.brier, ...sources.map((s) => published?.[s.id]), k.note,
    ];
    lines.push(cells.map(cell).join(','));
  }
  const s = result.summary;
  const mean: Record<string, unknown> = {
    label: 'mean',
    auroc: s.meanAuroc,
    bootstrap_lower: s.meanAurocBootstrap?.lower,
    bootstrap_upper: s.meanAurocBootstrap?.upper,
    bootstrap_se: s.meanAurocBootstrap?.standardError,
    average_precision: s.meanAveragePrecision,
    ece: s.meanEce,
    note: `mean over ${s.meanOver.length} classes with a defined AUROC`,
  };
  lines.push(header.map((h) => cell(mean[h])).join(','));
  return `${lines.join('\n')}\n`;
}

function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  return quote(String(value));
}

function quote(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
