/** A localisation report as one self-contained HTML page (opens offline). Pure. */
import { esc } from '../eval/html.js';
import type { LocalizationReport, MethodReport, RandomizationStep, Spread } from './localize-eval.js';

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '–');
const pm = (s: Spread) => (Number.isFinite(s.mean) ? `${pct(s.mean)} ± ${pct(s.sd)}` : '–');
const num = (x: number, digits = 3) => (Number.isFinite(x) ? x.toFixed(digits) : '–');

/**
 * The cascade in one line for a terminal: each step's Spearman, or what stood in for it ('const' where every
 * randomised map was constant), then each distinct note once with the steps it applies to, so that no step
 * reads as an unexplained NaN.
 */
export function randomizationLines(steps: readonly RandomizationStep[]): string[] {
  const values = steps.map((s) => (s.spearman !== null ? s.spearman.toFixed(2) : s.constantMaps > 0 ? 'const' : 'n/a'));
  const lines = [`randomisation (Spearman with the trained maps, classifier first): ${values.join(' ')}`];
  const notes = new Map<string, number[]>();
  steps.forEach((s, k) => s.note && notes.set(s.note, [...(notes.get(s.note) ?? []), k + 1]));
  for (const [note, at] of notes) lines.push(`  step${at.length > 1 ? 's' : ''} ${at.join(', ')} of ${steps.length}: ${note}`);
  return lines;
}

function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function methodSection(report: LocalizationReport, m: MethodReport): string {
  const { iouThresholds, iobbThresholds } = report.protocol;
  const wang = report.published.iobb;
  const findings = [...Object.keys(m.perFinding), 'all'];
  const rows = findings.map((f) => {
    const s = f === 'all' ? m.overall : m.perFinding[f];
    const random = f === 'all' ? m.random.pointing : m.random.perFinding[f]?.pointing;
    return [
      esc(f),
      `${s.cases} / ${s.boxes}`,
      pct(s.pointing),
      random ? pm(random) : '–',
      ...iouThresholds.map((t) => pct(s.iou[String(t)])),
      ...iobbThresholds.map((t) => {
        const published = wang[String(t)]?.accuracy[f];
        return `${pct(s.iobb[String(t)])}${published === undefined ? '' : ` <span class="ref">(${pct(published)})</span>`}`;
      }),
      num(s.afpIobb[String(iobbThresholds[0])], 2),
    ];
  });
  const head = [
    'finding',
    'cases / boxes',
    'pointing',
    'random pointing',
    ...iouThresholds.map((t) => `IoU&gt;${t}`),
    ...iobbThresholds.map((t) => `IoBB&gt;${t} <span class="ref">(Wang)</span>`),
    `false positives per case at IoBB&gt;${iobbThresholds[0]}`,
  ];
  const randomRow = [
    'random maps (all)',
    '',
    pm(m.random.pointing),
    '',
    ...iouThresholds.map((t) => pm(m.random.iou[String(t)])),
    ...iobbThresholds.map((t) => pm(m.random.iobb[String(t)])),
    num(m.random.afpIobb[String(iobbThresholds[0])].mean, 2),
  ];
  let trust = '';
  if (m.faithfulness) {
    const f = m.faithfulness;
    trust += `<h3>Faithfulness (deletion / insertion, ${f.steps} steps)</h3>${table(
      ['order', 'deletion AUC (lower is better)', 'insertion AUC (higher is better)'],
      [
        [esc(m.method), pm(f.deletionAuc), pm(f.insertionAuc)],
        ['random order', pm(f.randomDeletionAuc), pm(f.randomInsertionAuc)],
      ],
    )}`;
    if (f.road) {
      trust += `<h3>ROAD (remove and debias, Rong et al. 2022: removed pixels imputed from their neighbours, at ${f.road.fractions.map((x) => `${Math.round(100 * x)}%`).join(', ')})</h3>${table(
        ['order', 'MoRF: mean probability, most relevant removed (lower is better)', 'LeRF: least relevant removed (higher is better)'],
        [
          [esc(m.method), pm(f.road.morf), pm(f.road.lerf)],
          ['random order', pm(f.road.randomMorf), pm(f.road.randomLerf)],
        ],
      )}`;
    }
  }
  if (m.randomization) {
    trust += `<h3>Model randomisation (cascading, classifier first)</h3><p>Spearman rank correlation of each step's maps with the trained model's; a trustworthy map decorrelates as learned weights are removed.</p>${table(
      ['re-initialised down to', 'Spearman', 'Spearman of |map|', 'cases correlated', 'why not all', 'logits of the constant maps'],
      m.randomization.map((s) => [
        esc(s.randomized.at(-1) ?? ''),
        s.spearman === null ? '–' : num(s.spearman),
        s.spearmanAbs === null ? '–' : num(s.spearmanAbs),
        String(s.cases),
        esc(s.note ?? ''),
        s.constantLogits ? `${num(s.constantLogits[0], 1)} to ${num(s.constantLogits[1], 1)}` : '',
      ]),
    )}`;
  }
  const warnings = m.warnings.length > 0 ? `<ul class="warning">${m.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : '';
  return `<section><h2>${esc(m.method)}${m.layer ? ` <small>layer ${esc(m.layer)}</small>` : ''} <small>target: ${m.target}</small></h2>
${warnings}${table(head, [...rows, randomRow])}
<p>Random maps: ${m.random.draws} draws (seed ${m.random.seed}) at the method's own map resolution, scored the same way; share of draws pointing at least as well as ${esc(m.method)} over all cases: <b>${pct(m.random.pointingAtLeastOurs)}</b>.</p>
${trust}
<details><summary>Cases</summary>${table(
    ['image', 'finding', 'probability', 'pointing', 'peak (x, y)', 'best IoU', 'best IoBB', 'boxes predicted', ...(m.faithfulness ? ['deletion AUC', 'insertion AUC'] : [])],
    m.cases.map((c) => [
      esc(c.image),
      esc(c.finding),
      num(c.probability),
      c.pointing ? 'hit' : 'miss',
      `${c.peak.x.toFixed(0)}, ${c.peak.y.toFixed(0)}`,
      c.bestIou.map((v) => num(v, 2)).join(', '),
      c.bestIobb.map((v) => num(v, 2)).join(', '),
      String(c.predictedBoxes),
      ...(m.faithfulness ? [num(c.deletionAuc ?? Number.NaN), num(c.insertionAuc ?? Number.NaN)] : []),
    ]),
  )}</details></section>`;
}

export function localizationToHtml(report: LocalizationReport, title = 'Localisation report'): string {
  const p = report.published;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}.ref{color:#777;font-size:.85em}small{color:#666;font-weight:normal}
.note{background:#fff7e0;border-left:4px solid #e0b000;padding:.5rem 1rem}
.warning{background:#fdeaea;border-left:4px solid #c62828;padding:.5rem 1rem .5rem 2rem}
</style></head><body>
<h1>${esc(title)}</h1>
<p class="note">Research use only; not for clinical decisions. ${report.notes.map(esc).join(' ')}</p>
<p>Model: ${esc(report.model.architecture)} (${esc(report.model.weights)}), input ${esc(report.model.input)}.
${report.images} images, ${report.boxes} ground-truth boxes, findings: ${report.findings.map(esc).join(', ')}.</p>
<p>Protocol: ${esc(report.protocol.description)}.</p>
${report.coincidences.map((n) => `<p class="note">${esc(n)}</p>`).join('\n')}
${report.methods.map((m) => methodSection(report, m)).join('\n')}
<h2>Published reference</h2>
<p>${esc(p.name)}: ${esc(p.citation)} ${esc(p.table)}; ${esc(p.model)}. Protocol: ${esc(p.protocol)}. Numbers: ${esc(p.verification)}.
<a href="${esc(p.url)}">${esc(p.url)}</a></p>
</body></html>
`;
}
