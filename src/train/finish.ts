/**
 * Closing a run: the best model (by validation mean AUROC) gets its input checks, its calibration and operating
 * points fitted on the validation split (thresholds on the calibrated probabilities), is scored once on the
 * held-out test patients, and is written with its model card: what it was trained on, how, what was measured (with
 * confidence intervals, ECE before and after calibration, how well the input checks refuse invalid inputs), what it
 * is for, and that it is not for clinical use.
 */
import { writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Dataset } from '../data/index.js';
import { type EvaluationResult, evaluate, evaluationToHtml } from '../eval/index.js';
import { DEFAULT_THRESHOLD_RULE } from '../eval/thresholds.js';
import { type Calibration, type SafetyInfo, type Thresholds, readModelInfo } from '../models/metadata.js';
import { readModelFile, writeModelFile } from '../onnx/index.js';
import { type OperatingPointCheck, calibrateModel, labelledImages } from '../safety/calibrate.js';
import { fileSource } from '../safety/features.js';
import { calibrationMarkdown, safetyMarkdown } from '../safety/report.js';
import { VERSION } from '../version.js';
import type { TrainConfig } from './config.js';
import { type SplitData } from './data.js';
import type { TrainOutcome } from './trainer.js';

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
    /** Test patients of `heldOut: apart` sets (named by their labels file's folder), in no metric. */
    apart?: { images: number; patients: number; sets: string[] };
  };
  recipe: TrainConfig;
  training: { status: TrainOutcome['status']; epochs: number; bestEpoch: number; history: TrainOutcome['history'] };
  thresholds: Thresholds;
  /** Each threshold's sensitivity and specificity as chosen, and recomputed through the run-time code. */
  operatingPoints: OperatingPointCheck[];
  calibration: Calibration;
  inputChecks: SafetyInfo;
  metrics: { validation: EvaluationResult; test: EvaluationResult | null };
}

export async function finishRun(outcome: TrainOutcome, config: TrainConfig, outDir: string, say: (message: string) => void): Promise<{ card: ModelCard; summary: string }> {
  const best = readModelFile(outcome.bestModelPath);
  const info = readModelInfo(best, outcome.bestModelPath);
  const { data } = outcome;
  const validationSource = `validation split (${describeSplit(data.validation)})`;
  // Thresholds at a stated specificity (0.9) on the calibrated validation probabilities, each with its bootstrap CI.
  const rule = DEFAULT_THRESHOLD_RULE;
  // Calibration, then thresholds on the calibrated probabilities, then the checks: all inside calibrateModel.
  const fitted = await calibrateModel(
    best,
    {
      reference: data.train.records.map((r) => fileSource(r.imagePath)),
      validation: labelledImages(data.validation, validationSource),
      test: data.test.records.length > 0 ? labelledImages(data.test, `test split (${describeSplit(data.test)})`) : undefined,
      apart: data.apart.records.length > 0 ? labelledImages(data.apart, `test patients kept apart (${describeSplit(data.apart)})`) : undefined,
    },
    { thresholdRule: rule, batchSize: config.batchSize, threads: config.threads, onStage: say },
  );
  const { model, thresholds } = fitted;
  const fixed = (source: string) => ({ kind: 'fixed' as const, values: thresholds.values, source });
  // On validation, the stored thresholds (chosen on these same probabilities, so optimistic there); a finding withheld a
  // threshold (too few validation positives) gets none here either, as at run time.
  const validationResult = evaluate(fitted.validation.calibrated, {
    thresholds: fixed(`${thresholds.rule}, chosen on this same ${validationSource} (optimistic here)`),
    bootstrap: { resamples: 1000, byCluster: true },
  });
  const testResult = fitted.test
    ? evaluate(fitted.test.calibrated, { thresholds: fixed(`${thresholds.rule}, chosen on the ${validationSource}`), bootstrap: { resamples: 1000, byCluster: true } })
    : null;

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
    trainingData: { datasets: config.datasets, split: { ...config.split, seed: config.seed }, ...splitCounts(data) },
    recipe: config,
    training: { status: outcome.status, epochs: outcome.history.length, bestEpoch: outcome.bestEpoch + 1, history: outcome.history },
    thresholds,
    operatingPoints: fitted.operatingPoints,
    calibration: fitted.calibration,
    inputChecks: fitted.safety,
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

/** Images, patients and positives per part of a split, as the card records them. */
export function splitCounts(data: SplitData): Pick<ModelCard['trainingData'], 'images' | 'patients' | 'positives' | 'apart'> {
  return {
    images: { train: data.train.records.length, validation: data.validation.records.length, test: data.test.records.length },
    patients: { train: patients(data.train), validation: patients(data.validation), test: patients(data.test) },
    positives: { train: positives(data.train), validation: positives(data.validation), test: positives(data.test) },
    ...(data.apart.records.length > 0
      ? { apart: { images: data.apart.records.length, patients: patients(data.apart), sets: [...new Set(data.apart.records.map((r) => basename(dirname(r.source.file))))] } }
      : {}),
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
    'Probabilities were calibrated on the validation split (see the ECE before and after); thresholds were chosen on it and their sensitivity elsewhere is not guaranteed.',
    'The input checks refuse what does not look like the training images; they were measured on the kinds of invalid input listed in the card only, and a lateral view is recognised from its DICOM View Position only.',
  ];
  return [...notes, ...thinClassesNote(test)];
}

export const THIN_CLASSES = 'Classes with fewer than 10 positive test images';

export function thinClassesNote(test: EvaluationResult | null): string[] {
  const thin = test?.classes.filter((k) => k.positives < 10).map((k) => `${k.label} (${k.positives})`) ?? [];
  return thin.length > 0 ? [`${THIN_CLASSES} have very wide intervals: ${thin.join(', ')}.`] : [];
}

function apartLine(card: ModelCard): string {
  const apart = card.trainingData.apart;
  if (!apart) return '';
  return `; ${apart.images} more test images (${apart.patients} patients) of ${apart.sets.join(', ')} kept apart: in no metric (\`heldOut: apart\`)`;
}

export function cardMarkdown(card: ModelCard): string {
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
| Data | ${card.trainingData.images.train} train / ${card.trainingData.images.validation} validation / ${card.trainingData.images.test} test images; ${card.trainingData.patients.train} / ${card.trainingData.patients.validation} / ${card.trainingData.patients.test} patients; split by patient (${card.trainingData.split.method}, seed ${card.trainingData.split.seed})${apartLine(card)} |
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

${calibrationMarkdown(card.calibration, card.thresholds, card.operatingPoints)}
${safetyMarkdown(card.inputChecks)}
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
