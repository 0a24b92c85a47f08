/**
 * Per-label recalibration fitted on validation logits: Platt scaling (p = sigmoid(a z + b)) or temperature scaling
 * (p = sigmoid(z / T), stored as a = 1 / T, b = 0), with src/eval's fits. Both maps are increasing in the logit, so
 * they never change a finding's ranking (its AUROC). A map is fitted only where the validation data supports one:
 * at least `minPerClass` positive and negative images, and a slope that is positive and not negligible. Otherwise
 * the label stays uncalibrated (the plain sigmoid of its logit, no entry in `values`) and `skipped` says why, so
 * the model card and every prediction (Finding.calibrated) can say so. Holding a non-positive slope at a tiny floor
 * instead, as this once did, gave every image the same probability (the prevalence), which no output keeps the
 * order of. Pure: the browser applies the same calibration through findings.ts.
 */
import { fitPlatt, fitTemperature, sigmoid } from '../eval/calibration.js';
import type { Calibration } from '../models/metadata.js';

export type CalibrationMethod = Calibration['method'];

/**
 * Fewest positive (and negative) fitting images a calibration or a threshold is fitted on. Platt's two parameters
 * from fewer than 10 events of a class are mostly noise: the fitted slope of such a label moves by more than
 * itself between resamples (the events-per-parameter rule of thumb of logistic models asks for 10 or more).
 */
export const MIN_PER_CLASS = 10;

/**
 * Smallest fitted slope times the standard deviation of the fitting logits that counts as a map: below it one
 * standard deviation of the logit moves the calibrated log-odds by under 0.1, so nearly every image would get
 * about the prevalence (within about 10% of it), a near-constant probability that hides the ranking.
 */
export const MIN_SLOPE_SPREAD = 0.1;

/**
 * The floor older versions held a non-positive Platt slope at (the probability then was about the prevalence on
 * every image). New fits leave such a label uncalibrated instead; a stored slope at or below this marks an older
 * model's floor-held fit.
 */
export const MIN_SLOPE = 1e-6;

export interface FitCalibrationOptions {
  /** Fewest positive and negative images a label needs to be calibrated (default MIN_PER_CLASS = 10). */
  minPerClass?: number;
  /** Smallest slope x logit standard deviation kept (default MIN_SLOPE_SPREAD = 0.1). */
  minSlopeSpread?: number;
}

export interface LabelledLogits {
  labels: readonly string[];
  /** [images, labels] row-major raw logits. */
  logits: ArrayLike<number>;
  /** [images, labels] 0/1 truths. */
  targets: ArrayLike<number>;
  /** [images, labels] 1 where the truth counts. */
  mask: ArrayLike<number>;
}

/** One label's logits and truths over the images where it is labelled. */
export function labelColumn(data: LabelledLogits, j: number): { logits: Float64Array; truth: Uint8Array } {
  const c = data.labels.length;
  const n = data.logits.length / c;
  const kept: number[] = [];
  for (let i = 0; i < n; i++) if (data.mask[i * c + j] === 1) kept.push(i);
  return { logits: Float64Array.from(kept, (i) => data.logits[i * c + j]), truth: Uint8Array.from(kept, (i) => (data.targets[i * c + j] >= 0.5 ? 1 : 0)) };
}

export function fitCalibration(data: LabelledLogits, method: CalibrationMethod, source: string, options: FitCalibrationOptions = {}): Calibration {
  const c = data.labels.length;
  if (data.logits.length % c !== 0 || data.targets.length !== data.logits.length || data.mask.length !== data.logits.length) {
    throw new Error(`calibration: logits, targets and mask must all be [images, ${c}] (got ${data.logits.length}, ${data.targets.length}, ${data.mask.length} values)`);
  }
  const minPerClass = options.minPerClass ?? MIN_PER_CLASS;
  const minSpread = options.minSlopeSpread ?? MIN_SLOPE_SPREAD;
  const values: Calibration['values'] = {};
  const skipped: Record<string, string> = {};
  data.labels.forEach((label, j) => {
    const { logits, truth } = labelColumn(data, j);
    const positives = truth.reduce((a, b) => a + b, 0);
    const negatives = truth.length - positives;
    if (positives < minPerClass || negatives < minPerClass) {
      const [few, count] = positives < minPerClass ? ['positive', positives] : ['negative', negatives];
      skipped[label] = `only ${count} ${few} of the ${truth.length} labelled fitting images (a fit needs at least ${minPerClass} of each class)`;
      return;
    }
    let a: number;
    let b: number;
    try {
      if (method === 'temperature') [a, b] = [1 / fitTemperature(logits, truth).temperature, 0];
      else ({ a, b } = fitPlatt(logits, truth));
    } catch (error) {
      skipped[label] = (error as Error).message;
      return;
    }
    const spread = a * standardDeviation(logits);
    if (!(a > 0)) {
      skipped[label] = `the fitted slope ${a.toPrecision(3)} is not positive (the logits do not rank positives above negatives on the fitting images); a map with it would reverse or erase the ranking`;
    } else if (!(spread >= minSpread)) {
      skipped[label] = `the fitted slope ${a.toPrecision(3)} is negligible (slope x logit standard deviation ${spread.toPrecision(2)} < ${minSpread}): the calibrated probability would be about the prevalence on every image`;
    } else values[label] = { a, b };
  });
  return { method, source, values, ...(Object.keys(skipped).length ? { skipped } : {}) };
}

function standardDeviation(values: Float64Array): number {
  let mean = 0;
  for (const v of values) mean += v;
  mean /= values.length;
  let squares = 0;
  for (const v of values) squares += (v - mean) ** 2;
  return Math.sqrt(squares / values.length);
}

/** Whether the calibration maps this label's logits (else its probability is the plain sigmoid). */
export function isCalibrated(calibration: Pick<Calibration, 'values'> | undefined, label: string): boolean {
  return calibration?.values[label] !== undefined;
}

/** A label's probability from its logit: calibrated where the calibration has the label, else the plain sigmoid. */
export function calibratedProbability(calibration: Pick<Calibration, 'values'> | undefined, label: string, logit: number): number {
  const fit = calibration?.values[label];
  return fit ? sigmoid(fit.a * logit + fit.b) : sigmoid(logit);
}

/**
 * [images, labels] probabilities of [images, labels] logits, in double precision: exactly the numbers
 * findingsFromLogits computes, so a threshold chosen on them decides the same way at run time.
 */
export function calibratedProbabilities(calibration: Pick<Calibration, 'values'> | undefined, labels: readonly string[], logits: ArrayLike<number>): Float64Array {
  const c = labels.length;
  return Float64Array.from({ length: logits.length }, (_, i) => calibratedProbability(calibration, labels[i % c], logits[i]));
}
