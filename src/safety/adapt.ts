/**
 * Adapting a calibrated model to a new site's prevalence from unlabelled images (`cxr calibrate --unlabelled`):
 * the model runs once over the images, those the input checks reject (or that cannot be read) are left out, EM
 * estimates each calibrated finding's local prevalence with a bootstrap interval (prior-shift.ts), and the logit
 * shift is folded into the stored calibration and thresholds, with the record under `cxr.adaptation`.
 */
import type { DecodedImage } from '../imaging/image.js';
import { type Adaptation, type Calibration, readModelInfo, setAdaptation, setCalibration, setThresholds } from '../models/metadata.js';
import type { Model } from '../onnx/index.js';
import { calibratedProbabilities } from '../outputs/calibration.js';
import { type ImageSource, runImages } from './features.js';
import { verdictOf } from './flags.js';
import { type PrevalenceEstimate, type PrevalenceOptions, adaptableLabels, adaptationRecord, applyPriorShift, estimatePrevalences } from './prior-shift.js';

/** Fewest usable images an adaptation is made from by default: fewer give intervals too wide to act on. */
export const MIN_ADAPTATION_IMAGES = 20;

export interface AdaptOptions extends PrevalenceOptions {
  /** The images in words, for the record (e.g. "312 images in site-b/"). */
  description: string;
  /** Source prevalences when the model's calibration stores none (e.g. from the data it was calibrated on). */
  sourcePriors?: Record<string, number>;
  /** Where `sourcePriors` came from, in words. */
  sourcePriorDescription?: string;
  /** Default MIN_ADAPTATION_IMAGES. */
  minImages?: number;
  batchSize?: number;
  threads?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface AdaptResult {
  /** A copy of the model with the shifted calibration and thresholds and the adaptation record. */
  model: Model;
  adaptation: Adaptation;
  estimates: PrevalenceEstimate[];
  /** Ids of the images the input checks rejected, and of those that could not be read. */
  rejected: string[];
  unreadable: { id: string; error: string }[];
  /** Whether the model had input checks to apply (a model without its safety subgraph checks nothing here). */
  checked: boolean;
}

/** The source prevalences a model's calibration stores, or null where it stores none. */
export function storedPrevalence(calibration: Calibration | undefined): Record<string, number> | null {
  return calibration?.prevalence && Object.keys(calibration.prevalence).length > 0 ? calibration.prevalence : null;
}

export async function adaptToPrevalence(model: Model, sources: readonly ImageSource[], options: AdaptOptions): Promise<AdaptResult> {
  const info = readModelInfo(model);
  if (!info.calibration || Object.keys(info.calibration.values).length === 0) {
    throw new Error('the model has no calibration: a prior shift needs calibrated probabilities (calibrate it on labelled data first: cxr calibrate --data ...)');
  }
  const stored = storedPrevalence(info.calibration);
  const sourcePriors = stored ?? options.sourcePriors;
  if (!sourcePriors) {
    throw new Error("the model's calibration does not store the prevalence it was fitted at (models calibrated before it was stored): give the labelled data it was calibrated on (--reference, or --config with its recipe)");
  }
  const minImages = options.minImages ?? MIN_ADAPTATION_IMAGES;
  if (sources.length === 0) throw new Error(`${options.description}: no images`);
  const unreadable: { id: string; error: string }[] = [];
  const guarded = sources.map(
    (s): ImageSource => ({
      id: s.id,
      load: () =>
        s.load().catch((error: Error) => {
          unreadable.push({ id: s.id, error: error.message });
          return placeholder(s.id);
        }),
    }),
  );
  const outputs = await runImages(model, guarded, { batchSize: options.batchSize, threads: options.threads, onProgress: options.onProgress });
  const bad = new Set(unreadable.map((u) => u.id));
  const rejected: string[] = [];
  const kept: number[] = [];
  outputs.ids.forEach((id, i) => {
    if (bad.has(id)) return;
    if (outputs.flags && verdictOf(outputs.flags[i], false) === 'rejected') rejected.push(id);
    else kept.push(i);
  });
  if (kept.length < minImages) {
    throw new Error(
      `${options.description}: only ${kept.length} usable images (${rejected.length} rejected by the input checks, ${unreadable.length} unreadable); a prevalence estimate needs at least ${minImages}`,
    );
  }
  const c = info.labels.length;
  const logits = new Float64Array(kept.length * c);
  kept.forEach((i, k) => {
    for (let j = 0; j < c; j++) logits[k * c + j] = outputs.logits.data[i * c + j];
  });
  const { labels: adaptable, skipped } = adaptableLabels(info.labels, info.calibration, sourcePriors, logits);
  const probabilities = calibratedProbabilities(info.calibration, info.labels, logits);
  const estimates = estimatePrevalences(
    info.labels,
    probabilities,
    Object.fromEntries(adaptable.map((l) => [l, sourcePriors[l]])),
    options,
  );
  // An estimate on the boundary is no prevalence: the finding is left as it was, and the record says why.
  const applied = estimates.filter((e) => !e.boundary);
  for (const e of estimates) {
    if (e.boundary) skipped[e.label] = `the likelihood is highest at a prevalence of ${e.boundary === 'zero' ? 0 : 1} (EM has no interior fixed point): its probabilities here do not separate enough to estimate the local prevalence`;
  }
  const calibrationBefore: Calibration = stored ? info.calibration : { ...info.calibration, prevalence: { ...sourcePriors } };
  const shifted = applyPriorShift(calibrationBefore, info.thresholds, applied, `EM on ${kept.length} unlabelled images: ${options.description}`);
  const adaptation = adaptationRecord(applied, info.thresholds, shifted.thresholds, {
    data: options.description,
    images: kept.length,
    rejected: rejected.length,
    sourcePrior: stored ? `the calibration's stored prevalence (${info.calibration.source})` : (options.sourcePriorDescription ?? 'given by the caller'),
    interval: { level: options.level ?? 0.95, resamples: options.resamples ?? 1000, seed: options.seed ?? 0 },
    ...(Object.keys(skipped).length ? { skipped } : {}),
  });
  const adapted: Model = { ...model, metadata: { ...model.metadata } };
  setCalibration(adapted, shifted.calibration);
  if (shifted.thresholds) setThresholds(adapted, shifted.thresholds);
  setAdaptation(adapted, adaptation);
  return { model: adapted, adaptation, estimates, rejected, unreadable, checked: outputs.flags !== undefined };
}

/** Stands in for a file that could not be read, so one bad file does not stop the run; it is left out by id. */
function placeholder(id: string): DecodedImage {
  return { width: 64, height: 64, pixels: new Uint8Array(64 * 64), maxValue: 255, format: 'png', source: id, metadata: {}, notes: ['unreadable'] };
}
