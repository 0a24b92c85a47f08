/**
 * Fitting the input checks of a model: the PPCA Gaussian of its pooled features on reference images (the training
 * split), the rotation and inversion heads on those images and turned/inverted copies of them, the safety subgraph,
 * and every threshold on the scores of held-out real images (the validation split), read from the fitted graph
 * itself so that the thresholds apply to exactly what runs later.
 */
import { type SafetyCheckSpec, type SafetyInfo, readModelInfo, setSafety } from '../models/metadata.js';
import type { Model } from '../onnx/index.js';
import type { Corruption } from './corrupt.js';
import { type FeatureMatrix, type GaussianModel, type LogisticModel, fitGaussian, fitLogistic, project } from './detector.js';
import { type ImageOutputs, type ImageSource, type RunOptions, corrupted, runImages } from './features.js';
import { SAFETY_OUTPUTS, attachSafetyGraph, stripSafetyGraph } from './graph.js';

export const HEADS = ['rotated', 'inverted'] as const;
const ROTATIONS: Corruption[] = ['rotate90', 'rotate180', 'rotate270'];

export interface SafetyFitData {
  /** Real frontal chest X-rays like the training data (the training split): the reference distribution. */
  reference: readonly ImageSource[];
  /** Real frontal chest X-rays of other patients (the validation split): the thresholds are set on them. */
  validation: readonly ImageSource[];
  /** Says what `validation` is in the model card, e.g. "validation split (208 images, 141 patients)". */
  validationDescription: string;
}

export interface SafetyFitOptions extends RunOptions {
  /** Principal directions of the Gaussian (default 64). */
  components?: number;
  /** Share of held-out real images each model check may flag (default 0.01: thresholds at the 99th percentile). */
  falseFlagRate?: number;
  /** Reference images (at most) whose turned and inverted copies train the heads (default 600). */
  headImages?: number;
  /** L2 penalty of the heads (default 1, on whitened coordinates). */
  l2?: number;
  /** Outputs of the model on `reference`, when the caller already has them. */
  referenceOutputs?: ImageOutputs;
  onStage?: (message: string) => void;
}

export interface SafetyFit {
  model: Model;
  safety: SafetyInfo;
  /** The fitted model's outputs on the validation images (logits included). */
  validation: ImageOutputs;
}

export const DEFAULT_COMPONENTS = 64;
/** No blank check below this spread is needed on real radiographs: set at half the lowest spread seen, at most this. */
const MAX_BLANK_SPREAD = 0.05;

export async function fitSafety(model: Model, data: SafetyFitData, options: SafetyFitOptions = {}): Promise<SafetyFit> {
  const say = options.onStage ?? (() => {});
  const rate = options.falseFlagRate ?? 0.01;
  if (!(rate > 0 && rate < 0.5)) throw new Error(`the false-flag rate must be in (0, 0.5), got ${rate}`);
  if (data.reference.length < 10) throw new Error(`fitting the input checks needs at least 10 reference images, got ${data.reference.length}`);
  if (data.validation.length < 10) throw new Error(`setting the input-check thresholds needs at least 10 held-out images, got ${data.validation.length}`);
  const base = stripSafetyGraph(model);
  const run = { batchSize: options.batchSize, threads: options.threads };

  say(`input checks: features of ${data.reference.length} reference images`);
  const reference = options.referenceOutputs ?? (await runImages(base, data.reference, { ...run, onProgress: options.onProgress }));
  const gaussian = fitGaussian(reference.pooled, options.components ?? DEFAULT_COMPONENTS);
  const headCount = Math.min(data.reference.length, options.headImages ?? 600);
  const headSources = data.reference.slice(0, headCount);
  say(`input checks: features of ${headCount} reference images turned and ${headCount} inverted`);
  const turned = await runImages(base, headSources.map((s, i) => corrupted(s, ROTATIONS[i % 3], i)), { ...run, onProgress: options.onProgress });
  const inverted = await runImages(base, headSources.map((s, i) => corrupted(s, 'invert', i)), { ...run, onProgress: options.onProgress });
  const upright = { rows: headCount, columns: reference.pooled.columns, data: reference.pooled.data.subarray(0, headCount * reference.pooled.columns) };
  const l2 = options.l2 ?? 1;
  const heads: LogisticModel[] = [fitHead(gaussian, upright, turned.pooled, l2), fitHead(gaussian, upright, inverted.pooled, l2)];

  const fitted = attachSafetyGraph(base, gaussian, heads);
  const provisional: SafetyInfo = {
    outputs: { ...SAFETY_OUTPUTS },
    heads: [...HEADS],
    detector: describeDetector(gaussian, reference.pooled.rows, readModelInfo(model).io.features),
    checks: [],
    source: data.validationDescription,
  };
  setSafety(fitted, provisional);
  say(`input checks: scores of ${data.validation.length} held-out images`);
  const validation = await runImages(fitted, data.validation, { ...run, onProgress: options.onProgress });
  const percentile = `${+(100 * (1 - rate)).toFixed(2)}th percentile`;
  const held = `${data.validation.length} held-out real images (${data.validationDescription})`;
  const checks: SafetyCheckSpec[] = [
    {
      code: 'not-chest-xray',
      score: 'ood',
      threshold: quantile(validation.ood as Float32Array, 1 - rate),
      direction: 'above',
      rule: `${percentile} of the out-of-distribution score on ${held}`,
      severity: 'reject',
    },
    ...HEADS.map((code, j): SafetyCheckSpec => ({
      code,
      score: `head:${j}`,
      threshold: Math.max(0.5, quantile(column(validation.heads as FeatureMatrix, j), 1 - rate)),
      direction: 'above',
      rule: `${percentile} of the ${code} head's probability on ${held}, and at least 0.5`,
      severity: 'reject',
    })),
    blankCheck(reference, validation),
    smoothnessCheck(reference, validation),
    sizeCheck(reference, validation, readModelInfo(model).preprocessing),
  ];
  const safety = { ...provisional, checks };
  setSafety(fitted, safety);
  return { model: fitted, safety, validation };
}

function fitHead(gaussian: GaussianModel, upright: FeatureMatrix, changed: FeatureMatrix, l2: number): LogisticModel {
  const k = gaussian.components;
  const n = upright.rows + changed.rows;
  const x = new Float32Array(n * k);
  const y = new Uint8Array(n);
  const add = (m: FeatureMatrix, offset: number, label: number) => {
    for (let i = 0; i < m.rows; i++) {
      x.set(project(gaussian, m.data.subarray(i * m.columns, (i + 1) * m.columns)).whitened, (offset + i) * k);
      y[offset + i] = label;
    }
  };
  add(upright, 0, 0);
  add(changed, upright.rows, 1);
  return fitLogistic({ rows: n, columns: k, data: x }, y, l2);
}

function describeDetector(g: GaussianModel, images: number, features: string): string {
  return (
    `squared Mahalanobis distance of the average-pooled "${features}" map (${g.channels} channels) to a Gaussian fitted on ${images} training images ` +
    `(probabilistic PCA: ${g.components} principal directions plus one shared variance for the rest), divided by ${g.channels}; training images score about 1`
  );
}

/** Blank: below half the lowest spread among the real images seen, and never above 0.05. */
function blankCheck(reference: ImageOutputs, validation: ImageOutputs): SafetyCheckSpec {
  const lowest = Math.min(...[...reference.statistics, ...validation.statistics].map((s) => s.spread));
  return {
    code: 'blank',
    score: 'spread',
    threshold: Math.min(MAX_BLANK_SPREAD, lowest / 2),
    direction: 'below',
    rule: `half the lowest 1st-99th percentile intensity spread among ${reference.statistics.length + validation.statistics.length} real images (${lowest.toFixed(3)}), at most ${MAX_BLANK_SPREAD}`,
    severity: 'reject',
  };
}

/** Noise-like: neighbour correlation below half the lowest among the real images seen, and never above 0.5. */
function smoothnessCheck(reference: ImageOutputs, validation: ImageOutputs): SafetyCheckSpec {
  const lowest = Math.min(...[...reference.statistics, ...validation.statistics].map((s) => s.smoothness));
  return {
    code: 'not-chest-xray',
    score: 'smoothness',
    threshold: Math.min(0.5, lowest / 2),
    direction: 'below',
    rule: `half the lowest neighbour-pixel correlation among ${reference.statistics.length + validation.statistics.length} real images (${lowest.toFixed(3)}), at most 0.5`,
    severity: 'reject',
  };
}

/** Too small: below the smallest real image seen and below half the model's input side. */
function sizeCheck(reference: ImageOutputs, validation: ImageOutputs, spec: { width: number; height: number }): SafetyCheckSpec {
  const smallest = Math.min(...[...reference.statistics, ...validation.statistics].map((s) => s.shorterSide));
  const half = Math.floor(Math.min(spec.width, spec.height) / 2);
  return {
    code: 'too-small',
    score: 'shorterSide',
    threshold: Math.min(smallest, half),
    direction: 'below',
    rule: `the smaller of the shortest side among the real images seen (${smallest} px) and half the model's input (${half} px)`,
    severity: 'reject',
  };
}

export function column(m: FeatureMatrix, j: number): Float64Array {
  return Float64Array.from({ length: m.rows }, (_, i) => m.data[i * m.columns + j]);
}

/** NumPy's default (linear) quantile. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) throw new Error('quantile of no values');
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
}
