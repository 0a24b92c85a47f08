/**
 * What makes an ONNX file a cxr-lens model: its description in metadata_props. Label names, the pixel contract,
 * the names of its inputs and outputs and its block structure travel inside the file, so any consumer (CLI,
 * server, browser) can use it correctly without side files.
 */
import type { Model } from '../onnx/index.js';
import { type PreprocessingSpec, validatePreprocessingSpec } from '../imaging/spec.js';

export const MODEL_FORMAT = 'cxr-lens-model/1';

export interface ModelIO {
  /** The image tensor, float32 [batch, channels, height, width], already preprocessed. */
  input: string;
  /** Per-finding logits [batch, labels]; probabilities are their sigmoid (multi-label, never a softmax). */
  logits: string;
  /** The last convolutional feature map [batch, channels, h, w], the default layer for Grad-CAM. */
  features: string;
  /** Patient metadata [batch, 9] (see patient-metadata.ts), when the model takes it. */
  metadata?: string;
}

export interface ModelInfo {
  architecture: string;
  labels: string[];
  preprocessing: PreprocessingSpec;
  io: ModelIO;
  /** Parameter-name prefixes of the network's stages, stem first and classifier head last (for freezing). */
  blocks: string[];
  /** Where the weights came from, in words (e.g. "random init, seed 0", "imported from model.pth"). */
  weights: string;
  /** Per-label operating points: the probability from which a finding is called positive, and how they were chosen. */
  thresholds?: Thresholds;
  /** Per-label recalibration of the logits; without it probabilities are the plain sigmoid. */
  calibration?: Calibration;
  /** The input-validity checks' graph outputs and thresholds; without it only image and DICOM-tag checks run. */
  safety?: SafetyInfo;
}

export interface Thresholds {
  /** The rule in words, e.g. "Youden's J (max sensitivity + specificity - 1)". */
  rule: string;
  /** The data they were chosen on, e.g. "validation split: 208 images, 141 patients". */
  source: string;
  /** Label -> probability threshold; a label without one has no validated operating point (and no decision). */
  values: Record<string, number>;
  /** Label -> [lower, upper] bootstrap confidence interval of its threshold (how far the rule's choice moves when the
   * validation images are resampled). Absent in models calibrated before intervals were stored. */
  intervals?: Record<string, [number, number]>;
  /** How the intervals were computed, e.g. "95% percentile bootstrap, 1000 resamples of the validation patients, seed 0". */
  intervalMethod?: string;
  /** Labels given no threshold on purpose, with the reason (e.g. too few validation positives for a stable threshold). */
  withheld?: Record<string, string>;
}

/** Per label, probability = sigmoid(a * logit + b); temperature scaling is a = 1 / T, b = 0. */
export interface Calibration {
  method: 'platt' | 'temperature';
  /** The data it was fitted on, e.g. "validation split (208 images, 141 patients)". */
  source: string;
  /** Label -> coefficients; a label without an entry keeps sigmoid(logit) (the reason is in `skipped`). */
  values: Record<string, { a: number; b: number }>;
  /** Labels left uncalibrated, with the reason (e.g. no positives in the fitting data). */
  skipped?: Record<string, string>;
  /** Labels whose fit was constrained, and how (e.g. a slope held at its floor). */
  notes?: Record<string, string>;
  /** Expected calibration error (mean over labels, 10 equal-width bins) before and after, where it was measured. */
  ece?: { data: string; before: number; after: number }[];
  /**
   * Label -> the prevalence the calibrated probabilities reflect: the share of positives among the fitting data's
   * labelled images, or after a prior shift (`cxr calibrate --unlabelled`) the estimated local prevalence. Absent in
   * models calibrated before it was stored.
   */
  prevalence?: Record<string, number>;
}

/** The checks that have a threshold stored in the model. */
export const THRESHOLDED_CHECKS = ['not-chest-xray', 'rotated', 'inverted', 'mirrored', 'blank', 'too-small'] as const;
export type ThresholdedCheck = (typeof THRESHOLDED_CHECKS)[number];

export interface SafetyCheckSpec {
  code: ThresholdedCheck;
  /**
   * Where the score comes from: `ood` (the out-of-distribution output), `head:<i>` (column i of the heads output),
   * `spread` (1st-99th percentile intensity range), `smoothness` (neighbour correlation), `shorterSide` (pixels),
   * `colourfulness` (mean chroma), `layout` (the thumbnail's distance to real films) or `orientation:<rotated|
   * inverted|mirrored>` (the orientation network), or `doubts` (how many different scores raised a not-chest-xray
   * warning; safety/check.ts). A model has at most one check per score and severity: a score
   * may warn at one threshold and reject at a higher one.
   */
  score: string;
  threshold: number;
  /** Flagged when the score is above (or below) the threshold. */
  direction: 'above' | 'below';
  /** How the threshold was chosen, e.g. "99th percentile of 208 held-out real images". */
  rule: string;
  severity: 'warning' | 'reject';
}

export interface SafetyMeasurement {
  /** The kind of input, e.g. "natural photographs", "NIH frontal images rotated 90 degrees". */
  kind: string;
  images: number;
  /** Per check (by its score, e.g. "ood"), the AUROC separating real held-out frontal images from this kind (none for the held-out images themselves). */
  aurocs: Record<string, number>;
  /** Share of this kind rejected (at least one reject flag) at the stored thresholds. */
  rejected: number;
  /** Share accepted with a warning (findings shown, marked), where measured. */
  warned?: number;
}

export interface SafetyInfo {
  /** Graph outputs: the out-of-distribution score [batch] and the heads' probabilities [batch, heads]. */
  outputs: { ood: string; heads: string };
  /** Codes of the heads, in column order (e.g. rotated, inverted). */
  heads: string[];
  /** What the out-of-distribution score is, in words. */
  detector: string;
  checks: SafetyCheckSpec[];
  /** The data the thresholds were set on. */
  source: string;
  /** How well each check separated real held-out images from invalid ones, when measured. */
  measured?: SafetyMeasurement[];
  /** The orientation network (safety/orientation.ts), base64 float32 weights. */
  orientation?: { hidden: number; thumbnail: number; weights: string };
  /** The Gaussian of real films' standardised thumbnails (safety/layout.ts), base64 float32 arrays. */
  layout?: StoredGaussian;
}

/** A PPCA Gaussian as stored: mean [C], basis [C, k] row-major and variances [k] as base64 float32. */
export interface StoredGaussian {
  channels: number;
  components: number;
  mean: string;
  basis: string;
  variances: string;
  residualVariance: number;
}

/** Scores a check may read besides `head:<i>`. */
export const CHECK_SCORES = ['ood', 'spread', 'smoothness', 'shorterSide', 'colourfulness', 'layout', 'orientation:rotated', 'orientation:inverted', 'orientation:mirrored', 'doubts'] as const;

const KEY = {
  format: 'cxr.format',
  architecture: 'cxr.architecture',
  labels: 'cxr.labels',
  preprocessing: 'cxr.preprocessing',
  io: 'cxr.io',
  blocks: 'cxr.blocks',
  weights: 'cxr.weights',
  thresholds: 'cxr.thresholds',
  calibration: 'cxr.calibration',
  safety: 'cxr.safety',
} as const;

export function modelInfoToMetadata(info: ModelInfo): Record<string, string> {
  return {
    [KEY.format]: MODEL_FORMAT,
    [KEY.architecture]: info.architecture,
    [KEY.labels]: JSON.stringify(info.labels),
    [KEY.preprocessing]: JSON.stringify(info.preprocessing),
    [KEY.io]: JSON.stringify(info.io),
    [KEY.blocks]: JSON.stringify(info.blocks),
    [KEY.weights]: info.weights,
    ...(info.thresholds ? { [KEY.thresholds]: JSON.stringify(info.thresholds) } : {}),
    ...(info.calibration ? { [KEY.calibration]: JSON.stringify(info.calibration) } : {}),
    ...(info.safety ? { [KEY.safety]: JSON.stringify(info.safety) } : {}),
  };
}

/** Stores a calibration in the model (replacing any it had). */
export function setCalibration(model: Pick<Model, 'metadata'>, calibration: Calibration): void {
  model.metadata[KEY.calibration] = JSON.stringify(calibration);
}

/** Stores the safety description (the graph must have its outputs; see safety/graph.ts). */
export function setSafety(model: Pick<Model, 'metadata'>, safety: SafetyInfo | undefined): void {
  if (safety) model.metadata[KEY.safety] = JSON.stringify(safety);
  else delete model.metadata[KEY.safety];
}

/** Stores operating points in the model (replacing any it had). */
export function setThresholds(model: Pick<Model, 'metadata'>, thresholds: Thresholds): void {
  model.metadata[KEY.thresholds] = JSON.stringify(thresholds);
}

/** Records where a model's weights now come from (after import, training, ...). */
export function setWeightsDescription(model: Pick<Model, 'metadata'>, text: string): void {
  model.metadata[KEY.weights] = text;
}

/** Reads and validates a model's description; errors say which key is wrong and how to get a proper model. */
export function readModelInfo(model: Pick<Model, 'metadata'>, source = 'model'): ModelInfo {
  const meta = model.metadata;
  if (meta[KEY.format] === undefined) {
    throw new Error(`${source}: not a cxr-lens model (its metadata has no "${KEY.format}"); convert it with \`cxr import\``);
  }
  if (meta[KEY.format] !== MODEL_FORMAT) {
    throw new Error(`${source}: model format "${meta[KEY.format]}" is not supported by this version (expects "${MODEL_FORMAT}")`);
  }
  const json = (key: string): unknown => {
    const text = meta[key];
    if (text === undefined) throw new Error(`${source}: metadata "${key}" is missing`);
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${source}: metadata "${key}" is not valid JSON`);
    }
  };
  const labels = json(KEY.labels);
  if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => typeof l === 'string' && l.length > 0)) {
    throw new Error(`${source}: metadata "${KEY.labels}" must be a non-empty list of names`);
  }
  if (new Set(labels).size !== labels.length) throw new Error(`${source}: metadata "${KEY.labels}" repeats a label`);
  const io = json(KEY.io) as Record<string, unknown>;
  for (const k of ['input', 'logits', 'features'] as const) {
    if (typeof io?.[k] !== 'string') throw new Error(`${source}: metadata "${KEY.io}" must name the "${k}" tensor`);
  }
  if (io.metadata !== undefined && typeof io.metadata !== 'string') throw new Error(`${source}: metadata "${KEY.io}" names a non-text "metadata" tensor`);
  const blocks = json(KEY.blocks);
  if (!Array.isArray(blocks) || !blocks.every((b) => typeof b === 'string')) throw new Error(`${source}: metadata "${KEY.blocks}" must be a list of names`);
  return {
    architecture: meta[KEY.architecture] ?? 'unknown',
    labels: labels as string[],
    preprocessing: validatePreprocessingSpec(json(KEY.preprocessing), `${source}: metadata "${KEY.preprocessing}"`),
    io: io as unknown as ModelIO,
    blocks: blocks as string[],
    weights: meta[KEY.weights] ?? 'unknown',
    thresholds: meta[KEY.thresholds] === undefined ? undefined : validThresholds(json(KEY.thresholds), labels as string[], source),
    calibration: meta[KEY.calibration] === undefined ? undefined : validCalibration(json(KEY.calibration), labels as string[], source),
    safety: meta[KEY.safety] === undefined ? undefined : validSafety(json(KEY.safety), source),
  };
}

function validCalibration(value: unknown, labels: string[], source: string): Calibration {
  const c = value as Partial<Calibration>;
  const fail = (why: string): never => {
    throw new Error(`${source}: metadata "${KEY.calibration}" ${why}`);
  };
  if (typeof c !== 'object' || c === null || typeof c.source !== 'string' || typeof c.values !== 'object' || c.values === null) {
    fail('must have a method, a source and values');
  }
  if (c.method !== 'platt' && c.method !== 'temperature') fail(`has the method ${JSON.stringify(c.method)}; expected "platt" or "temperature"`);
  for (const [label, v] of Object.entries(c.values as Record<string, unknown>)) {
    if (!labels.includes(label)) fail(`names "${label}", which is not one of the model's labels`);
    const { a, b } = (v ?? {}) as { a?: unknown; b?: unknown };
    if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b) || a <= 0) {
      fail(`gives "${label}" ${JSON.stringify(v)}; expected { a, b } with a finite a > 0 and a finite b`);
    }
  }
  for (const key of ['skipped', 'notes'] as const) {
    const notes = c[key];
    if (notes !== undefined && (typeof notes !== 'object' || notes === null || !Object.values(notes).every((n) => typeof n === 'string'))) fail(`"${key}" must map labels to text`);
  }
  if (c.ece !== undefined && (!Array.isArray(c.ece) || !c.ece.every((e) => typeof e?.data === 'string' && typeof e.before === 'number' && typeof e.after === 'number'))) {
    fail('"ece" must be a list of { data, before, after }');
  }
  return c as Calibration;
}

function validSafety(value: unknown, source: string): SafetyInfo {
  const s = value as Partial<SafetyInfo>;
  const fail = (why: string): never => {
    throw new Error(`${source}: metadata "${KEY.safety}" ${why}`);
  };
  if (typeof s !== 'object' || s === null) fail('must be an object');
  const outputs = s.outputs as Partial<SafetyInfo['outputs']> | undefined;
  if (typeof outputs?.ood !== 'string' || typeof outputs.heads !== 'string') fail('must name its "ood" and "heads" outputs');
  if (!Array.isArray(s.heads) || !s.heads.every((h) => typeof h === 'string')) fail('must list its heads');
  if (typeof s.detector !== 'string' || typeof s.source !== 'string') fail('must describe its detector and source');
  if (!Array.isArray(s.checks)) fail('must list its checks');
  for (const [i, check] of (s.checks as Partial<SafetyCheckSpec>[]).entries()) {
    const where = `check ${i + 1}`;
    if (!(THRESHOLDED_CHECKS as readonly unknown[]).includes(check?.code)) fail(`${where} has the unknown code ${JSON.stringify(check?.code)}`);
    const head = /^head:(\d+)$/.exec(String(check.score));
    if (!((CHECK_SCORES as readonly string[]).includes(String(check.score)) || (head && Number(head[1]) < (s.heads as string[]).length))) {
      fail(`${where} (${check.code}) reads the unknown score ${JSON.stringify(check.score)}`);
    }
    if ((s.checks as SafetyCheckSpec[]).findIndex((c) => c.score === check.score && c.severity === check.severity) !== i) {
      fail(`${where} (${check.code}) reads the score "${check.score}" at the severity a check before it already has`);
    }
    if (String(check.score).startsWith('orientation:') && !s.orientation) fail(`${where} (${check.code}) reads the orientation network, which the metadata does not store`);
    if (check.score === 'layout' && !s.layout) fail(`${where} (${check.code}) reads the thumbnail Gaussian, which the metadata does not store`);
    if (typeof check.threshold !== 'number' || !Number.isFinite(check.threshold)) fail(`${where} (${check.code}) has no finite threshold`);
    if (check.direction !== 'above' && check.direction !== 'below') fail(`${where} (${check.code}) must have the direction "above" or "below"`);
    if (check.severity !== 'warning' && check.severity !== 'reject') fail(`${where} (${check.code}) must have the severity "warning" or "reject"`);
    if (typeof check.rule !== 'string') fail(`${where} (${check.code}) must say how its threshold was chosen`);
  }
  return s as SafetyInfo;
}

function validThresholds(value: unknown, labels: string[], source: string): Thresholds {
  const t = value as Partial<Thresholds>;
  const fail = (why: string): never => {
    throw new Error(`${source}: metadata "${KEY.thresholds}" ${why}`);
  };
  if (typeof t !== 'object' || t === null || typeof t.rule !== 'string' || typeof t.source !== 'string' || typeof t.values !== 'object' || t.values === null) {
    fail('must have a rule, a source and values');
  }
  for (const [label, v] of Object.entries(t.values as Record<string, unknown>)) {
    if (!labels.includes(label)) fail(`names "${label}", which is not one of the model's labels`);
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) fail(`gives "${label}" the threshold ${JSON.stringify(v)}, not a probability`);
  }
  // Fields added later are optional, so older models' thresholds still load.
  if (t.intervals !== undefined) {
    if (typeof t.intervals !== 'object' || t.intervals === null) fail('"intervals" must map labels to [lower, upper]');
    for (const [label, v] of Object.entries(t.intervals as Record<string, unknown>)) {
      if (!labels.includes(label)) fail(`"intervals" names "${label}", which is not one of the model's labels`);
      const ok = Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number' && x >= 0 && x <= 1) && v[0] <= v[1];
      if (!ok) fail(`"intervals" gives "${label}" ${JSON.stringify(v)}; expected [lower, upper] probabilities with lower <= upper`);
    }
  }
  if (t.intervalMethod !== undefined && typeof t.intervalMethod !== 'string') fail('"intervalMethod" must be text');
  if (t.withheld !== undefined) {
    if (typeof t.withheld !== 'object' || t.withheld === null) fail('"withheld" must map labels to reasons');
    for (const [label, why] of Object.entries(t.withheld as Record<string, unknown>)) {
      if (!labels.includes(label)) fail(`"withheld" names "${label}", which is not one of the model's labels`);
      if (typeof why !== 'string' || why === '') fail(`"withheld" must give "${label}" a reason`);
      if ((t.values as Record<string, number>)[label] !== undefined) fail(`gives "${label}" a threshold and also withholds it`);
    }
  }
  return t as Thresholds;
}

/** One finding's prior shift (see safety/prior-shift.ts). */
export interface AdaptedFinding {
  /** The prevalence the calibrated probabilities reflected before (the fitting data's). */
  sourcePrior: number;
  /** The EM estimate of the local prevalence. */
  prior: number;
  /** Bootstrap confidence interval of `prior` over the local images (null without resamples). */
  lower: number | null;
  upper: number | null;
  /** The logit shift logit(prior) - logit(sourcePrior), added to the calibration's intercept and to the threshold's logit. */
  delta: number;
  iterations: number;
  converged: boolean;
  thresholdBefore?: number;
  thresholdAfter?: number;
}

/** How a model was adapted to a site's prevalence without labels, stored under `cxr.adaptation`. */
export interface Adaptation {
  method: string;
  /** The unlabelled images, in words (e.g. "312 images in site-b/"). */
  data: string;
  /** Images the estimate used (those the input checks accepted). */
  images: number;
  /** Images the input checks rejected, left out. */
  rejected: number;
  /** Where the source prevalences came from, in words. */
  sourcePrior: string;
  /** The interval: level (e.g. 0.95), bootstrap resamples over images, seed. */
  interval: { level: number; resamples: number; seed: number };
  findings: Record<string, AdaptedFinding>;
  /** Findings left as they were, with the reason. */
  skipped?: Record<string, string>;
}

const ADAPTATION_KEY = 'cxr.adaptation';

/** Stores (or, with undefined, removes) the record of a prior-shift adaptation. */
export function setAdaptation(model: Pick<Model, 'metadata'>, adaptation: Adaptation | undefined): void {
  if (adaptation) model.metadata[ADAPTATION_KEY] = JSON.stringify(adaptation);
  else delete model.metadata[ADAPTATION_KEY];
}

/** The model's adaptation record, or undefined where it has none; a malformed record is an error naming the key. */
export function readAdaptation(model: Pick<Model, 'metadata'>, source = 'model'): Adaptation | undefined {
  const text = model.metadata[ADAPTATION_KEY];
  if (text === undefined) return undefined;
  const fail = (why: string): never => {
    throw new Error(`${source}: metadata "${ADAPTATION_KEY}" ${why}`);
  };
  let a: Partial<Adaptation>;
  try {
    a = JSON.parse(text) as Partial<Adaptation>;
  } catch {
    return fail('is not valid JSON');
  }
  if (typeof a !== 'object' || a === null) fail('must be an object');
  if (typeof a.method !== 'string' || typeof a.data !== 'string' || typeof a.sourcePrior !== 'string') fail('must describe its method, data and source prevalence');
  if (!Number.isInteger(a.images) || !Number.isInteger(a.rejected)) fail('must count its images and rejected images');
  if (typeof a.interval?.level !== 'number' || typeof a.interval.resamples !== 'number' || typeof a.interval.seed !== 'number') fail('must give its interval\'s level, resamples and seed');
  if (typeof a.findings !== 'object' || a.findings === null) fail('must map findings to their shift');
  for (const [label, f] of Object.entries(a.findings as Record<string, Partial<AdaptedFinding>>)) {
    const numbers = [f?.sourcePrior, f?.prior, f?.delta, f?.iterations];
    if (!numbers.every((v) => typeof v === 'number' && Number.isFinite(v)) || typeof f.converged !== 'boolean') fail(`gives "${label}" no finite sourcePrior, prior, delta and iterations`);
    if (![f.lower, f.upper].every((v) => v === null || typeof v === 'number')) fail(`gives "${label}" an interval that is not numbers or null`);
  }
  if (a.skipped !== undefined && (typeof a.skipped !== 'object' || a.skipped === null || !Object.values(a.skipped).every((v) => typeof v === 'string'))) fail('"skipped" must map findings to reasons');
  return a as Adaptation;
}
