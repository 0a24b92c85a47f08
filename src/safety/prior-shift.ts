/**
 * Label-free adaptation to a new site's prevalence (label shift: p(x | y) unchanged, p(y) changed), by the EM
 * procedure of Saerens, Latinne and Decaestecker (2002), "Adjusting the outputs of a classifier to new a priori
 * probabilities: a simple procedure", Neural Computation 14(1). Findings are independent sigmoids, so each finding is
 * a binary problem of its own: with pi the prevalence the calibrated probabilities reflect (the fitting data's) and
 * p_i the calibrated probabilities on unlabelled local images,
 *
 *   p_i' = (pi'/pi p_i) / (pi'/pi p_i + (1 - pi')/(1 - pi) (1 - p_i)),   pi' = mean_i p_i'
 *
 * iterated from pi' = pi to a fixed point, which is the maximum-likelihood prevalence of the local images under the
 * mixture (the log-likelihood is concave in pi', so the fixed point is unique). The adjustment is an additive shift
 * of every logit, delta = logit(pi') - logit(pi): it is folded into the stored Platt intercept (b += delta), and each
 * stored probability threshold is moved by the same delta on the logit scale, so every decision stays that of the
 * validated operating point (same sensitivity and specificity under label shift) while the probabilities reflect the
 * local prevalence. Uncertainty: a percentile bootstrap over images (seeded), EM rerun on every resample.
 *
 * Pure and browser-safe. What EM cannot know: it assumes the probabilities are calibrated for the source and that
 * only the prevalence changed. So only calibrated findings are adapted: an uncalibrated one (no calibration entry,
 * the plain sigmoid; Finding.calibrated false) is left alone rather than given an entry { a: 1, b: delta }, which
 * would both run EM on miscalibrated probabilities and mark the finding calibrated; and a finding whose calibrated
 * probability is nearly constant over the local images (a negligible slope, as older models stored where the logits
 * did not rank positives higher) says nothing about the local prevalence, and EM on it runs to 0 or 1.
 */
import { percentileInterval } from '../eval/bootstrap.js';
import { logit, sigmoid } from '../eval/calibration.js';
import { SeededRandom } from '../eval/random.js';
import type { Adaptation, AdaptedFinding, Calibration, Thresholds } from '../models/metadata.js';

/** Probabilities and prevalences are kept in [FLOOR, 1 - FLOOR] so that no odds is 0 or infinite. */
export const PRIOR_FLOOR = 1e-6;
const PROBABILITY_FLOOR = 1e-12;
/**
 * A shifted threshold is lowered by this much on the logit scale: an image that sat exactly on the validated
 * threshold (thresholds are observed scores, so some do) stays positive although its shifted probability and the
 * shifted threshold are rounded differently. Far below any difference between two real images' logits.
 */
export const THRESHOLD_ROUNDING_GUARD = 1e-9;

export interface PriorShiftOptions {
  /** Stop when pi' changes by less than this (default 1e-9). */
  tolerance?: number;
  /** Give up after this many EM steps (default 10000); the result then says converged: false. */
  maxIterations?: number;
}

export interface PriorEstimate {
  /** The estimated local prevalence pi'. */
  prior: number;
  iterations: number;
  converged: boolean;
  /**
   * Set where the likelihood is highest at a prevalence of 0 or 1 (no interior fixed point): the probabilities do
   * not separate enough for these images to say where between 0 and 1 their prevalence lies, typically a weak
   * finding whose probabilities all sit a little above (or below) the source prevalence. `prior` is then the floor.
   */
  boundary?: 'zero' | 'one';
}

const clampPrior = (p: number) => Math.min(1 - PRIOR_FLOOR, Math.max(PRIOR_FLOOR, p));
const clampProbability = (p: number) => Math.min(1 - PROBABILITY_FLOOR, Math.max(PROBABILITY_FLOOR, p));

function checkPrior(prior: number, what: string): void {
  if (!(prior > 0 && prior < 1)) throw new Error(`${what} must be a prevalence strictly between 0 and 1, got ${prior}`);
}

/** A probability calibrated for prevalence `sourcePrior` re-expressed for prevalence `targetPrior` (Bayes' rule). */
export function adjustProbability(probability: number, sourcePrior: number, targetPrior: number): number {
  const p = clampProbability(probability);
  const up = (targetPrior / sourcePrior) * p;
  return up / (up + ((1 - targetPrior) / (1 - sourcePrior)) * (1 - p));
}

/** The logit shift that takes probabilities calibrated for `sourcePrior` to `targetPrior`: logit(pi') - logit(pi). */
export function priorLogitShift(sourcePrior: number, targetPrior: number): number {
  checkPrior(sourcePrior, 'the source prevalence');
  checkPrior(targetPrior, 'the target prevalence');
  return logit(targetPrior) - logit(sourcePrior);
}

/**
 * EM estimate of the prevalence of unlabelled images from their calibrated probabilities. `weights` (how often each
 * image counts, e.g. a bootstrap resample) default to 1 each; `start` defaults to the source prevalence.
 */
export function estimatePrior(probabilities: ArrayLike<number>, sourcePrior: number, options: PriorShiftOptions & { weights?: ArrayLike<number>; start?: number } = {}): PriorEstimate {
  checkPrior(sourcePrior, 'the source prevalence');
  const n = probabilities.length;
  if (n === 0) throw new Error('prior shift: no probabilities to estimate a prevalence from');
  const tolerance = options.tolerance ?? 1e-9;
  const maxIterations = options.maxIterations ?? 10000;
  const weights = options.weights;
  if (weights && weights.length !== n) throw new Error(`prior shift: ${weights.length} weights for ${n} probabilities`);
  let total = 0;
  const p = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (!(probabilities[i] >= 0 && probabilities[i] <= 1)) throw new Error(`prior shift: probability ${i} is ${probabilities[i]}, outside [0, 1]`);
    p[i] = clampProbability(probabilities[i]);
    total += weights ? weights[i] : 1;
  }
  if (!(total > 0)) throw new Error('prior shift: the weights add up to 0');
  // The log-likelihood of pi' is concave; its slope at 0 has the sign of mean(odds(p) / odds(pi)) - 1 and at 1 of
  // 1 - mean(odds(pi) / odds(p)), so an interior maximum (EM's fixed point) exists only when both means exceed 1.
  const sourceOdds = sourcePrior / (1 - sourcePrior);
  let up = 0;
  let down = 0;
  for (let i = 0; i < n; i++) {
    const w = weights ? weights[i] : 1;
    const ratio = p[i] / (1 - p[i]) / sourceOdds;
    up += w * ratio;
    down += w / ratio;
  }
  up /= total;
  down /= total;
  if (!(up > 1) && !(down > 1)) return { prior: sourcePrior, iterations: 0, converged: true }; // every p_i = pi: nothing moves
  if (!(up > 1)) return { prior: PRIOR_FLOOR, iterations: 0, converged: true, boundary: 'zero' };
  if (!(down > 1)) return { prior: 1 - PRIOR_FLOOR, iterations: 0, converged: true, boundary: 'one' };
  let prior = clampPrior(options.start ?? sourcePrior);
  for (let iteration = 1; iteration <= maxIterations; iteration++) {
    const r = prior / sourcePrior;
    const s = (1 - prior) / (1 - sourcePrior);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const w = weights ? weights[i] : 1;
      if (w === 0) continue;
      const up = r * p[i];
      sum += (w * up) / (up + s * (1 - p[i]));
    }
    const next = clampPrior(sum / total);
    const change = Math.abs(next - prior);
    prior = next;
    if (change < tolerance || prior === PRIOR_FLOOR || prior === 1 - PRIOR_FLOOR) return { prior, iterations: iteration, converged: true };
  }
  return { prior, iterations: maxIterations, converged: false };
}

export interface PrevalenceOptions extends PriorShiftOptions {
  /** Bootstrap resamples of the images (default 1000; 0: no interval). */
  resamples?: number;
  /** Default 0: the same seed gives the same intervals everywhere. */
  seed?: number;
  /** Default 0.95. */
  level?: number;
}

export interface PrevalenceEstimate extends AdaptedFinding {
  label: string;
  /** See PriorEstimate.boundary: such an estimate is not a usable prevalence, and is not applied. */
  boundary?: 'zero' | 'one';
}

/**
 * Per label named in `sourcePriors`: the EM prevalence of the unlabelled images, its bootstrap interval (the same
 * image resamples for every label) and the logit shift. `probabilities` is [images, labels] row-major, calibrated.
 */
export function estimatePrevalences(
  labels: readonly string[],
  probabilities: ArrayLike<number>,
  sourcePriors: Readonly<Record<string, number>>,
  options: PrevalenceOptions = {},
): PrevalenceEstimate[] {
  const c = labels.length;
  if (c === 0 || probabilities.length % c !== 0) throw new Error(`prior shift: ${probabilities.length} probabilities are not [images, ${c}]`);
  const n = probabilities.length / c;
  if (n === 0) throw new Error('prior shift: no images');
  const resamples = options.resamples ?? 1000;
  const level = options.level ?? 0.95;
  if (!Number.isInteger(resamples) || resamples < 0) throw new Error(`bootstrap resamples must be a whole number >= 0, got ${resamples}`);
  for (const label of Object.keys(sourcePriors)) if (!labels.includes(label)) throw new Error(`prior shift: "${label}" is not one of the labels`);
  const columns = labels.map((label, j) => (label in sourcePriors ? Float64Array.from({ length: n }, (_, i) => probabilities[i * c + j]) : null));
  const estimates = labels.map((label, j) => (columns[j] ? estimatePrior(columns[j]!, sourcePriors[label], options) : null));
  const resampled = labels.map(() => new Float64Array(resamples));
  const random = new SeededRandom(options.seed ?? 0);
  const weights = new Float64Array(n);
  for (let b = 0; b < resamples; b++) {
    weights.fill(0);
    for (let i = 0; i < n; i++) weights[random.below(n)]++;
    labels.forEach((label, j) => {
      if (!columns[j]) return;
      // Started from the full-data estimate: the resample's fixed point is near it.
      resampled[j][b] = estimatePrior(columns[j]!, sourcePriors[label], { ...options, weights, start: estimates[j]!.prior }).prior;
    });
  }
  return labels.flatMap((label, j) => {
    const estimate = estimates[j];
    if (!estimate) return [];
    const interval = resamples > 0 ? percentileInterval(resampled[j], level) : null;
    const sourcePrior = sourcePriors[label];
    return [
      {
        label,
        sourcePrior,
        prior: estimate.prior,
        lower: interval?.lower ?? null,
        upper: interval?.upper ?? null,
        delta: priorLogitShift(sourcePrior, estimate.prior),
        iterations: estimate.iterations,
        converged: estimate.converged,
        ...(estimate.boundary ? { boundary: estimate.boundary } : {}),
      },
    ];
  });
}

/** A probability threshold moved by `delta` on the logit scale (less the rounding guard); 0 and 1 stay. */
export function shiftThreshold(threshold: number, delta: number): number {
  if (threshold <= 0 || threshold >= 1) return threshold;
  return sigmoid(logit(threshold) + delta - THRESHOLD_ROUNDING_GUARD);
}

/**
 * Smallest calibration slope x standard deviation of the local logits for EM to run on a label: below it one
 * standard deviation of the logit moves the calibrated log-odds by under 0.1, so the probability is about the same
 * constant on every image (the rule calibration.ts uses on the fitting logits).
 */
export const MIN_LOCAL_SPREAD = 0.1;

/**
 * Which labels EM may adapt, and why not the others: a label needs a calibration entry whose slope spreads the local
 * logits (`logits`, [images, labels]) by at least MIN_LOCAL_SPREAD, and a source prevalence strictly between 0 and 1.
 */
export function adaptableLabels(
  labels: readonly string[],
  calibration: Pick<Calibration, 'values'>,
  sourcePriors: Readonly<Record<string, number>>,
  logits: ArrayLike<number>,
): { labels: string[]; skipped: Record<string, string> } {
  const c = labels.length;
  const kept: string[] = [];
  const skipped: Record<string, string> = {};
  labels.forEach((label, j) => {
    const fit = calibration.values[label];
    const prior = sourcePriors[label];
    let mean = 0;
    let squares = 0;
    const n = logits.length / c;
    for (let i = 0; i < n; i++) mean += logits[i * c + j] / n;
    for (let i = 0; i < n; i++) squares += (logits[i * c + j] - mean) ** 2 / n;
    const spread = fit ? fit.a * Math.sqrt(squares) : 0;
    if (!fit) skipped[label] = 'uncalibrated (plain sigmoid): EM needs calibrated probabilities';
    else if (!(spread >= MIN_LOCAL_SPREAD)) skipped[label] = `its calibrated probability is about constant here (slope x local logit standard deviation ${spread.toPrecision(2)} < ${MIN_LOCAL_SPREAD}): it says nothing about the local prevalence`;
    else if (prior === undefined || Number.isNaN(prior)) skipped[label] = 'no source prevalence';
    else if (!(prior > 0 && prior < 1)) skipped[label] = `source prevalence ${prior}: no positives or no negatives in the fitting data`;
    else kept.push(label);
  });
  return { labels: kept, skipped };
}

/**
 * The calibration and thresholds after the prior shift: per estimate, the Platt intercept moves by delta (a label
 * without a calibration entry gets { a: 1, b: delta }), the threshold by delta on the logit scale, and the stored
 * prevalence becomes the estimate (what the probabilities now reflect). Inputs are not modified.
 */
export function applyPriorShift(
  calibration: Calibration,
  thresholds: Thresholds | undefined,
  estimates: readonly Pick<PrevalenceEstimate, 'label' | 'prior' | 'delta'>[],
  description: string,
): { calibration: Calibration; thresholds: Thresholds | undefined } {
  const values = { ...calibration.values };
  const skipped = calibration.skipped ? { ...calibration.skipped } : undefined;
  const notes = { ...(calibration.notes ?? {}) };
  const prevalence = { ...(calibration.prevalence ?? {}) };
  const thresholdValues = thresholds ? { ...thresholds.values } : undefined;
  for (const e of estimates) {
    const fit = values[e.label];
    values[e.label] = fit ? { a: fit.a, b: fit.b + e.delta } : { a: 1, b: e.delta };
    if (!fit && skipped) delete skipped[e.label];
    notes[e.label] = `${notes[e.label] ? `${notes[e.label]}; ` : ''}intercept shifted by ${e.delta.toFixed(4)} (prevalence ${prevalence[e.label]?.toFixed(4) ?? '?'} -> ${e.prior.toFixed(4)}, ${description})`;
    prevalence[e.label] = e.prior;
    if (thresholdValues && thresholdValues[e.label] !== undefined) thresholdValues[e.label] = shiftThreshold(thresholdValues[e.label], e.delta);
  }
  const adapted: Calibration = {
    ...calibration,
    values,
    ...(skipped ? { skipped } : {}),
    ...(Object.keys(notes).length ? { notes } : {}),
    prevalence,
  };
  if (skipped && Object.keys(skipped).length === 0) delete adapted.skipped;
  return {
    calibration: adapted,
    thresholds: thresholds && thresholdValues ? { ...thresholds, source: `${thresholds.source}; shifted on the logit scale for the local prevalence (${description})`, values: thresholdValues } : thresholds,
  };
}

/** Per label, the share of labelled images that are positive (targets and mask [images, labels]); labels never labelled are left out. */
export function labelPrevalence(labels: readonly string[], targets: ArrayLike<number>, mask: ArrayLike<number>): Record<string, number> {
  const c = labels.length;
  return Object.fromEntries(
    labels.flatMap((label, j) => {
      let positives = 0;
      let labelled = 0;
      for (let k = j; k < targets.length; k += c) {
        if (mask[k] !== 1) continue;
        labelled++;
        if (targets[k] >= 0.5) positives++;
      }
      return labelled ? [[label, positives / labelled]] : [];
    }),
  );
}

/** The record stored under `cxr.adaptation`, from the estimates and what was adapted. */
export function adaptationRecord(
  estimates: readonly PrevalenceEstimate[],
  thresholdsBefore: Thresholds | undefined,
  thresholdsAfter: Thresholds | undefined,
  details: Omit<Adaptation, 'method' | 'findings'>,
): Adaptation {
  return {
    method: 'EM prior shift (Saerens, Latinne & Decaestecker 2002), per finding; logit shift folded into the Platt intercept and the threshold',
    ...details,
    findings: Object.fromEntries(
      estimates.map(({ label, ...e }) => [
        label,
        {
          ...e,
          ...(thresholdsBefore?.values[label] !== undefined ? { thresholdBefore: thresholdsBefore.values[label], thresholdAfter: thresholdsAfter?.values[label] } : {}),
        },
      ]),
    ),
  };
}
