/**
 * Transfer inside NIH, and what label-free prevalence adaptation (EM prior shift, src/safety/prior-shift.ts) does
 * to it. With models/default.onnx's logits, calibration (Platt) and thresholds (specificity:0.9) are fitted on a
 * source part and tested on held-out AP (bedside) films of nih-cxr14-subset2, per finding: the sensitivity and specificity
 * chosen on the source against those realised on the target, and the target prevalence as the calibrated
 * probabilities say it (their mean), as EM estimates it from the unlabelled target images (95% bootstrap CI), and as
 * the labels give it. Two sources:
 *   A. held-out patients of nih-cxr14-subset (the default model's validation and test splits: never trained on);
 *   B. PA films of nih-cxr14-subset2's held-out patients (patients with an AP film dropped), the same selection as
 *      the target, so B isolates the view (AP against PA).
 * The target is the AP films of nih-cxr14-subset2's held-out patients (validation and test splits).
 * Target images the model's input checks reject are left out, as `cxr calibrate --unlabelled` does.
 *
 *   node dist/scripts/transfer.js [out-prefix]     (default models/default.transfer: .md and .json)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { chooseThreshold, operatingPoint, parseThresholdRule } from '../src/eval/thresholds.js';
import { findingsFromLogits } from '../src/outputs/findings.js';
import { readModelInfo } from '../src/models/metadata.js';
import { readModelFile } from '../src/onnx/index.js';
import { calibratedProbabilities, fitCalibration } from '../src/outputs/calibration.js';
import { fileSource, runImages } from '../src/safety/features.js';
import { verdictOf } from '../src/safety/flags.js';
import { adaptableLabels, applyPriorShift, estimatePrevalences, labelPrevalence } from '../src/safety/prior-shift.js';
import { readConfigFile, resolveConfig } from '../src/train/config.js';
import { readDatasets, splitData } from '../src/train/data.js';
import type { DatasetRecord } from '../src/data/dataset.js';
import type { Calibration, Thresholds } from '../src/models/metadata.js';

const outPrefix = process.argv[2] ?? join('models', 'default.transfer');
const RULE = 'specificity:0.9';
const MIN_PER_CLASS = 10;
const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);

const model = readModelFile(join('models', 'default.onnx'));
const info = readModelInfo(model);
const labels = info.labels;
const c = labels.length;

// The default model's own split: its validation and test patients were never trained on.
const recipe = resolveConfig(readConfigFile(join('configs', 'default-model.yaml')), 'configs/default-model.yaml');
const split = await splitData(await readDatasets(recipe), recipe);
const heldOut = [...split.validation.records, ...split.test.records];
const heldOutSubset = heldOut.filter((r) => r.imagePath.includes('/nih-cxr14-subset/'));
const subset2 = heldOut.filter((r) => r.imagePath.includes('/nih-cxr14-subset2/'));
const apPatients = new Set(subset2.filter((r) => r.metadata.view === 'AP').map((r) => r.patientId));
const target = subset2.filter((r) => r.metadata.view === 'AP');
const sourcePA = subset2.filter((r) => r.metadata.view === 'PA' && !apPatients.has(r.patientId));

interface Run {
  records: DatasetRecord[];
  logits: Float64Array;
  targets: Float32Array;
  mask: Float32Array;
  rejected: number;
}
async function run(name: string, records: DatasetRecord[], dropRejected: boolean): Promise<Run> {
  log(`${name}: ${records.length} images`);
  const out = await runImages(model, records.map((r) => fileSource(r.imagePath)), { batchSize: 16, threads: 2 });
  const keep = records.map((_, i) => !dropRejected || !out.flags || verdictOf(out.flags[i], false) !== 'rejected');
  const kept = records.filter((_, i) => keep[i]);
  const logits = new Float64Array(kept.length * c);
  const targets = new Float32Array(kept.length * c);
  const mask = new Float32Array(kept.length * c);
  let k = 0;
  records.forEach((r, i) => {
    if (!keep[i]) return;
    for (let j = 0; j < c; j++) {
      logits[k * c + j] = out.logits.data[i * c + j];
      targets[k * c + j] = r.labels[j] >= 0.5 ? 1 : 0;
      mask[k * c + j] = r.mask[j];
    }
    k++;
  });
  return { records: kept, logits, targets, mask, rejected: records.length - kept.length };
}

const column = (values: ArrayLike<number>, data: Run, j: number) => {
  const scores: number[] = [];
  const truth: number[] = [];
  for (let i = 0; i < data.records.length; i++) {
    if (data.mask[i * c + j] !== 1) continue;
    scores.push(values[i * c + j]);
    truth.push(data.targets[i * c + j]);
  }
  return { scores: Float64Array.from(scores), truth: Uint8Array.from(truth) };
};

const targetRun = await run('target: held-out nih-cxr14-subset2 AP films', target, true);
const sources: { name: string; description: string; data: Run }[] = [
  { name: 'A', description: `held-out patients of nih-cxr14-subset (the default model's validation and test splits, never trained on)`, data: await run('source A', heldOutSubset, false) },
  { name: 'B', description: 'held-out nih-cxr14-subset2 PA films (patients without an AP film)', data: await run('source B', sourcePA, false) },
];

const rule = parseThresholdRule(RULE);
const results = sources.map(({ name, description, data }) => {
  log(`source ${name}: fitting and adapting`);
  const fitted = fitCalibration({ labels, logits: data.logits, targets: data.targets, mask: data.mask }, 'platt', description);
  const calibration: Calibration = { ...fitted, prevalence: labelPrevalence(labels, data.targets, data.mask) };
  const sourceProbabilities = calibratedProbabilities(calibration, labels, data.logits);
  const thresholds: Thresholds = { rule: RULE, source: description, values: {} };
  const chosen: Record<string, { sensitivity: number; specificity: number }> = {};
  labels.forEach((label, j) => {
    const { scores, truth } = column(sourceProbabilities, data, j);
    const positives = truth.reduce((a, b) => a + b, 0);
    if (!calibration.values[label] || positives < MIN_PER_CLASS || truth.length - positives < MIN_PER_CLASS) return;
    const choice = chooseThreshold(scores, truth, rule);
    thresholds.values[label] = choice.threshold;
    chosen[label] = { sensitivity: choice.point.sensitivity, specificity: choice.point.specificity };
  });
  const priors = calibration.prevalence!;
  const { labels: adaptable, skipped } = adaptableLabels(labels, calibration, priors, targetRun.logits);
  const targetProbabilities = calibratedProbabilities(calibration, labels, targetRun.logits);
  const estimates = estimatePrevalences(labels, targetProbabilities, Object.fromEntries(adaptable.map((l) => [l, priors[l]])), { resamples: 1000, seed: 0 });
  const adapted = applyPriorShift(calibration, thresholds, estimates.filter((e) => !e.boundary), 'EM on the unlabelled target images');
  const adaptedProbabilities = calibratedProbabilities(adapted.calibration, labels, targetRun.logits);
  const rows = labels.map((label, j) => {
    const { scores, truth } = column(targetProbabilities, targetRun, j);
    const positives = truth.reduce((a, b) => a + b, 0);
    const src = column(sourceProbabilities, data, j);
    const sourcePositives = src.truth.reduce((a, b) => a + b, 0);
    const estimate = estimates.find((e) => e.label === label);
    const threshold = thresholds.values[label];
    const realised = threshold === undefined || positives === 0 ? null : operatingPoint(scores, truth, threshold);
    // After adaptation: decisions through the run-time code with the shifted calibration and threshold.
    let afterSame: boolean | null = null;
    if (threshold !== undefined) {
      afterSame = true;
      for (let i = 0; i < targetRun.records.length; i++) {
        const before = findingsFromLogits(labels, targetRun.logits, { calibration, thresholds }, i * c)[j].decision;
        const after = findingsFromLogits(labels, targetRun.logits, adapted, i * c)[j].decision;
        if (before !== after) afterSame = false;
      }
    }
    const mean = (values: ArrayLike<number>) => {
      let s = 0;
      for (let i = 0; i < targetRun.records.length; i++) s += values[i * c + j];
      return s / targetRun.records.length;
    };
    return {
      label,
      source: { images: src.truth.length, positives: sourcePositives, prevalence: priors[label] ?? null, calibrated: calibration.values[label] !== undefined },
      target: { images: truth.length, positives, prevalence: truth.length ? positives / truth.length : null },
      threshold: threshold ?? null,
      chosen: chosen[label] ?? null,
      realised: realised && { sensitivity: realised.sensitivity, specificity: realised.specificity },
      meanProbabilityBefore: mean(targetProbabilities),
      meanProbabilityAfter: mean(adaptedProbabilities),
      em: estimate ? { prior: estimate.prior, lower: estimate.lower, upper: estimate.upper, delta: estimate.delta, iterations: estimate.iterations, boundary: estimate.boundary ?? null } : null,
      notAdapted: estimate ? (estimate.boundary ? `EM estimate on the boundary (${estimate.boundary})` : null) : (skipped[label] ?? null),
      decisionsUnchangedAfterAdaptation: afterSame,
      thresholdAfter: adapted.thresholds?.values[label] ?? null,
    };
  });
  return { name, description, sourceImages: data.records.length, rows };
});

const f = (v: number | null | undefined, d = 3) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));
const pct = (v: number | null | undefined) => (v === null || v === undefined || Number.isNaN(v) ? '-' : `${(v * 100).toFixed(1)}%`);
const md: string[] = [
  '# Transfer inside NIH: held-out AP films of nih-cxr14-subset2, and label-free prevalence adaptation',
  '',
  `Produced by \`node dist/scripts/transfer.js\` (scripts/transfer.ts) from models/default.onnx's logits. Per source: Platt calibration and ${RULE} thresholds fitted on the source (a finding needs ${MIN_PER_CLASS} source positives and negatives for a threshold), then tested on the ${targetRun.records.length} AP films of nih-cxr14-subset2 that the model's input checks accept (${targetRun.rejected} rejected). EM (Saerens et al. 2002) estimates each calibrated finding's target prevalence from the unlabelled target images (95% percentile bootstrap over images, 1000 resamples, seed 0); the adapted model shifts each logit and threshold by logit(EM) - logit(source prevalence).`,
  '',
  "**Read with care.** nih-cxr14-subset2 was chosen by label: every image is 'No Finding' or has Pneumonia among its labels, so most findings have few positives among its AP films (n per row below), and their realised sensitivities have wide uncertainty. The default model is weak (its card gives its test AUROCs).",
  '',
];
for (const r of results) {
  md.push(`## Source ${r.name}: ${r.description} (${r.sourceImages} images)`, '');
  md.push('| finding | source pos / n | target pos / n | threshold | sensitivity chosen -> realised | specificity chosen -> realised | target prevalence (labels) | mean calibrated probability | EM estimate [95% CI] | logit shift | mean probability after | decisions unchanged after adaptation |');
  md.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const row of r.rows) {
    md.push(
      `| ${row.label} | ${row.source.positives} / ${row.source.images} | ${row.target.positives} / ${row.target.images} | ${f(row.threshold, 4)} | ${row.chosen ? `${f(row.chosen.sensitivity)} -> ${f(row.realised?.sensitivity)}` : '-'} | ${row.chosen ? `${f(row.chosen.specificity)} -> ${f(row.realised?.specificity)}` : '-'} | ${pct(row.target.prevalence)} | ${pct(row.meanProbabilityBefore)} | ${row.em && !row.em.boundary ? `${pct(row.em.prior)} [${pct(row.em.lower)}, ${pct(row.em.upper)}]` : row.notAdapted ? `not adapted: ${row.notAdapted}` : '-'} | ${row.em && !row.em.boundary ? f(row.em.delta) : '-'} | ${pct(row.meanProbabilityAfter)} | ${row.decisionsUnchangedAfterAdaptation === null ? '-' : row.decisionsUnchangedAfterAdaptation ? 'yes' : 'NO'} |`,
    );
  }
  md.push('');
}
writeFileSync(`${outPrefix}.json`, `${JSON.stringify({ rule: RULE, target: { description: 'held-out nih-cxr14-subset2 AP films accepted by the input checks', images: targetRun.records.length, rejected: targetRun.rejected }, sources: results }, null, 2)}\n`);
writeFileSync(`${outPrefix}.md`, `${md.join('\n')}\n`);
log(`wrote ${outPrefix}.md and .json`);

