/** The model-card sections on calibration, operating points and input checks, as Markdown. Pure. */
import type { Calibration, SafetyInfo, Thresholds } from '../models/metadata.js';
import type { OperatingPointCheck } from './calibrate.js';

const f = (v: number | null | undefined, digits = 3) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(digits));

export function calibrationMarkdown(calibration: Calibration, thresholds: Thresholds, points: readonly OperatingPointCheck[]): string {
  const ece = calibration.ece ?? [];
  const lowered = ece.map((e) => `${e.after < e.before ? 'lowered' : 'did NOT lower'} the ECE on the ${e.data}`);
  const calibrated = Object.keys(calibration.values);
  const skipped = Object.entries(calibration.skipped ?? {});
  const notes = Object.entries(calibration.notes ?? {});
  const withheld = Object.entries(thresholds.withheld ?? {});
  const interval = (label: string) => {
    const i = thresholds.intervals?.[label];
    return i ? `${f(i[0], 4)}-${f(i[1], 4)}` : 'n/a';
  };
  return `## Calibration
${calibration.method === 'platt' ? 'Platt scaling, p = sigmoid(a * logit + b)' : 'Temperature scaling, p = sigmoid(logit / T)'} per finding, fitted on the ${calibration.source}, only where that data supports a map (enough positive and negative images, a positive slope that is not negligible); both maps keep each finding's ranking. Calibration ${lowered.join(' and ') || 'was not measured'}.

| data | mean ECE before | mean ECE after |
|---|---|---|
${ece.map((e) => `| ${e.data} | ${f(e.before)} | ${f(e.after)} |`).join('\n')}

Calibrated (${calibrated.length}): ${calibrated.join(', ') || 'none'}.
${skipped.length ? `\n**Left uncalibrated** (their probability is the plain sigmoid of the logit, and every prediction says \`calibrated: false\`):\n\n${skipped.map(([label, why]) => `- ${label}: ${why}`).join('\n')}\n` : ''}${notes.length ? `\n${notes.map(([label, note]) => `${label}: ${note}.`).join('\n')}\n` : ''}
## Operating points
Rule: **${thresholds.rule}**, chosen on the ${thresholds.source}.${thresholds.intervalMethod ? ` Confidence interval of each threshold: ${thresholds.intervalMethod}.` : ''} Sensitivity and specificity recomputed from the decisions the run-time code makes with the stored calibration and thresholds, on the same data:

| Finding | threshold | threshold CI | sensitivity (chosen) | sensitivity (recomputed) | specificity (chosen) | specificity (recomputed) |
|---|---|---|---|---|---|---|
${points.map((p) => `| ${p.label} | ${f(p.threshold, 4)} | ${interval(p.label)} | ${f(p.stated.sensitivity)} | ${f(p.reproduced.sensitivity)} | ${f(p.stated.specificity)} | ${f(p.reproduced.specificity)} |`).join('\n')}
${withheld.length ? `\n**No threshold, so no decision** (predictions give \`decision: null\` with this reason):\n\n${withheld.map(([label, why]) => `- ${label}: ${why}`).join('\n')}\n` : ''}`;
}

export function safetyMarkdown(safety: SafetyInfo): string {
  // One AUROC column per score (a score may warn and reject at two thresholds).
  const scored = safety.checks.filter((c, i) => safety.checks.findIndex((d) => d.score === c.score) === i);
  const scores = scored.map((c) => c.score);
  const heading = (c: SafetyInfo['checks'][number]) => `AUROC ${c.code} (${c.score.startsWith('head:') ? `${safety.heads[Number(c.score.slice(5))]} head` : c.score})`;
  const measured = safety.measured ?? [];
  return `## Input checks
Run before every prediction; a rejected input gets no findings, only the flags and their reasons (unless asked to show them anyway).
Out-of-distribution score: ${safety.detector}.
DICOM tags also reject: a Modality other than radiography (CR, DX), a Body Part Examined other than the chest, a lateral View Position.

| check | score | flagged when | threshold | rule | severity |
|---|---|---|---|---|---|
${safety.checks.map((c) => `| ${c.code} | ${c.score} | ${c.direction} | ${f(c.threshold, 4)} | ${c.rule} | ${c.severity} |`).join('\n')}

${
  measured.length
    ? `Measured: AUROC of each check's score separating real held-out frontal images from each kind of invalid input, the share rejected at the thresholds above, and the share accepted with a warning (findings shown, marked).

| input | images | rejected | warned | ${scored.map(heading).join(' | ')} |
|---|---|---|---|${scores.map(() => '---').join('|')}|
${measured.map((m) => `| ${m.kind} | ${m.images} | ${(m.rejected * 100).toFixed(1)}% | ${m.warned === undefined ? 'n/a' : `${(m.warned * 100).toFixed(1)}%`} | ${scores.map((c) => f(m.aurocs[c])).join(' | ')} |`).join('\n')}
`
    : 'Not measured on invalid inputs.\n'
}`;
}
