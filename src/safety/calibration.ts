/**
 * Per-label recalibration fitted on validation logits: Platt scaling (p = sigmoid(a z + b)) or temperature scaling
 * (p = sigmoid(z / T), stored as a = 1 / T, b = 0), with src/eval's fits. A label without both classes in the
 * fitting data stays uncalibrated and says why. Where the logits do not rank positives above negatives, Platt's
 * slope would come out zero or negative (reversing the ranking): it is held at a tiny positive floor instead, so the
 * probability is about the label's prevalence while the order of the logits, and so the AUROC, is kept. Pure: the
 * browser applies the same calibration through inference/findings.
 */
import { fitPlatt, fitTemperature, sigmoid } from '../eval/calibration.js';
import type { Calibration } from '../models/metadata.js';

export type CalibrationMethod = Calibration['method'];

/** The smallest Platt slope kept: the probability then follows the prevalence, still ordered by the logit. */
export const MIN_SLOPE = 1e-6;

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

export function fitCalibration(data: LabelledLogits, method: CalibrationMethod, source: string): Calibration {
  const c = data.labels.length;
  if (data.logits.length % c !== 0 || data.targets.length !== data.logits.length || data.mask.length !== data.logits.length) {
    throw new Error(`calibration: logits, targets and mask must all be [images, ${c}] (got ${data.logits.length}, ${data.targets.length}, ${data.mask.length} values)`);
  }
  const values: Calibration['values'] = {};
  const skipped: Record<string, string> = {};
  const notes: Record<string, string> = {};
  data.labels.forEach((label, j) => {
    const { logits, truth } = labelColumn(data, j);
    const positives = truth.reduce((a, b) => a + b, 0);
    if (positives === 0 || positives === truth.length) {
      skipped[label] = `no ${positives === 0 ? 'positive' : 'negative'} images among the ${truth.length} labelled`;
      return;
    }
    try {
      if (method === 'temperature') {
        values[label] = { a: 1 / fitTemperature(logits, truth).temperature, b: 0 };
        return;
      }
      const fit = fitPlatt(logits, truth);
      if (fit.a >= MIN_SLOPE) {
        values[label] = { a: fit.a, b: fit.b };
        return;
      }
      // Platt's smoothed prevalence, the limit of the fit as the slope goes to 0.
      const prevalence = (positives + 1) / (truth.length + 2);
      values[label] = { a: MIN_SLOPE, b: Math.log(prevalence / (1 - prevalence)) };
      notes[label] = `the fitted slope ${fit.a.toPrecision(3)} was not positive (the logits do not rank positives above negatives here): slope held at ${MIN_SLOPE}, so the probability is about the prevalence ${prevalence.toFixed(3)}`;
    } catch (error) {
      skipped[label] = (error as Error).message;
    }
  });
  return { method, source, values, ...(Object.keys(skipped).length ? { skipped } : {}), ...(Object.keys(notes).length ? { notes } : {}) };
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
