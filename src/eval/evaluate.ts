/**
 * A whole evaluation: per-class AUROC with DeLong and bootstrap intervals, average precision, operating points at
 * chosen thresholds, calibration, the mean AUROC, and the published numbers beside ours; one plain object that
 * the JSON, CSV and HTML writers (and the viewer) turn into files. Pure computation: runs in browsers too.
 */
import { bootstrapAurocs, type BootstrapInterval } from './bootstrap.js';
import { brierScore, eceOfCurve, reliabilityCurve, type ReliabilityBin } from './calibration.js';
import { delong, delongInterval, type IntervalScale } from './delong.js';
import { averagePrecisionOfCurve, precisionRecallCurve } from './pr.js';
import { comparePublished, type PublishedComparison } from './published.js';
import { aurocOfCurve, classifierCurve, rocCurve } from './roc.js';
import { chooseThreshold, describeThresholdRule, operatingPoint, type OperatingPoint, type ThresholdRule } from './thresholds.js';

/** Predictions and labels of N samples for C classes, row-major [N, C]. */
export interface EvaluationInput {
  labels: readonly string[];
  /** N * C probabilities in [0, 1]. */
  probabilities: ArrayLike<number>;
  /** N * C targets, 1 positive and 0 negative (any value where the mask is 0). */
  targets: ArrayLike<number>;
  /** N * C, 1 where the target counts (default: all); e.g. 0 for uncertain labels. */
  mask?: ArrayLike<number>;
  /** N sample names, used in messages. */
  ids?: readonly string[];
  /** N cluster keys (e.g. patient IDs) for `bootstrap.byCluster`. */
  clusters?: readonly (string | number)[];
}

export type ThresholdSource =
  /** Given per label (e.g. stored in the model); `source` says where they came from. */
  | { kind: 'fixed'; values: Readonly<Record<string, number>>; source: string }
  /** Chosen per class by `rule` on `validation` (or, without it, on the evaluated data itself: optimistic). */
  | { kind: 'rule'; rule: ThresholdRule; validation?: EvaluationInput; source?: string };

export interface EvaluateOptions {
  /** Confidence level of every interval (default 0.95). */
  level?: number;
  /** DeLong interval scale (default 'auc': AUROC +- z SE, clipped to [0, 1]). */
  delongScale?: IntervalScale;
  /** Bootstrap settings, or false for none (default 1000 resamples of samples, seed 0). */
  bootstrap?: false | { resamples?: number; seed?: number; stratified?: boolean; byCluster?: boolean };
  /** Default: Youden's J chosen on the evaluated data (flagged optimistic). */
  thresholds?: ThresholdSource;
  /** Equal-width bins of the reliability curves and ECE (default 10). */
  calibrationBins?: number;
  /** Points kept per plotted curve (default 300; the metrics use every point). */
  curvePoints?: number;
  onProgress?: (stage: 'bootstrap', done: number, total: number) => void;
}

export interface Interval {
  lower: number;
  upper: number;
}

export interface JsonOperatingPoint {
  threshold: number;
  truePositives: number;
  falsePositives: number;
  trueNegatives: number;
  falseNegatives: number;
  sensitivity: number | null;
  specificity: number | null;
  ppv: number | null;
  npv: number | null;
  f1: number | null;
  accuracy: number;
}

export interface ClassEvaluation {
  label: string;
  positives: number;
  negatives: number;
  /** Samples whose label for this class was masked out. */
  ignored: number;
  prevalence: number | null;
  /** Null when the class has no positives or no negatives; `note` says which. */
  auroc: number | null;
  note?: string;
  delong: (Interval & { standardError: number }) | null;
  bootstrap: (Interval & { standardError: number; used: number; skipped: number }) | null;
  averagePrecision: number | null;
  threshold: { value: number; source: string } | null;
  operatingPoint: JsonOperatingPoint | null;
  calibration: { ece: number; brier: number; bins: { lower: number; upper: number; count: number; meanPredicted: number | null; fractionPositive: number | null }[] };
  /** For plots: thinned to about `curvePoints` points (the metrics above use the full curves). */
  curves: { roc: { fpr: number[]; tpr: number[] }; pr: { recall: number[]; precision: number[] } } | null;
}

export interface EvaluationResult {
  samples: number;
  labels: string[];
  settings: {
    level: number;
    delong: { scale: IntervalScale; method: string };
    bootstrap: { resamples: number; seed: number; unit: 'sample' | 'cluster'; stratified: boolean; method: string } | null;
    thresholds: { source: string; rule?: string; optimistic: boolean };
    calibration: { bins: number; strategy: 'uniform'; binning: string };
  };
  classes: ClassEvaluation[];
  summary: {
    /** Mean AUROC over the classes where it is defined (listed in `meanOver`). */
    meanAuroc: number | null;
    meanAurocBootstrap: (Interval & { standardError: number }) | null;
    meanAveragePrecision: number | null;
    meanEce: number | null;
    meanOver: string[];
  };
  comparison: PublishedComparison | null;
  warnings: string[];
}

/** One class's entries: the samples where its label counts. */
interface Column {
  scores: Float64Array;
  labels: Uint8Array;
  samples: Int32Array;
  ignored: number;
}

export function evaluate(input: EvaluationInput, options: EvaluateOptions = {}): EvaluationResult {
  const { n, c } = checkInput(input, 'evaluation data');
  const level = options.level ?? 0.95;
  if (!(level > 0 && level < 1)) throw new RangeError(`confidence level must be between 0 and 1, got ${level}`);
  const scale = options.delongScale ?? 'auc';
  const bins = options.calibrationBins ?? 10;
  const curvePoints = options.curvePoints ?? 300;
  const warnings: string[] = [];
  const columns = Array.from({ length: c }, (_, j) => columnOf(input, n, c, j));

  const thresholdSpec = options.thresholds ?? { kind: 'rule', rule: { kind: 'youden' } };
  const thresholds = resolveThresholds(thresholdSpec, input, columns, warnings);

  const classes: ClassEvaluation[] = columns.map((column, j) => {
    const label = input.labels[j];
    const positives = column.labels.reduce((sum, v) => sum + v, 0);
    const negatives = column.labels.length - positives;
    const calibration = calibrationOf(column, bins);
    const base = {
      label,
      positives,
      negatives,
      ignored: column.ignored,
      prevalence: column.labels.length > 0 ? positives / column.labels.length : null,
    };
    const threshold = thresholds[j];
    const point = threshold && column.labels.length > 0 ? jsonPoint(operatingPoint(column.scores, column.labels, threshold.value)) : null;
    if (positives === 0 || negatives === 0) {
      const note = `AUROC undefined: ${column.labels.length === 0 ? 'no labelled samples' : positives === 0 ? 'no positive samples' : 'no negative samples'}`;
      warnings.push(`${label}: ${note}`);
      return { ...base, auroc: null, note, delong: null, bootstrap: null, averagePrecision: null, threshold, operatingPoint: point, calibration, curves: null };
    }
    const curve = classifierCurve(column.scores, column.labels);
    const estimate = delong(column.scores, column.labels);
    const interval = delongInterval(estimate, { level, scale });
    return {
      ...base,
      auroc: aurocOfCurve(curve),
      delong: Number.isFinite(estimate.variance) ? { ...interval, standardError: estimate.standardError } : null,
      bootstrap: null,
      averagePrecision: averagePrecisionOfCurve(curve),
      threshold,
      operatingPoint: point,
      calibration,
      curves: plotCurves(column, curvePoints),
    };
  });

  let bootstrapSettings: EvaluationResult['settings']['bootstrap'] = null;
  let meanBootstrap: EvaluationResult['summary']['meanAurocBootstrap'] = null;
  if (options.bootstrap !== false) {
    const b = options.bootstrap ?? {};
    const resamples = b.resamples ?? 1000;
    const seed = b.seed ?? 0;
    const stratified = b.stratified ?? false;
    const byCluster = b.byCluster ?? false;
    if (byCluster && !input.clusters) throw new Error('a cluster bootstrap needs cluster keys (e.g. patient IDs) for the samples');
    const defined = classes.flatMap((k, j) => (k.auroc !== null ? [j] : []));
    const result = bootstrapAurocs(
      defined.map((j) => columns[j]),
      n,
      {
        resamples,
        seed,
        level,
        stratified,
        clusters: byCluster ? clusterNumbers(input.clusters!) : undefined,
        onProgress: options.onProgress && ((done, total) => options.onProgress!('bootstrap', done, total)),
      },
    );
    defined.forEach((j, k) => (classes[j].bootstrap = jsonInterval(result.classes[k])));
    meanBootstrap = result.mean && { lower: result.mean.lower, upper: result.mean.upper, standardError: result.mean.standardError };
    bootstrapSettings = {
      resamples,
      seed,
      unit: byCluster ? 'cluster' : 'sample',
      stratified,
      method:
        `percentile interval over ${resamples} resamples (NumPy's linear percentile); ` +
        (stratified
          ? "each class's positives and negatives resampled separately (no interval for the mean)"
          : `${byCluster ? 'whole clusters (patients)' : 'samples'} drawn with replacement, the same draw for every class; resamples that lack a class are skipped and counted`),
    };
  }

  const meanOf = (values: (number | null)[]) => {
    const kept = values.filter((v): v is number => v !== null && Number.isFinite(v));
    return kept.length > 0 ? kept.reduce((a, b) => a + b, 0) / kept.length : null;
  };
  const definedClasses = classes.filter((k) => k.auroc !== null);
  const source = thresholdSourceOf(thresholdSpec);
  if (source.optimistic) warnings.push('thresholds were chosen on the evaluated data itself, so their operating points are optimistic; choose them on validation data');
  return {
    samples: n,
    labels: [...input.labels],
    settings: {
      level,
      delong: {
        scale,
        method:
          'DeLong variance computed as Sun & Xu (2014); ' +
          (scale === 'auc' ? 'interval AUROC +- z SE, clipped to [0, 1]' : 'interval symmetric on the logit scale, mapped back'),
      },
      bootstrap: bootstrapSettings,
      thresholds: source,
      calibration: { bins, strategy: 'uniform', binning: 'equal-width bins (lower, upper], the first also holding 0, as scikit-learn calibration_curve' },
    },
    classes,
    summary: {
      meanAuroc: meanOf(definedClasses.map((k) => k.auroc)),
      meanAurocBootstrap: meanBootstrap,
      meanAveragePrecision: meanOf(definedClasses.map((k) => k.averagePrecision)),
      meanEce: meanOf(classes.map((k) => (k.positives + k.negatives > 0 ? k.calibration.ece : null))),
      meanOver: definedClasses.map((k) => k.label),
    },
    comparison: comparePublished(input.labels, classes.map((k) => k.auroc)),
    warnings,
  };
}

function checkInput(input: EvaluationInput, what: string): { n: number; c: number } {
  const c = input.labels.length;
  if (c === 0) throw new Error(`${what}: no labels`);
  if (new Set(input.labels).size !== c) throw new Error(`${what}: a label appears twice in ${JSON.stringify(input.labels)}`);
  const total = input.probabilities.length;
  if (total % c !== 0) throw new Error(`${what}: ${total} probabilities is not a whole number of rows of ${c} labels`);
  const n = total / c;
  if (n === 0) throw new Error(`${what}: no samples`);
  if (input.targets.length !== total) throw new Error(`${what}: ${input.targets.length} targets for ${total} probabilities`);
  if (input.mask && input.mask.length !== total) throw new Error(`${what}: ${input.mask.length} mask entries for ${total} probabilities`);
  if (input.ids && input.ids.length !== n) throw new Error(`${what}: ${input.ids.length} sample names for ${n} samples`);
  if (input.clusters && input.clusters.length !== n) throw new Error(`${what}: ${input.clusters.length} cluster keys for ${n} samples`);
  const name = (i: number) => (input.ids ? `"${input.ids[i]}"` : `sample ${i}`);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < c; j++) {
      const k = i * c + j;
      const p = input.probabilities[k];
      if (!(p >= 0 && p <= 1)) throw new Error(`${what}: ${name(i)}, ${input.labels[j]}: probability ${p} is not in [0, 1]`);
      if (input.mask && input.mask[k] === 0) continue;
      if (input.targets[k] !== 0 && input.targets[k] !== 1) throw new Error(`${what}: ${name(i)}, ${input.labels[j]}: target ${input.targets[k]} is not 0 or 1`);
    }
  }
  return { n, c };
}

function columnOf(input: EvaluationInput, n: number, c: number, j: number): Column {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) if (!input.mask || input.mask[i * c + j] !== 0) samples.push(i);
  return {
    scores: Float64Array.from(samples, (i) => input.probabilities[i * c + j]),
    labels: Uint8Array.from(samples, (i) => input.targets[i * c + j]),
    samples: Int32Array.from(samples),
    ignored: n - samples.length,
  };
}

function clusterNumbers(keys: readonly (string | number)[]): Int32Array {
  const index = new Map<string | number, number>();
  return Int32Array.from(keys, (key) => {
    let id = index.get(key);
    if (id === undefined) index.set(key, (id = index.size));
    return id;
  });
}

function thresholdSourceOf(spec: ThresholdSource): EvaluationResult['settings']['thresholds'] {
  if (spec.kind === 'fixed') return { source: spec.source, optimistic: false };
  const rule = describeThresholdRule(spec.rule);
  if (spec.validation) return { source: spec.source ?? 'chosen on the validation data', rule, optimistic: false };
  return { source: 'chosen on the evaluated data itself', rule, optimistic: true };
}

function resolveThresholds(spec: ThresholdSource, input: EvaluationInput, columns: Column[], warnings: string[]): ({ value: number; source: string } | null)[] {
  const { source } = thresholdSourceOf(spec);
  if (spec.kind === 'fixed') {
    return input.labels.map((label) => {
      const value = spec.values[label];
      if (value === undefined) {
        warnings.push(`${label}: no threshold in ${spec.source}`);
        return null;
      }
      if (!Number.isFinite(value)) throw new Error(`threshold for ${label} in ${spec.source} is ${value}, not a number`);
      return { value, source };
    });
  }
  let ruleColumns = columns;
  let where = 'the evaluated data';
  if (spec.validation) {
    const validation = spec.validation;
    const { n, c } = checkInput(validation, 'validation data');
    const missing = input.labels.filter((l) => !validation.labels.includes(l));
    if (missing.length > 0) throw new Error(`validation data has no predictions for ${missing.join(', ')}`);
    ruleColumns = input.labels.map((l) => columnOf(validation, n, c, validation.labels.indexOf(l)));
    where = 'the validation data';
  }
  return input.labels.map((label, j) => {
    const column = ruleColumns[j];
    const positives = column.labels.reduce((s, v) => s + v, 0);
    if (positives === 0 || positives === column.labels.length) {
      warnings.push(`${label}: no threshold, ${where} has ${positives === 0 ? 'no positives' : 'no negatives'}`);
      return null;
    }
    try {
      return { value: chooseThreshold(column.scores, column.labels, spec.rule).threshold, source };
    } catch (error) {
      warnings.push(`${label}: no threshold: ${(error as Error).message}`);
      return null;
    }
  });
}

function calibrationOf(column: Column, bins: number): ClassEvaluation['calibration'] {
  if (column.labels.length === 0) return { ece: NaN, brier: NaN, bins: [] };
  const curve = reliabilityCurve(column.scores, column.labels, { bins });
  return {
    ece: eceOfCurve(curve, column.labels.length),
    brier: brierScore(column.scores, column.labels),
    bins: curve.bins.map((b: ReliabilityBin) => ({ ...b, meanPredicted: finiteOrNull(b.meanPredicted), fractionPositive: finiteOrNull(b.fractionPositive) })),
  };
}

function plotCurves(column: Column, points: number): ClassEvaluation['curves'] {
  const roc = rocCurve(column.scores, column.labels);
  const pr = precisionRecallCurve(column.scores, column.labels);
  const [fpr, tpr] = thin(roc.fpr, roc.tpr, points);
  const [recall, precision] = thin(pr.recall, pr.precision, points);
  return { roc: { fpr, tpr }, pr: { recall, precision } };
}

/** Keeps the first and last points and each point at least 1/points away (in either coordinate) from the last kept. */
function thin(x: Float64Array, y: Float64Array, points: number): [number[], number[]] {
  const step = 1 / points;
  const xs = [x[0]];
  const ys = [y[0]];
  for (let i = 1; i < x.length; i++) {
    const last = i === x.length - 1;
    if (last || Math.abs(x[i] - xs[xs.length - 1]) >= step || Math.abs(y[i] - ys[ys.length - 1]) >= step) {
      xs.push(x[i]);
      ys.push(y[i]);
    }
  }
  return [xs, ys];
}

function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

function jsonPoint(p: OperatingPoint): JsonOperatingPoint {
  return {
    ...p,
    sensitivity: finiteOrNull(p.sensitivity),
    specificity: finiteOrNull(p.specificity),
    ppv: finiteOrNull(p.ppv),
    npv: finiteOrNull(p.npv),
    f1: finiteOrNull(p.f1),
  };
}

function jsonInterval(b: BootstrapInterval | null): ClassEvaluation['bootstrap'] {
  return b && { lower: b.lower, upper: b.upper, standardError: b.standardError, used: b.used, skipped: b.skipped };
}
