/**
 * Fitting the input checks of a model, on real chest films only (every kind of invalid input stays held out):
 * - the PPCA Gaussian of the model's pooled features on reference images (the training split): the
 *   out-of-distribution score, computed in the model's safety subgraph;
 * - the PPCA Gaussian of the reference films' standardised 32 x 32 thumbnails (layout.ts): how chest-like the
 *   picture's layout is, whatever the features make of it;
 * - the orientation network (orientation.ts), trained to tell which of the 16 turns, mirrorings and inversions
 *   makes a reference film upright;
 * then every threshold on the scores of held-out real films (the validation split), read through the run-time
 * code so that the thresholds apply to exactly what runs later. A score that can be unsure warns at a lower
 * threshold and rejects only at a higher one.
 */
import { type SafetyCheckSpec, type SafetyInfo, readModelInfo, setSafety } from '../models/metadata.js';
import type { Model } from '../onnx/index.js';
import { type FeatureMatrix, fitGaussian } from './detector.js';
import { type ImageOutputs, type ImageSource, type RunOptions, runImages } from './features.js';
import { SAFETY_OUTPUTS, attachSafetyGraph, stripSafetyGraph } from './graph.js';
import { DOUBTS } from './check.js';
import { DEFAULT_IMAGE_THRESHOLDS } from './image-checks.js';
import { LAYOUT_COMPONENTS, encodeGaussian, layoutScore } from './layout.js';
import { THUMBNAIL, encodeOrientationNet, fitOrientation, standardise } from './orientation.js';

export interface SafetyFitData {
  /** Real frontal chest X-rays like the training data (the training split): the reference distribution. */
  reference: readonly ImageSource[];
  /** Real frontal chest X-rays of other patients (the validation split): the thresholds are set on them. */
  validation: readonly ImageSource[];
  /** Says what `validation` is in the model card, e.g. "validation split (208 images, 141 patients)". */
  validationDescription: string;
}

export interface SafetyFitOptions extends RunOptions {
  /** Principal directions of the feature Gaussian (default 64). */
  components?: number;
  /** Share of held-out real images the checks together may refuse (default 0.01); warnings may reach twice that. */
  falseFlagRate?: number;
  /** Reference films (at most, evenly spaced) the orientation network is trained on (default 2000). */
  orientationImages?: number;
  /** Passes of the orientation network over them (default 30). */
  orientationEpochs?: number;
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
/** How far beyond the largest score of any real film seen the feature and layout checks refuse alone (see fitSafety). */
const SURE_MARGIN = 2;
/** No blank check below this spread is needed on real radiographs: set at half the lowest spread seen, at most this. */
const MAX_BLANK_SPREAD = 0.05;

export async function fitSafety(model: Model, data: SafetyFitData, options: SafetyFitOptions = {}): Promise<SafetyFit> {
  const say = options.onStage ?? (() => {});
  const rate = options.falseFlagRate ?? 0.01;
  if (!(rate > 0 && rate < 0.25)) throw new Error(`the false-flag rate must be in (0, 0.25), got ${rate}`);
  if (data.reference.length < 20) throw new Error(`fitting the input checks needs at least 20 reference images, got ${data.reference.length}`);
  if (data.validation.length < 10) throw new Error(`setting the input-check thresholds needs at least 10 held-out images, got ${data.validation.length}`);
  const base = stripSafetyGraph(model);
  const run = { batchSize: options.batchSize, threads: options.threads };

  say(`input checks: features of ${data.reference.length} reference images`);
  const reference = options.referenceOutputs ?? (await runImages(base, data.reference, { ...run, onProgress: options.onProgress }));
  const gaussian = fitGaussian(reference.pooled, options.components ?? DEFAULT_COMPONENTS);
  const thumbs = reference.thumbnails;
  const layout = fitGaussian({ rows: thumbs.length, columns: THUMBNAIL * THUMBNAIL, data: concat(thumbs.map(standardise)) }, LAYOUT_COMPONENTS);
  const films = evenlySpaced(thumbs, options.orientationImages ?? 2000);
  const epochs = options.orientationEpochs ?? 30;
  say(`input checks: orientation network on ${films.length} reference films x 16 turns, mirrorings and inversions (${epochs} passes)`);
  const orientation = fitOrientation(films, { epochs, onEpoch: (epoch) => options.onProgress?.(epoch + 1, epochs) });

  const fitted = attachSafetyGraph(base, gaussian, []);
  const provisional: SafetyInfo = {
    outputs: { ...SAFETY_OUTPUTS },
    heads: [],
    detector: describeDetector(gaussian.channels, gaussian.components, reference.pooled.rows, readModelInfo(model).io.features),
    checks: [],
    source: data.validationDescription,
    orientation: encodeOrientationNet(orientation),
    layout: encodeGaussian(layout),
  };
  setSafety(fitted, provisional);
  say(`input checks: scores of ${data.validation.length} held-out images`);
  const validation = await runImages(fitted, data.validation, { ...run, onProgress: options.onProgress });
  const picture = validation.picture ?? [];
  const held = `${data.validation.length} held-out real images (${data.validationDescription})`;
  const pct = (q: number) => `${+(100 * q).toFixed(2)}th percentile`;
  const warnAt = (score: 'ood' | 'layout', values: ArrayLike<number>, what: string): SafetyCheckSpec => ({
    code: 'not-chest-xray',
    score,
    threshold: quantile(values, 1 - rate),
    direction: 'above',
    rule: `${pct(1 - rate)} of ${what} on ${held}`,
    severity: 'warning',
  });
  const turned = (code: 'rotated' | 'inverted' | 'mirrored', severity: 'warning' | 'reject'): SafetyCheckSpec => ({
    code,
    score: `orientation:${code}`,
    threshold: Math.max(0.5, quantile(picture.map((p) => p.orientation?.[code] ?? 0), 1 - rate)),
    direction: 'above',
    rule: `the orientation network's probability that the film is ${code}: the ${pct(1 - rate)} on ${held}, and at least 0.5`,
    severity,
  });
  const oodValues = validation.ood as Float32Array;
  const layoutValues = picture.map((p) => p.layout ?? 0);
  const seen = reference.statistics.length + validation.statistics.length;
  // Alone, neither the feature score nor the layout score is sure until far beyond every real film seen: films
  // framed by wide white collimation borders, common among PA films, reach about twice the layout distances of the
  // fitting data (a first fit refusing at the quantile turned away 9% of held-out PA films), and small or unusual
  // films reach beyond the feature score's quantiles. Two of their warnings together refuse (DOUBTS).
  const seenLayout = Math.max(...layoutValues, ...thumbs.map((t) => layoutScore(layout, standardise(t))));
  // The training films' feature scores are not computed (the Gaussian is fitted on them: they score about 1).
  const seenOod = Math.max(...oodValues);
  const sureBeyond = (score: 'ood' | 'layout', values: ArrayLike<number>, largest: number, what: string, among: string): SafetyCheckSpec => ({
    ...warnAt(score, values, what),
    threshold: Math.max(quantile(values, 1 - rate / 2), SURE_MARGIN * largest),
    rule: `${SURE_MARGIN} x the largest ${what} among ${among} (${largest.toFixed(3)}), and at least its ${pct(1 - rate / 2)} on ${held}`,
    severity: 'reject',
  });
  const checks: SafetyCheckSpec[] = [
    warnAt('ood', oodValues, "the model features' out-of-distribution score"),
    sureBeyond('ood', oodValues, seenOod, "model features' out-of-distribution score", 'the held-out real images'),
    warnAt('layout', layoutValues, "the thumbnail layout's distance"),
    sureBeyond('layout', layoutValues, seenLayout, 'thumbnail layout distance', `the ${seen} real films seen`),
    ...statisticWarnings(reference, validation),
    {
      code: 'not-chest-xray',
      score: DOUBTS,
      threshold: 1,
      direction: 'above',
      rule: `two or more of the not-chest-xray warnings (features, layout, contrast spread, smoothness) on one image: each alone fires on at most ${+(100 * rate).toFixed(2)}% of held-out real films, two different ones together on far fewer`,
      severity: 'reject',
    },
    turned('rotated', 'reject'),
    turned('inverted', 'reject'),
    // Dextrocardia and flipped films exist: a mirror image is worth a look, never a refusal.
    turned('mirrored', 'warning'),
    {
      code: 'not-chest-xray',
      score: 'colourfulness',
      threshold: DEFAULT_IMAGE_THRESHOLDS.maxColourfulness,
      direction: 'above',
      rule: DEFAULT_IMAGE_THRESHOLDS.rule.maxColourfulness,
      severity: 'reject',
    },
    blankCheck(reference, validation),
    smoothnessCheck(reference, validation),
    sizeCheck(reference, validation, readModelInfo(model).preprocessing),
  ];
  const safety = { ...provisional, checks };
  setSafety(fitted, safety);
  // The flags of the validation images were raised before the thresholds existed: raise them again.
  const scored = await runImages(fitted, data.validation, run);
  return { model: fitted, safety, validation: scored };
}

function describeDetector(channels: number, components: number, images: number, features: string): string {
  return (
    `squared Mahalanobis distance of the average-pooled "${features}" map (${channels} channels) to a Gaussian fitted on ${images} training images ` +
    `(probabilistic PCA: ${components} principal directions plus one shared variance for the rest), divided by ${channels}; training images score about 1. ` +
    `Beside it, the same distance for the image's standardised ${THUMBNAIL} x ${THUMBNAIL} thumbnail (its layout), and an orientation network that ` +
    `compares the thumbnail under its 16 turns, mirrorings and inversions`
  );
}

function concat(rows: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let offset = 0;
  for (const r of rows) {
    out.set(r, offset);
    offset += r.length;
  }
  return out;
}

/** At most `count` items, evenly spaced over the list (all of them when it is shorter). */
export function evenlySpaced<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return [...items];
  return Array.from({ length: count }, (_, i) => items[Math.floor((i * items.length) / count)]);
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

/** Warnings (doubts) below the lowest contrast spread and the lowest smoothness of any real film seen. */
function statisticWarnings(reference: ImageOutputs, validation: ImageOutputs): SafetyCheckSpec[] {
  const all = [...reference.statistics, ...validation.statistics];
  return (['spread', 'smoothness'] as const).map((score) => {
    const lowest = Math.min(...all.map((s) => s[score]));
    const what = score === 'spread' ? '1st-99th percentile intensity spread' : 'neighbour-pixel correlation';
    return { code: 'not-chest-xray', score, threshold: lowest, direction: 'below', rule: `the lowest ${what} among ${all.length} real images`, severity: 'warning' };
  });
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
