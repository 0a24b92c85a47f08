/**
 * The evaluation as one self-contained HTML page: inline CSS and SVG plots, no scripts, fonts or anything else
 * fetched, so it opens offline and can be mailed as one file. Every piece of text from the data is escaped.
 */
import type { ClassEvaluation, EvaluationResult } from './evaluate.js';
import type { PublishedSource } from './published.js';

export interface HtmlOptions {
  title?: string;
  /** Lines describing the inputs (files, model), shown under the title. */
  inputs?: string[];
  /** Shown as the generation time (the caller's clock; this module reads none). */
  generatedAt?: string;
}

export function evaluationToHtml(result: EvaluationResult, options: HtmlOptions = {}): string {
  const title = options.title ?? 'cxr-lens evaluation';
  const s = result.summary;
  const level = `${Math.round(result.settings.level * 100)}%`;
  const parts: string[] = [];
  parts.push(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${esc(title)}</h1>
<p class="meta">${result.samples.toLocaleString('en-US')} images, ${result.labels.length} findings${options.generatedAt ? `; generated ${esc(options.generatedAt)}` : ''}. Research use only; not for clinical decisions.</p>`);
  if (options.inputs?.length) parts.push(`<ul class="meta">${options.inputs.map((line) => `<li>${esc(line)}</li>`).join('')}</ul>`);
  parts.push(
    `<p class="headline">Mean AUROC <b>${fmt(s.meanAuroc)}</b>${s.meanAurocBootstrap ? ` (${level} bootstrap CI ${fmt(s.meanAurocBootstrap.lower)}&ndash;${fmt(s.meanAurocBootstrap.upper)})` : ''}` +
      ` over ${s.meanOver.length} findings; mean average precision ${fmt(s.meanAveragePrecision)}; mean ECE ${fmt(s.meanEce)}.</p>`,
  );
  if (result.warnings.length > 0) parts.push(`<div class="warnings"><b>Notes</b><ul>${result.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>`);
  parts.push(metricsTable(result, level));
  if (result.comparison) parts.push(comparisonSection(result));
  parts.push(`<h2>Curves per finding</h2>
<p class="meta">ROC (the dot is the operating point at the threshold), precision&ndash;recall (dashed: prevalence), and reliability (dot area &prop; images in the bin; dashed: perfect calibration).</p>
<div class="grid">${result.classes.map(classCard).join('\n')}</div>`);
  parts.push(methodsSection(result, level));
  parts.push('</body>\n</html>\n');
  return parts.join('\n');
}

function metricsTable(result: EvaluationResult, level: string): string {
  const head = ['Finding', 'Pos', 'Neg', 'AUROC', `DeLong ${level} CI`, `Bootstrap ${level} CI`, 'AP', 'Threshold', 'Sens', 'Spec', 'PPV', 'NPV', 'F1', 'ECE'];
  const rows = result.classes.map((k) => {
    const p = k.operatingPoint;
    return [
      esc(k.label),
      String(k.positives),
      String(k.negatives),
      k.auroc === null ? `<span class="na" title="${esc(k.note ?? '')}">n/a</span>` : `<b>${fmt(k.auroc)}</b>`,
      k.delong ? `${fmt(k.delong.lower)}&ndash;${fmt(k.delong.upper)}` : '',
      k.bootstrap ? `${fmt(k.bootstrap.lower)}&ndash;${fmt(k.bootstrap.upper)}${k.bootstrap.skipped ? `<sup title="resamples without both classes, skipped">${k.bootstrap.skipped}</sup>` : ''}` : '',
      fmt(k.averagePrecision),
      k.threshold ? fmt(k.threshold.value, 4) : '',
      fmt(p?.sensitivity),
      fmt(p?.specificity),
      fmt(p?.ppv),
      fmt(p?.npv),
      fmt(p?.f1),
      fmt(k.calibration.ece),
    ];
  });
  const s = result.summary;
  rows.push([
    '<b>Mean</b>', '', '', `<b>${fmt(s.meanAuroc)}</b>`, '',
    s.meanAurocBootstrap ? `${fmt(s.meanAurocBootstrap.lower)}&ndash;${fmt(s.meanAurocBootstrap.upper)}` : '',
    fmt(s.meanAveragePrecision), '', '', '', '', '', '', fmt(s.meanEce),
  ]);
  return `<h2>Metrics</h2>\n${table(head, rows)}`;
}

function comparisonSection(result: EvaluationResult): string {
  const comparison = result.comparison!;
  const sources = comparison.sources;
  const head = ['Finding', 'Ours', ...sources.map((s) => `${esc(s.name)}${s.verified ? '' : ' <span class="flag" title="not yet verified against the paper">?</span>'}`)];
  const rows = comparison.rows.map((r) => [esc(r.label), `<b>${fmt(r.ours)}</b>`, ...sources.map((s) => fmt(r.published[s.id]))]);
  rows.push([
    '<i>Mean over shared findings</i>',
    '',
    ...sources.map((s) => {
      const m = comparison.means[s.id];
      return m ? `${fmt(m.theirs)} <span class="meta">vs ours ${fmt(m.ours)} (${m.findings})</span>` : '';
    }),
  ]);
  return `<h2>Against published results on NIH ChestX-ray14</h2>
<p class="caveat">These numbers come from different test sets: CheXNet used a random patient-wise split, Wang et al. their own
splits of earlier releases, and SwinCheX NIH's official test list. Only results on the same split compare directly, and none of
them used this evaluation's images unless it is NIH's official test list. Means compare ours and theirs over the findings both have.</p>
${table(head, rows)}
<ul class="sources">${sources.map(sourceItem).join('')}</ul>`;
}

function sourceItem(s: PublishedSource): string {
  return `<li><b>${esc(s.name)}</b>: ${esc(s.citation)} ${esc(s.table)}; ${esc(s.model)}. <i>Split:</i> ${esc(s.splitNote)} <i>Numbers:</i> ${esc(s.verification)}. <span class="meta">${esc(s.url)}</span></li>`;
}

function classCard(k: ClassEvaluation): string {
  const p = k.operatingPoint;
  const header = `<h3>${esc(k.label)}</h3><p class="meta">${k.positives} positive, ${k.negatives} negative${k.ignored ? `, ${k.ignored} ignored` : ''}; AUROC ${fmt(k.auroc)}, AP ${fmt(k.averagePrecision)}, ECE ${fmt(k.calibration.ece)}</p>`;
  if (!k.curves) return `<div class="card">${header}<p class="na">${esc(k.note ?? 'no curves')}</p></div>`;
  const roc = plot({
    title: 'ROC',
    xLabel: 'False-positive rate',
    yLabel: 'Sensitivity',
    lines: [{ x: k.curves.roc.fpr, y: k.curves.roc.tpr, cls: 'curve' }],
    dashed: [[0, 0, 1, 1]],
    dots: p && p.specificity !== null && p.sensitivity !== null ? [{ x: 1 - p.specificity, y: p.sensitivity, r: 3.5, cls: 'op' }] : [],
  });
  const prevalence = k.prevalence ?? 0;
  const pr = plot({
    title: 'Precision–recall',
    xLabel: 'Recall',
    yLabel: 'Precision',
    lines: [{ x: k.curves.pr.recall, y: k.curves.pr.precision, cls: 'curve', step: true }],
    dashed: [[0, prevalence, 1, prevalence]],
    dots: p && p.sensitivity !== null && p.ppv !== null ? [{ x: p.sensitivity, y: p.ppv, r: 3.5, cls: 'op' }] : [],
  });
  const filled = k.calibration.bins.filter((b) => b.count > 0 && b.meanPredicted !== null && b.fractionPositive !== null);
  const largest = Math.max(1, ...filled.map((b) => b.count));
  const reliability = plot({
    title: 'Reliability',
    xLabel: 'Mean predicted',
    yLabel: 'Fraction positive',
    lines: [{ x: filled.map((b) => b.meanPredicted!), y: filled.map((b) => b.fractionPositive!), cls: 'curve thin' }],
    dashed: [[0, 0, 1, 1]],
    dots: filled.map((b) => ({ x: b.meanPredicted!, y: b.fractionPositive!, r: 1.5 + 5 * Math.sqrt(b.count / largest), cls: 'bin', title: `${b.count} images in (${fmt(b.lower)}, ${fmt(b.upper)}]` })),
  });
  return `<div class="card">${header}<div class="plots">${roc}${pr}${reliability}</div></div>`;
}

function methodsSection(result: EvaluationResult, level: string): string {
  const st = result.settings;
  const items = [
    esc("AUROC as scikit-learn's roc_auc_score (ties count one half); average precision as scikit-learn's average_precision_score (step sum, not the trapezoid)."),
    esc(`${level} DeLong intervals: ${st.delong.method}.`),
    esc(st.bootstrap ? `${level} bootstrap intervals: ${st.bootstrap.method}; seed ${st.bootstrap.seed}.` : 'No bootstrap.'),
    esc(
      `Thresholds: ${st.thresholds.source}${st.thresholds.rule ? ` by ${st.thresholds.rule}` : ''}; a score at or above the threshold is called positive.` +
        (st.thresholds.optimistic ? ' Chosen on the evaluated data itself: optimistic.' : ''),
    ),
    `${esc(`Calibration: ${st.calibration.bins} ${st.calibration.binning}`)}; ECE = sum over bins of (bin share) &times; |fraction positive &minus; mean predicted|.`,
  ];
  return `<h2>Methods</h2><ul class="methods">${items.map((i) => `<li>${i}</li>`).join('')}</ul>`;
}

interface PlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  lines: { x: readonly number[]; y: readonly number[]; cls: string; step?: boolean }[];
  /** Dashed reference segments [x1, y1, x2, y2]. */
  dashed: [number, number, number, number][];
  dots: { x: number; y: number; r: number; cls: string; title?: string }[];
}

const SIZE = 200;
const PAD = { left: 38, right: 8, top: 20, bottom: 32 };

/** A unit-square plot (both axes 0..1) as inline SVG. */
function plot(spec: PlotSpec): string {
  const w = SIZE - PAD.left - PAD.right;
  const h = SIZE - PAD.top - PAD.bottom;
  const X = (x: number) => (PAD.left + x * w).toFixed(1);
  const Y = (y: number) => (PAD.top + (1 - y) * h).toFixed(1);
  const out: string[] = [`<svg class="plot" viewBox="0 0 ${SIZE} ${SIZE}" role="img" aria-label="${esc(spec.title)}">`];
  out.push(`<text class="title" x="${PAD.left + w / 2}" y="13">${esc(spec.title)}</text>`);
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(`<line class="grid" x1="${X(t)}" y1="${Y(0)}" x2="${X(t)}" y2="${Y(1)}"/><line class="grid" x1="${X(0)}" y1="${Y(t)}" x2="${X(1)}" y2="${Y(t)}"/>`);
    if (t === 0 || t === 0.5 || t === 1) {
      out.push(`<text class="tick" x="${X(t)}" y="${PAD.top + h + 11}">${t}</text><text class="tick" text-anchor="end" x="${PAD.left - 3}" y="${Number(Y(t)) + 3}">${t}</text>`);
    }
  }
  out.push(`<rect class="frame" x="${PAD.left}" y="${PAD.top}" width="${w}" height="${h}"/>`);
  out.push(`<text class="label" x="${PAD.left + w / 2}" y="${SIZE - 4}">${esc(spec.xLabel)}</text>`);
  out.push(`<text class="label" transform="translate(10 ${PAD.top + h / 2}) rotate(-90)">${esc(spec.yLabel)}</text>`);
  for (const [x1, y1, x2, y2] of spec.dashed) out.push(`<line class="ref" x1="${X(x1)}" y1="${Y(y1)}" x2="${X(x2)}" y2="${Y(y2)}"/>`);
  for (const line of spec.lines) {
    if (line.x.length === 0) continue;
    const points: string[] = [];
    for (let i = 0; i < line.x.length; i++) {
      // scikit-learn's PR curve is a step function: precision holds until recall moves on.
      if (line.step && i > 0) points.push(`${X(line.x[i])},${Y(line.y[i - 1])}`);
      points.push(`${X(line.x[i])},${Y(line.y[i])}`);
    }
    out.push(`<polyline class="${line.cls}" points="${points.join(' ')}"/>`);
  }
  for (const d of spec.dots) out.push(`<circle class="${d.cls}" cx="${X(d.x)}" cy="${Y(d.y)}" r="${d.r.toFixed(1)}">${d.title ? `<title>${esc(d.title)}</title>` : ''}</circle>`);
  out.push('</svg>');
  return out.join('');
}

function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('\n')}</tbody></table>`;
}

function fmt(x: number | null | undefined, digits = 3): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '' : x.toFixed(digits);
}

/** Text and attribute values: the five characters HTML gives meaning to. */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:24px auto;max-width:1240px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
h3{font-size:15px;margin:0}.meta{color:#5b6475;font-size:12.5px;margin:2px 0}.headline{font-size:15px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:13px}
th,td{padding:3px 8px;border-bottom:1px solid #e6e9ef;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}thead th{background:#f3f5f8;position:sticky;top:0}
tbody tr:last-child td{border-top:2px solid #c9d0db}.na{color:#9aa3b2}.flag{color:#b4531a;font-weight:bold}
.warnings{background:#fff7e6;border:1px solid #f0d9a8;padding:6px 12px;margin:12px 0}.warnings ul{margin:4px 0;padding-left:18px}
.caveat{background:#eef4ff;border-left:3px solid #5b8def;padding:6px 10px}.sources li,.methods li{margin:4px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px}
.card{border:1px solid #e1e5ec;border-radius:6px;padding:8px 10px}.plots{display:grid;grid-template-columns:repeat(3,1fr);gap:2px}svg.plot{width:100%;height:auto;max-width:260px}
svg.plot text{font-size:9px;fill:#3b4252;text-anchor:middle}svg.plot text.title{font-size:11px;font-weight:600}
svg.plot .grid{stroke:#eef0f4;stroke-width:1}svg.plot .frame{fill:none;stroke:#aab2c0}
svg.plot .ref{stroke:#9aa3b2;stroke-dasharray:4 3;stroke-width:1}
svg.plot .curve{fill:none;stroke:#2f6fd6;stroke-width:1.6;stroke-linejoin:round}svg.plot .thin{stroke-width:1}
svg.plot .op{fill:#d6452f}svg.plot .bin{fill:#2f6fd6;fill-opacity:.55}
@media print{.grid{grid-template-columns:1fr}}
`;
