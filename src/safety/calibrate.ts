/**
 * Making a model ready to answer: input checks fitted (fit.ts), probabilities calibrated and operating points
 * chosen on the calibrated validation probabilities, everything stored in the model, and measured: ECE before and
 * after (on the fitting data and on held-out patients), each threshold's sensitivity and specificity recomputed
 * through the run-time code path, and how well each check separates real held-out images from invalid ones.
 * Used at the end of every training run and by `cxr calibrate` for imported or older models.
 */
import type { Dataset } from '../data/dataset.js';
import { expectedCalibrationError } from '../eval/calibration.js';
import type { EvaluationInput } from '../eval/evaluate.js';
import { auroc } from '../eval/roc.js';
import { DEFAULT_THRESHOLD_RULE, type ThresholdRule, chooseThreshold, describeThresholdRule, thresholdInterval } from '../eval/thresholds.js';
import { findingsFromLogits } from '../outputs/findings.js';
import { type Calibration, type SafetyCheckSpec, type SafetyInfo, type SafetyMeasurement, type Thresholds, readModelInfo, setCalibration, setSafety, setThresholds } from '../models/metadata.js';
import type { Model } from '../onnx/index.js';
import { type CalibrationMethod, MIN_PER_CLASS, calibratedProbabilities, fitCalibration } from '../outputs/calibration.js';
import { DOUBTS, doubtfulScores, isDoubt } from './check.js';
import { labelPrevalence } from './prior-shift.js';
import type { Corruption } from './corrupt.js';
import { type ImageOutputs, type ImageSource, corrupted, fileSource, runImages } from './features.js';
import { type SafetyFitOptions, column, evenlySpaced, fitSafety } from './fit.js';
import { verdictOf } from './flags.js';

/** Images with their labels in the model's label order. */
export interface LabelledImages {
  /** Says what they are in the model card, e.g. "validation split (208 images, 141 patients)". */
  description: string;
  sources: ImageSource[];
  /** [images, labels] 0/1 truths and 1 where the truth counts. */
  targets: Float32Array;
  mask: Float32Array;
  /** Patient of each image. */
  clusters: string[];
  /** View of each image ('AP', 'PA', or '' where unknown), when known: false refusals are measured per view. */
  views?: string[];
}

export interface NegativeSet {
  kind: string;
  sources: ImageSource[];
}

export interface CalibrateData {
  /** Training images: the reference distribution of the out-of-distribution score. */
  reference: ImageSource[];
  /** Held-out patients: calibration, operating points and check thresholds are fitted on them. */
  validation: LabelledImages;
  /** Other held-out patients: only measured on (ECE after calibration, the checks' false rejections, positives). */
  test?: LabelledImages;
  /**
   * Held-out real films kept out of the metrics (a config's `heldOut: apart` sets): with the test images, they
   * measure the checks' false refusals, and nothing else.
   */
  apart?: Pick<LabelledImages, 'description' | 'sources' | 'views'>;
  /** Real invalid inputs by kind (photographs, non-chest DICOMs, ...), measured against the held-out images. */
  negatives?: NegativeSet[];
}

export interface CalibrateOptions extends SafetyFitOptions {
  /** Default `platt`. */
  method?: CalibrationMethod;
  /** Default `specificity:0.9` (DEFAULT_THRESHOLD_RULE). */
  thresholdRule?: ThresholdRule;
  /**
   * Fewest validation images of each class (positive and negative) a finding needs to be calibrated and to get a
   * threshold (default MIN_PER_CLASS = 10); below it the finding keeps the plain sigmoid and gets no decision.
   */
  minPerClass?: number;
  /** Bootstrap of each threshold's confidence interval (default 1000 resamples of patients, seed 0, 95%). */
  thresholdBootstrap?: ThresholdBootstrapOptions;
  /** Images per synthetic negative kind (turned, inverted, cropped, blank, noise), from the held-out images (default 100; 0: none). */
  syntheticNegatives?: number;
  /** Reference images used at most, evenly spaced over the list (default 2000). */
  referenceImages?: number;
}

export interface OperatingPointCheck {
  label: string;
  threshold: number;
  /** The threshold's bootstrap confidence interval [lower, upper] (null when no resample gave one). */
  interval: [number, number] | null;
  /** Sensitivity and specificity at the threshold as the rule found them when choosing it. */
  stated: { sensitivity: number; specificity: number };
  /** The same, recomputed from the decisions findingsFromLogits makes with the stored model metadata. */
  reproduced: { sensitivity: number; specificity: number };
}

export interface CalibrateResult {
  model: Model;
  calibration: Calibration;
  thresholds: Thresholds;
  safety: SafetyInfo;
  /** Labelled probabilities before (plain sigmoid) and after calibration, for evaluation reports. */
  validation: { uncalibrated: EvaluationInput; calibrated: EvaluationInput };
  test?: { uncalibrated: EvaluationInput; calibrated: EvaluationInput };
  operatingPoints: OperatingPointCheck[];
}

const SYNTHETIC: Record<Corruption, string> = {
  rotate90: 'NIH frontal images rotated 90 degrees',
  rotate180: 'NIH frontal images rotated 180 degrees',
  rotate270: 'NIH frontal images rotated 270 degrees',
  mirror: 'NIH frontal images mirrored left-right (should warn, not refuse)',
  invert: 'NIH frontal images inverted',
  crop: 'NIH frontal images heavily cropped (30% of each side)',
  blank: 'blank images (one gray level)',
  noise: 'uniform noise images',
};

export async function calibrateModel(model: Model, data: CalibrateData, options: CalibrateOptions = {}): Promise<CalibrateResult> {
  const say = options.onStage ?? (() => {});
  const info = readModelInfo(model);
  const labels = info.labels;
  const run = { batchSize: options.batchSize, threads: options.threads, onProgress: options.onProgress };
  for (const [name, set] of [['validation', data.validation], ['test', data.test]] as const) {
    if (!set) continue;
    const expected = set.sources.length * labels.length;
    if (set.targets.length !== expected || set.mask.length !== expected || set.clusters.length !== set.sources.length) {
      throw new Error(`${name} data: ${set.sources.length} images need ${expected} targets and mask values for ${labels.length} labels and one patient each; got ${set.targets.length}, ${set.mask.length} and ${set.clusters.length}`);
    }
  }
  const reference = evenlySpaced(data.reference, options.referenceImages ?? 2000);
  if (options.referenceOutputs && options.referenceOutputs.ids.length !== reference.length) {
    throw new Error(`referenceOutputs has ${options.referenceOutputs.ids.length} images; the reference images used are ${reference.length}`);
  }
  const fit = await fitSafety(model, { reference, validation: data.validation.sources, validationDescription: data.validation.description }, { ...options, onStage: say });
  const fitted = fit.model;

  say('calibration and operating points');
  const method = options.method ?? 'platt';
  const rule = options.thresholdRule ?? DEFAULT_THRESHOLD_RULE;
  const validationLogits = fit.validation.logits.data;
  const calibration = fitCalibration({ labels, logits: validationLogits, targets: data.validation.targets, mask: data.validation.mask }, method, data.validation.description, {
    minPerClass: options.minPerClass,
  });
  calibration.prevalence = labelPrevalence(labels, data.validation.targets, data.validation.mask); // the prior a prior shift (prior-shift.ts) starts from
  const { thresholds, operatingPoints } = chooseThresholds(labels, validationLogits, data.validation, calibration, rule, {
    ...options.thresholdBootstrap,
    minPerClass: options.minPerClass,
  });
  setCalibration(fitted, calibration);
  setThresholds(fitted, thresholds);

  const validationInputs = labelledInputs(labels, validationLogits, data.validation, calibration);
  const ece = [eceEntry(`${data.validation.description} (the fitting data)`, validationInputs)];
  let test: CalibrateResult['test'];
  let heldOut: ImageOutputs = fit.validation;
  let heldOutSources = data.validation.sources;
  let heldOutViews = data.validation.views;
  let positivesDescription = data.validation.description;
  if (data.test && data.test.sources.length > 0) {
    const apart = data.apart?.sources.length ? data.apart : undefined;
    say(`held-out test images: ${data.test.sources.length}${apart ? `, and ${apart.sources.length} kept apart` : ''}`);
    heldOutSources = [...data.test.sources, ...(apart?.sources ?? [])];
    heldOut = await runImages(fitted, heldOutSources, run);
    const testLogits = heldOut.logits.data.subarray(0, data.test.sources.length * labels.length);
    test = labelledInputs(labels, testLogits, data.test, calibration);
    ece.push(eceEntry(`${data.test.description} (held out)`, test));
    const viewsOf = (set: { sources: unknown[]; views?: string[] }) => set.views ?? set.sources.map(() => '');
    heldOutViews = apart ? [...viewsOf(data.test), ...viewsOf(apart)] : data.test.views;
    positivesDescription = apart ? `${data.test.description} and ${apart.description}` : data.test.description;
  }
  calibration.ece = ece;
  setCalibration(fitted, calibration);

  const count = options.syntheticNegatives ?? 100;
  const negatives: NegativeSet[] = [
    ...(count > 0
      ? Object.entries(SYNTHETIC).map(([kind, description]) => ({
          kind: description,
          sources: heldOutSources.slice(0, kind === 'blank' || kind === 'noise' ? Math.min(count, 30) : count).map((s, i) => corrupted(s, kind as Corruption, 7919 * (i + 1))),
        }))
      : []),
    ...(data.negatives ?? []),
  ];
  const measured: SafetyMeasurement[] = [measureKind(`real frontal chest X-rays, held out (${positivesDescription})`, heldOut, fit.safety, null)];
  // False refusals per view: bedside AP films differ from PA films, and each must pass.
  for (const view of [...new Set(heldOutViews ?? [])].filter((v) => v !== '').sort()) {
    const rows = (heldOutViews ?? []).flatMap((v, i) => (v === view ? [i] : []));
    measured.push(measureKind(`real frontal chest X-rays, held out, ${view} view`, subsetOutputs(heldOut, rows), fit.safety, null));
  }
  for (const negative of negatives) {
    say(`measuring the checks on ${negative.sources.length} ${negative.kind}`);
    measured.push(measureKind(negative.kind, await runImages(fitted, negative.sources, run), fit.safety, heldOut));
  }
  const safety: SafetyInfo = { ...fit.safety, measured };
  setSafety(fitted, safety);
  return { model: fitted, calibration, thresholds, safety, validation: validationInputs, test, operatingPoints };
}

export interface ThresholdBootstrapOptions {
  /** Default 1000. */
  resamples?: number;
  /** Default 0. */
  seed?: number;
  /** Default 0.95. */
  level?: number;
}

export interface ChooseThresholdsOptions extends ThresholdBootstrapOptions {
  /** Fewest validation positives (and negatives) a finding needs for a threshold (default MIN_PER_CLASS = 10). */
  minPerClass?: number;
}

/**
 * Operating points chosen by `rule` on the calibrated probabilities (exactly those findingsFromLogits computes),
 * each with its bootstrap confidence interval (resampling whole patients where `clusters` are given, else images)
 * and its sensitivity and specificity recomputed from run-time decisions. A finding with fewer than `minPerClass`
 * validation positives or negatives, or whose rule no threshold meets, gets no threshold: `withheld` says why, and
 * its findings carry that reason instead of a decision.
 */
export function chooseThresholds(
  labels: readonly string[],
  logits: ArrayLike<number>,
  data: Pick<LabelledImages, 'description' | 'targets' | 'mask'> & { clusters?: readonly string[] },
  calibration: Calibration | undefined,
  rule: ThresholdRule,
  options: ChooseThresholdsOptions = {},
): { thresholds: Thresholds; operatingPoints: OperatingPointCheck[] } {
  const c = labels.length;
  const n = logits.length / c;
  const minPerClass = options.minPerClass ?? MIN_PER_CLASS;
  const resamples = options.resamples ?? 1000;
  const seed = options.seed ?? 0;
  const level = options.level ?? 0.95;
  if (data.clusters && data.clusters.length !== n) throw new Error(`thresholds: ${data.clusters.length} patients given for ${n} images`);
  const clusterIds = data.clusters ? integerIds(data.clusters) : undefined;
  const calibrated = calibratedProbabilities(calibration, labels, logits);
  const withheld: Record<string, string> = {};
  const chosen = labels.flatMap((label, j) => {
    const kept: number[] = [];
    for (let i = 0; i < n; i++) if (data.mask[i * c + j] === 1) kept.push(i);
    const scores = Float64Array.from(kept, (i) => calibrated[i * c + j]);
    const truth = Uint8Array.from(kept, (i) => (data.targets[i * c + j] >= 0.5 ? 1 : 0));
    const positives = truth.reduce((a, b) => a + b, 0);
    const negatives = truth.length - positives;
    if (positives < minPerClass || negatives < minPerClass) {
      const [few, count] = positives < minPerClass ? ['positive', positives] : ['negative', negatives];
      withheld[label] = `only ${count} ${few} validation images of ${truth.length} labelled; a stable threshold needs at least ${minPerClass}`;
      return [];
    }
    let choice;
    try {
      choice = chooseThreshold(scores, truth, rule);
    } catch (error) {
      withheld[label] = (error as Error).message;
      return [];
    }
    const interval = thresholdInterval(scores, truth, rule, { resamples, seed, level, clusters: clusterIds && Int32Array.from(kept, (i) => clusterIds[i]) });
    return [{ label, j, choice, interval: interval ? ([interval.lower, interval.upper] as [number, number]) : null }];
  });
  const thresholds: Thresholds = {
    rule: describeThresholdRule(rule),
    source: `${data.description}, on ${calibration ? 'calibrated' : 'uncalibrated'} probabilities`,
    values: Object.fromEntries(chosen.map((c) => [c.label, c.choice.threshold])),
    intervals: Object.fromEntries(chosen.flatMap((c) => (c.interval ? [[c.label, c.interval]] : []))),
    intervalMethod: `${Math.round(level * 1000) / 10}% percentile bootstrap, ${resamples} resamples of the validation ${clusterIds ? 'patients' : 'images'} (seed ${seed}), the rule choosing again on each`,
    ...(Object.keys(withheld).length ? { withheld } : {}),
  };
  const operatingPoints = chosen.map(({ label, j, choice, interval }) => ({
    label,
    threshold: choice.threshold,
    interval,
    stated: { sensitivity: choice.point.sensitivity, specificity: choice.point.specificity },
    reproduced: reproduce(labels, j, logits, data, { thresholds, calibration }),
  }));
  return { thresholds, operatingPoints };
}

/** Each distinct text as a small integer, in order of first appearance. */
function integerIds(names: readonly string[]): Int32Array {
  const ids = new Map<string, number>();
  return Int32Array.from(names, (name) => {
    let id = ids.get(name);
    if (id === undefined) ids.set(name, (id = ids.size));
    return id;
  });
}

/** Sensitivity and specificity of label j from the decisions the run-time code makes with this metadata. */
function reproduce(labels: readonly string[], j: number, logits: ArrayLike<number>, data: Pick<LabelledImages, 'targets' | 'mask'>, rules: Parameters<typeof findingsFromLogits>[2]) {
  const c = labels.length;
  let tp = 0;
  let fn = 0;
  let tn = 0;
  let fp = 0;
  for (let i = 0; i * c < logits.length; i++) {
    if (data.mask[i * c + j] !== 1) continue;
    const positive = findingsFromLogits(labels, logits, rules, i * c)[j].decision === 'positive';
    if (data.targets[i * c + j] >= 0.5) positive ? tp++ : fn++;
    else positive ? fp++ : tn++;
  }
  return { sensitivity: tp / (tp + fn), specificity: tn / (tn + fp) };
}

function labelledInputs(labels: readonly string[], logits: ArrayLike<number>, data: LabelledImages, calibration: Calibration) {
  const base = { labels, targets: data.targets, mask: data.mask, ids: data.sources.map((s) => s.id), clusters: data.clusters };
  return {
    uncalibrated: { ...base, probabilities: calibratedProbabilities(undefined, labels, logits) },
    calibrated: { ...base, probabilities: calibratedProbabilities(calibration, labels, logits) },
  };
}

/** Mean over labels (with any labelled image) of the 10-bin ECE, as eval's summary.meanEce. */
export function meanEce(input: EvaluationInput): number {
  const c = input.labels.length;
  const values: number[] = [];
  for (let j = 0; j < c; j++) {
    const p: number[] = [];
    const y: number[] = [];
    for (let i = 0; i * c < input.probabilities.length; i++) {
      if (input.mask && input.mask[i * c + j] !== 1) continue;
      p.push(input.probabilities[i * c + j]);
      y.push(input.targets[i * c + j] >= 0.5 ? 1 : 0);
    }
    if (p.length > 0) values.push(expectedCalibrationError(Float64Array.from(p), Uint8Array.from(y)));
  }
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function eceEntry(data: string, inputs: { uncalibrated: EvaluationInput; calibrated: EvaluationInput }) {
  return { data, before: meanEce(inputs.uncalibrated), after: meanEce(inputs.calibrated) };
}

/**
 * One kind's measurement: per check, the AUROC of its score between the held-out real images and this kind
 * (oriented so that higher means flagged), and the share of this kind rejected at the stored thresholds.
 */
function measureKind(kind: string, outputs: ImageOutputs, safety: SafetyInfo, heldOut: ImageOutputs | null): SafetyMeasurement {
  const rejected = (outputs.flags ?? []).filter((flags) => verdictOf(flags, false) === 'rejected').length;
  const aurocs: Record<string, number> = {};
  if (heldOut) {
    for (const spec of safety.checks) {
      const score = (o: ImageOutputs) => scoreValues(spec, o, safety);
      const positive = score(heldOut);
      const negative = score(outputs);
      aurocs[spec.score] = auroc(Float64Array.from([...positive, ...negative]), Uint8Array.from([...positive].map(() => 0).concat([...negative].map(() => 1))));
    }
  }
  const warned = (outputs.flags ?? []).filter((flags) => verdictOf(flags, false) === 'accepted' && flags.some((f) => f.severity === 'warning')).length;
  return { kind, images: outputs.ids.length, aurocs, rejected: rejected / outputs.ids.length, warned: warned / outputs.ids.length };
}

/** One check's score on each image, oriented so that higher means flagged. */
function scoreValues(spec: SafetyCheckSpec, o: ImageOutputs, safety: SafetyInfo): Float64Array {
  const sign = spec.direction === 'above' ? 1 : -1;
  if (spec.score === DOUBTS) {
    const doubts = safety.checks.filter(isDoubt);
    // scoreValues orients each score; the count wants them as measured.
    const values = new Map(doubts.map((d) => [d, scoreValues(d, o, safety).map((v) => (d.direction === 'above' ? v : -v))]));
    return Float64Array.from(o.ids, (_, i) => sign * doubtfulScores(doubts, (d) => values.get(d)![i]).size);
  }
  if (spec.score === 'ood') return Float64Array.from(o.ood as Float32Array, (v) => sign * v);
  if (spec.score === 'spread') return Float64Array.from(o.statistics, (s) => sign * s.spread);
  if (spec.score === 'shorterSide') return Float64Array.from(o.statistics, (s) => sign * s.shorterSide);
  if (spec.score === 'smoothness') return Float64Array.from(o.statistics, (s) => sign * s.smoothness);
  if (spec.score === 'colourfulness') return Float64Array.from(o.colourfulness, (v) => sign * v);
  if (spec.score === 'layout') return Float64Array.from(o.picture ?? [], (p) => sign * (p.layout ?? 0));
  const turned = /^orientation:(rotated|inverted|mirrored)$/.exec(spec.score);
  if (turned) return Float64Array.from(o.picture ?? [], (p) => sign * (p.orientation?.[turned[1] as 'rotated'] ?? 0));
  return Float64Array.from(column(o.heads!, Number(spec.score.split(':')[1])), (v) => sign * v);
}

/** The outputs of some of the images (rows), for measuring a group on its own. */
function subsetOutputs(o: ImageOutputs, rows: readonly number[]): ImageOutputs {
  const pick = <T>(items: readonly T[] | undefined) => items && rows.map((i) => items[i]);
  return {
    ids: pick(o.ids)!,
    pooled: { rows: 0, columns: 0, data: new Float32Array(0) },
    logits: { rows: 0, columns: 0, data: new Float32Array(0) },
    statistics: pick(o.statistics)!,
    thumbnails: pick(o.thumbnails)!,
    colourfulness: Float64Array.from(rows, (i) => o.colourfulness[i]),
    ...(o.ood ? { ood: Float32Array.from(rows, (i) => o.ood![i]) } : {}),
    ...(o.picture ? { picture: pick(o.picture) } : {}),
    ...(o.flags ? { flags: pick(o.flags) } : {}),
  };
}


/** Labelled images of a dataset's records (labels in the dataset's order, which must be the model's). */
export function labelledImages(dataset: Dataset, description: string): LabelledImages {
  const c = dataset.labelSet.labels.length;
  const n = dataset.records.length;
  const targets = new Float32Array(n * c);
  const mask = new Float32Array(n * c);
  dataset.records.forEach((r, i) => {
    for (let j = 0; j < c; j++) {
      targets[i * c + j] = r.labels[j] >= 0.5 ? 1 : 0;
      mask[i * c + j] = r.mask[j];
    }
  });
  const views = dataset.records.map((r) => (r.metadata?.projection ?? r.metadata?.view ?? '').trim().toUpperCase());
  return {
    description,
    sources: dataset.records.map((r) => fileSource(r.imagePath)),
    targets,
    mask,
    clusters: dataset.records.map((r) => r.patientId),
    ...(views.some((v) => v !== '') ? { views } : {}),
  };
}

