/** The model-card sections on calibration, operating points and input checks, as Markdown. Pure. */
import type { Calibration, SafetyInfo, Thresholds } from '../models/metadata.js';
import type { OperatingPointCheck } from './calibrate.js';

const f = (v: number | null | undefined, digits = 3) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a' : v.toFixed(digits));

export function calibrationMarkdown(calibration: Calibration, thresholds: Thresholds, points: readonly OperatingPointCheck[]): string {
  const ece = calibration.ece ?? [];
  const lowered = ece.map((e) => `${e.after < e.before ? 'lowered' : 'did NOT lower'} the ECE on the ${e.data}`);
  const skipped = Object.entries(calibration.skipped ?? {});
  const notes = Object.entries(calibration.notes ?? {});
  return `## Calibration
${calibration.method === 'platt' ? 'Platt scaling, p = sigmoid(a * logit + b)' : 'Temperature scaling, p = sigmoid(logit / T)'} per finding, fitted on the ${calibration.source}. Calibration ${lowered.join(' and ') || 'was not measured'}.

| data | mean ECE before | mean ECE after |
|---|---|---|
${ece.map((e) => `| ${e.data} | ${f(e.before)} | ${f(e.after)} |`).join('\n')}
${skipped.length ? `\nLeft uncalibrated (plain sigmoid): ${skipped.map(([label, why]) => `${label} (${why})`).join('; ')}.\n` : ''}${notes.length ? `\n${notes.map(([label, note]) => `${label}: ${note}.`).join('\n')}\n` : ''}
## Operating points
Rule: **${thresholds.rule}**, chosen on the ${thresholds.source}. Recomputed from the decisions the run-time code makes with the stored calibration and thresholds, on the same data:

| Finding | threshold | sensitivity (chosen) | sensitivity (recomputed) | specificity (chosen) | specificity (recomputed) |
|---|---|---|---|---|---|
${points.map((p) => `| ${p.label} | ${f(p.threshold, 4)} | ${f(p.stated.sensitivity)} | ${f(p.reproduced.sensitivity)} | ${f(p.stated.specificity)} | ${f(p.reproduced.specificity)} |`).join('\n')}
`;
}

export function safetyMarkdown(safety: SafetyInfo): string {
  const scores = safety.checks.map((c) => c.score);
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
    ? `Measured: AUROC of each check's score separating real held-out frontal images from each kind of invalid input, and the share rejected at the thresholds above.

| input | images | ${safety.checks.map(heading).join(' | ')} | rejected |
|---|---|${scores.map(() => '---').join('|')}|---|
${measured.map((m) => `| ${m.kind} | ${m.images} | ${scores.map((c) => f(m.aurocs[c])).join(' | ')} | ${(m.rejected * 100).toFixed(1)}% |`).join('\n')}
`
    : 'Not measured on invalid inputs.\n'
}`;
}
