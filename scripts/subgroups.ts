/**
 * The default model's held-out test AUROCs by source set and by view, the guard against nih-cxr14-subset2's
 * selection (a "No Finding" and a "Pneumonia" collection, mostly AP films): a model that learned "AP film, or this
 * set's look, means Pneumonia" scores well over all test images and poorly within PA films and within AP films.
 * Scores are the logits (AUROC does not depend on a monotone calibration); every test image counts, including those
 * the input checks would reject. Mean AUROC CIs: 95% percentile bootstrap over patients (1000 resamples); per-finding
 * CIs: DeLong.
 *
 *   node dist/scripts/subgroups.js [model] [out-prefix]   (default models/default.onnx, models/default.subgroups)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { evaluate, type EvaluationResult } from '../src/eval/evaluate.js';
import { sigmoid } from '../src/eval/calibration.js';
import { readModelInfo } from '../src/models/metadata.js';
import { readModelFile } from '../src/onnx/index.js';
import { fileSource, runImages } from '../src/safety/features.js';
import { readConfigFile, resolveConfig } from '../src/train/config.js';
import { readDatasets, splitData } from '../src/train/data.js';
import type { DatasetRecord } from '../src/data/dataset.js';

const modelPath = process.argv[2] ?? join('models', 'default.onnx');
const outPrefix = process.argv[3] ?? join('models', 'default.subgroups');
const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);

const model = readModelFile(modelPath);
const labels = readModelInfo(model).labels;
const c = labels.length;
const recipe = resolveConfig(readConfigFile(join('configs', 'default-model.yaml')), 'configs/default-model.yaml');
const split = await splitData(await readDatasets(recipe), recipe);
const test = split.test.records;
const apart = split.apart.records;
const heldOut = [...test, ...apart];
log(`${test.length} held-out test images, ${apart.length} kept apart`);
const outputs = await runImages(model, heldOut.map((r) => fileSource(r.imagePath)), { batchSize: 16 });
const probabilityOf = new Map(heldOut.map((r, i) => [r, Array.from(outputs.logits.data.subarray(i * c, (i + 1) * c), sigmoid)]));

const SETS = ['nih-cxr14-subset', 'nih-cxr14-subset2', 'nih-cxr14-64px'] as const;
const setOf = (r: DatasetRecord) => SETS.find((set) => r.imagePath.includes(`/${set}/`)) ?? 'other';

function evaluateGroup(records: readonly DatasetRecord[]): EvaluationResult {
  return evaluate(
    {
      labels,
      probabilities: records.flatMap((r) => probabilityOf.get(r)!),
      targets: records.flatMap((r) => Array.from(r.labels, (v) => (v >= 0.5 ? 1 : 0))),
      mask: records.flatMap((r) => Array.from(r.mask)),
      clusters: records.map((r) => r.patientId),
    },
    { bootstrap: { resamples: 1000, seed: 0, byCluster: true } },
  );
}

const APART = 'test patients kept apart (64 px thumbnails)';
const groups: { name: string; records: readonly DatasetRecord[] }[] = [
  { name: 'test split (the card)', records: test },
  ...SETS.map((set) => ({ name: set, records: heldOut.filter((r) => setOf(r) === set) })),
  ...(apart.length > 0 ? [{ name: APART, records: apart }, { name: 'test split and the patients kept apart', records: heldOut }] : []),
  { name: 'PA films', records: test.filter((r) => r.metadata.view === 'PA') },
  { name: 'AP films', records: test.filter((r) => r.metadata.view === 'AP') },
  { name: 'nih-cxr14-subset2, PA films', records: test.filter((r) => setOf(r) === 'nih-cxr14-subset2' && r.metadata.view === 'PA') },
  { name: 'nih-cxr14-subset2, AP films', records: test.filter((r) => setOf(r) === 'nih-cxr14-subset2' && r.metadata.view === 'AP') },
].filter((g) => g.records.length > 0);
const results = groups.map((g) => ({ ...g, result: evaluateGroup(g.records) }));

const f3 = (v: number | null | undefined) => (v === null || v === undefined ? 'n/a' : v.toFixed(3));
const ci = (i: { lower: number; upper: number } | null | undefined) => (i ? `${f3(i.lower)}-${f3(i.upper)}` : 'n/a');
const patients = (records: readonly DatasetRecord[]) => new Set(records.map((r) => r.patientId)).size;
const classOf = (result: EvaluationResult, label: string) => result.classes.find((k) => k.label === label)!;
const cell = (result: EvaluationResult, label: string) => {
  const k = classOf(result, label);
  return k.auroc === null ? `n/a (${k.positives}+)` : `${f3(k.auroc)} (${ci(k.delong)}; ${k.positives}+)`;
};
const views = results.filter((r) => r.name === 'PA films' || r.name === 'AP films');
const apartResult = results.find((r) => r.name === APART);
const unknownView = test.filter((r) => r.metadata.view !== 'PA' && r.metadata.view !== 'AP').length;

const md = `# Held-out test AUROC by source set and by view

Model: ${modelPath}; the recipe's fixed test split (${test.length} images, ${patients(test)} patients; never trained or tuned on)${
  apart.length > 0 ? `, and the test patients of the recipe's \`heldOut: apart\` sets (${apart.length} images, ${patients(apart)} patients), which the card's metrics leave out` : ''
}.
Views: the test split's films (PA and AP rows and columns).
Scores are the model's logits; every test image counts (also those the input checks would reject).
Mean AUROC: over the findings with positives and negatives in the group, 95% CI a percentile bootstrap over patients (1000 resamples).
Per finding: AUROC (95% DeLong CI; positives). ${unknownView > 0 ? `${unknownView} test images have no view.` : 'Every test image has its view (NIH metadata).'}

| group | images | patients | mean AUROC | 95% CI | findings averaged |
|---|---|---|---|---|---|
${results.map(({ name, records, result }) => `| ${name} | ${records.length} | ${patients(records)} | ${f3(result.summary.meanAuroc)} | ${ci(result.summary.meanAurocBootstrap)} | ${result.summary.meanOver.length} |`).join('\n')}

## Per finding, within each view

A finding learned through the view ("AP means Pneumonia") ranks well over all images and falls to chance within each view.

| finding | test split | PA films | AP films |${apartResult ? ' kept apart |' : ''}
|---|---|---|---|${apartResult ? '---|' : ''}
${labels.map((label) => `| ${label} | ${cell(results[0].result, label)} | ${views.map((v) => cell(v.result, label)).join(' | ')} |${apartResult ? ` ${cell(apartResult.result, label)} |` : ''}`).join('\n')}
`;
writeFileSync(`${outPrefix}.md`, md);
writeFileSync(
  `${outPrefix}.json`,
  `${JSON.stringify(
    {
      model: modelPath,
      groups: results.map(({ name, records, result }) => ({
        name,
        images: records.length,
        patients: patients(records),
        meanAuroc: result.summary.meanAuroc,
        meanAurocCi: result.summary.meanAurocBootstrap,
        findings: Object.fromEntries(result.classes.map((k) => [k.label, { auroc: k.auroc, delong: k.delong && { lower: k.delong.lower, upper: k.delong.upper }, positives: k.positives, negatives: k.negatives }])),
      })),
    },
    null,
    2,
  )}\n`,
);
log(`wrote ${outPrefix}.md and .json`);
