/**
 * Closing a run: the best model (by validation mean AUROC) gets operating points chosen on the validation split,
 * is scored once on the held-out test patients, and is written with its model card: what it was trained on, how,
 * what was measured (with confidence intervals), what it is for, and that it is not for clinical use.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Dataset, ImageCache } from '../data/index.js';
import { type EvaluationInput, type EvaluationResult, describeThresholdRule, evaluate, evaluationToHtml } from '../eval/index.js';
import { readModelInfo, setThresholds } from '../models/metadata.js';
import { readModelFile, writeModelFile } from '../onnx/index.js';
import { VERSION } from '../version.js';
import type { TrainConfig } from './config.js';
import { type SplitData } from './data.js';
import type { TrainOutcome } from './trainer.js';
import { scoreSplit } from './validation.js';

export const CARD_FILES = { model: 'model.onnx', cardJson: 'model-card.json', cardMarkdown: 'model-card.md', testReport: 'test-report.html' } as const;

export const INTENDED_USE =
  'Research and education: studying chest X-ray classifiers, their explanations and their failure modes. ' +
  'NOT FOR CLINICAL USE: not a medical device, not validated for diagnosis, triage or any decision about a patient.';

export interface ModelCard {
  model: { file: string; architecture: string; labels: string[]; input: string; cxrLensVersion: string; created: string };
  intendedUse: string;
  limitations: string[];
  weights: { start: string; notes: string[] };
  trainingData: {
    datasets: TrainConfig['datasets'];
    split: TrainConfig['split'] & { seed: number };
    images: Record<'train' | 'validation' | 'test', number>;
    patients: Record<'train' | 'validation' | 'test', number>;
    positives: Record<'train' | 'validation' | 'test', Record<string, number>>;
  };
  recipe: TrainConfig;
  training: { status: TrainOutcome['status']; epochs: number; bestEpoch: number; history: TrainOutcome['history'] };
  thresholds: { rule: string; source: string; values: Record<string, number> };
  metrics: { validation: EvaluationResult; test: EvaluationResult | null };
}

export async function finishRun(outcome: TrainOutcome, config: TrainConfig, outDir: string, say: (message: string) => void): Promise<{ card: ModelCard; summary: string }> {
  const model = readModelFile(outcome.bestModelPath);
  const info = readModelInfo(model, outcome.bestModelPath);
  const { data } = outcome;
  const cache = await ImageCache.open([...data.train.records, ...data.validation.records, ...data.test.records], { folder: config.cacheDir, spec: info.preprocessing });
  let validation: EvaluationInput;
  let test: EvaluationInput | null;
  try {
    say('scoring the validation and test splits with the best model');
    validation = await inputOf(model, cache, data.validation, config);
    test = data.test.records.length > 0 ? await inputOf(model, cache, data.test, config) : null;
  } finally {
    await cache.close();
  }
  const rule = { kind: 'youden' } as const;
  const validationSource = `validation split (${describeSplit(data.validation)})`;
  const validationResult = evaluate(validation, { thresholds: { kind: 'rule', rule }, bootstrap: { resamples: 1000, byCluster: true } });
  const thresholds = {
    rule: describeThresholdRule(rule),
    source: validationSource,
    values: Object.fromEntries(validationResult.classes.flatMap((k) => (k.threshold ? [[k.label, k.threshold.value]] : []))),
  };
  const testResult = test
    ? evaluate(test, { thresholds: { kind: 'fixed', values: thresholds.values, source: `chosen on the ${validationSource}` }, bootstrap: { resamples: 1000, byCluster: true } })
    : null;

  setThresholds(model, thresholds);
  const modelPath = join(outDir, CARD_FILES.model);
  writeModelFile(modelPath, model);
  const card: ModelCard = {
    model: {
      file: CARD_FILES.model,
      architecture: info.architecture,
      labels: info.labels,
      input: `${info.preprocessing.channels} x ${info.preprocessing.height} x ${info.preprocessing.width}, resize by ${info.preprocessing.resize}`,
      cxrLensVersion: VERSION,
      created: new Date().toISOString(),
    },
    intendedUse: INTENDED_USE,
    limitations: limitations(data, testResult),
    weights: { start: outcome.start.weights, notes: outcome.start.notes },
    trainingData: {
      datasets: config.datasets,
      split: { ...config.split, seed: config.seed },
      images: { train: data.train.records.length, validation: data.validation.records.length, test: data.test.records.length },
      patients: { train: patients(data.train), validation: patients(data.validation), test: patients(data.test) },
      positives: { train: positives(data.train), validation: positives(data.validation), test: positives(data.test) },
    },
    recipe: config,
    training: { status: outcome.status, epochs: outcome.history.length, bestEpoch: outcome.bestEpoch + 1, history: outcome.history },
    thresholds,
    metrics: { validation: validationResult, test: testResult },
  };
  writeFileSync(join(outDir, CARD_FILES.cardJson), `${JSON.stringify(card, null, 2)}\n`);
  writeFileSync(join(outDir, CARD_FILES.cardMarkdown), cardMarkdown(card));
  if (testResult) writeFileSync(join(outDir, CARD_FILES.testReport), evaluationToHtml(testResult, { title: `Test split of ${info.architecture} (${outDir})` }));
  const mean = testResult?.summary.meanAuroc;
  const interval = testResult?.summary.meanAurocBootstrap;
  const summary = [
    `model: ${modelPath}`,
    `model card: ${join(outDir, CARD_FILES.cardMarkdown)}`,
    mean !== null && mean !== undefined
      ? `test mean AUROC ${mean.toFixed(3)}${interval ? ` (95% CI ${interval.lower.toFixed(3)}-${interval.upper.toFixed(3)}, patient bootstrap)` : ''} on ${data.test.records.length} images of held-out patients`
      : 'no test split: the model card reports validation metrics only',
  ].join('\n');
  return { card, summary };
}

async function inputOf(model: ReturnType<typeof readModelFile>, cache: ImageCache, dataset: Dataset, config: TrainConfig): Promise<EvaluationInput> {
  const scores = await scoreSplit(model, cache, dataset, { batchSize: config.batchSize, threads: config.threads });
  const c = dataset.labelSet.labels.length;
  const targets = new Float32Array(dataset.records.length * c);
  const mask = new Float32Array(dataset.records.length * c);
  dataset.records.forEach((r, i) => {
    for (let j = 0; j < c; j++) {
      targets[i * c + j] = r.labels[j] >= 0.5 ? 1 : 0;
      mask[i * c + j] = r.mask[j];
    }
  });
  return {
    labels: [...dataset.labelSet.labels],
    probabilities: scores.probabilities,
    targets,
    mask,
    ids: dataset.records.map((r) => r.id),
    clusters: dataset.records.map((r) => r.patientId),
  };
}

function patients(d: Dataset): number {
  return new Set(d.records.map((r) => r.patientId)).size;
}

function positives(d: Dataset): Record<string, number> {
  return Object.fromEntries(d.labelSet.labels.map((label, j) => [label, d.records.filter((r) => r.mask[j] === 1 && r.labels[j] >= 0.5).length]));
}

function describeSplit(d: Dataset): string {
  return `${d.records.length} images, ${patients(d)} patients`;
}

function limitations(data: SplitData, test: EvaluationResult | null): string[] {
  const notes = [
    `Trained on ${data.train.records.length} images: far fewer than NIH ChestX-ray14's 112,120. Expect much lower accuracy than published models; train on the full dataset or import stronger weights for research use.`,
    "NIH's labels were mined from radiology reports by NLP and are noisy (Wang et al. 2017 estimate >90% accuracy).",
    'Frontal chest radiographs only; other views, body parts, children and devices outside the training data are out of scope.',
    'Probabilities are not calibrated unless the card says so; thresholds were chosen on the validation split and their sensitivity elsewhere is not guaranteed.',
  ];
  const thin = test?.classes.filter((k) => k.positives < 10).map((k) => `${k.label} (${k.positives})`) ?? [];
  if (thin.length > 0) notes.push(`Classes with fewer than 10 positive test images have very wide intervals: ${thin.join(', ')}.`);
  return notes;
}

function cardMarkdown(card: ModelCard): string {
  const f = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? 'n/a' : v.toFixed(digits));
  const test = card.metrics.test;
  const val = card.metrics.validation;
  const rows = card.model.labels.map((label, j) => {
    const t = test?.classes[j];
    const v = val.classes[j];
    const ci = t?.delong ? `${f(t.delong.lower)}-${f(t.delong.upper)}` : 'n/a';
    const point = t?.operatingPoint;
    return `| ${label} | ${t ? `${t.positives}/${t.positives + t.negatives}` : 'n/a'} | ${f(t?.auroc)} | ${ci} | ${f(t?.averagePrecision)} | ${f(card.thresholds.values[label])} | ${f(point?.sensitivity)} | ${f(point?.specificity)} | ${f(v.auroc)} |`;
  });
  const s = test?.summary;
  return `# Model card: ${card.model.architecture} for ${card.model.labels.length} chest X-ray findings

> **NOT FOR CLINICAL USE.** ${card.intendedUse}

| | |
|---|---|
| File | ${card.model.file} |
| Architecture | ${card.model.architecture}, input ${card.model.input} |
| Weights | ${card.weights.start}${card.weights.notes.length ? `; ${card.weights.notes.join('; ')}` : ''} |
| Training | ${card.training.epochs} epochs (${card.training.status}), best validation epoch ${card.training.bestEpoch} |
| Data | ${card.trainingData.images.train} train / ${card.trainingData.images.validation} validation / ${card.trainingData.images.test} test images; ${card.trainingData.patients.train} / ${card.trainingData.patients.validation} / ${card.trainingData.patients.test} patients; split by patient (${card.trainingData.split.method}, seed ${card.trainingData.split.seed}) |
| Created | ${card.model.created} with cxr-lens ${card.model.cxrLensVersion} |

## Measured on held-out test patients
${
  s
    ? `Mean AUROC **${f(s.meanAuroc)}**${s.meanAurocBootstrap ? ` (95% CI ${f(s.meanAurocBootstrap.lower)}-${f(s.meanAurocBootstrap.upper)}, bootstrap over patients)` : ''} over ${s.meanOver.length} findings with positives and negatives in the test split.`
    : 'There was no test split; only validation metrics exist.'
}
Thresholds: ${card.thresholds.rule}, chosen on the ${card.thresholds.source}.

| Finding | test positives/labelled | test AUROC | 95% CI (DeLong) | AP | threshold | sensitivity | specificity | validation AUROC |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

${test?.comparison ? `Published per-class AUROCs (NIH, much larger training sets; CheXNet used a random patient split, the others NIH's official split) are listed beside ours in test-report.html and model-card.json.` : ''}

## Limitations
${card.limitations.map((l) => `- ${l}`).join('\n')}

## Training data
${card.trainingData.datasets.map((d) => `- ${d.format}: ${d.csv}${d.images ? ` (images: ${d.images})` : ''}`).join('\n')}

## Recipe
\`\`\`json
${JSON.stringify(card.recipe, null, 2)}
\`\`\`
`;
}
