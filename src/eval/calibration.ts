/**
 * Calibration: reliability curves and the expected calibration error (binned as scikit-learn's
 * `calibration_curve` bins: bin b holds probabilities in (edge_b, edge_b+1], the first bin also 0), the Brier
 * score, and the two per-class recalibrations fitted on validation data: temperature scaling (p = sigmoid(z / T))
 * and Platt scaling (p = sigmoid(a s + b)), both by Newton's method on the log-loss.
 */
import { type Labels, type Scores, checkBinary } from './binary.js';

export type BinStrategy = 'uniform' | 'quantile';

export interface ReliabilityOptions {
  /** Default 10. */
  bins?: number;
  /** `uniform` (default): equal-width bins on [0, 1]; `quantile`: bins holding about equally many samples. */
  strategy?: BinStrategy;
}

export interface ReliabilityBin {
  lower: number;
  upper: number;
  count: number;
  /** Mean predicted probability in the bin (NaN when empty). */
  meanPredicted: number;
  /** Fraction of positives in the bin (NaN when empty). */
  fractionPositive: number;
}

export interface ReliabilityCurve {
  strategy: BinStrategy;
  edges: number[];
  bins: ReliabilityBin[];
}

export function reliabilityCurve(probabilities: Scores, labels: Labels, options: ReliabilityOptions = {}): ReliabilityCurve {
  checkProbabilities(probabilities, labels);
  const binCount = options.bins ?? 10;
  const strategy = options.strategy ?? 'uniform';
  if (!Number.isInteger(binCount) || binCount < 1) throw new Error(`calibration bins must be a positive whole number, got ${binCount}`);
  if (strategy !== 'uniform' && strategy !== 'quantile') throw new Error(`calibration bin strategy must be uniform or quantile, got ${strategy}`);
  // NumPy's linspace(0, 1, bins + 1): i * (1 / bins), the last exactly 1.
  const step = 1 / binCount;
  const fractions = Array.from({ length: binCount + 1 }, (_, i) => (i === binCount ? 1 : i * step));
  let edges: number[];
  if (strategy === 'uniform') edges = fractions;
  else {
    const sorted = Float64Array.from(probabilities).sort();
    edges = fractions.map((q) => quantileOfSorted(sorted, (q * 100) / 100));
  }
  const count = new Float64Array(binCount);
  const sumPredicted = new Float64Array(binCount);
  const sumPositive = new Float64Array(binCount);
  for (let i = 0; i < probabilities.length; i++) {
    const p = probabilities[i];
    const b = binOf(edges, p);
    count[b]++;
    sumPredicted[b] += p;
    sumPositive[b] += labels[i];
  }
  const bins = Array.from({ length: binCount }, (_, b) => ({
    lower: edges[b],
    upper: edges[b + 1],
    count: count[b],
    meanPredicted: sumPredicted[b] / count[b],
    fractionPositive: sumPositive[b] / count[b],
  }));
  return { strategy, edges, bins };
}

/** NumPy's searchsorted(edges[1:-1], p, 'left'): how many inner edges lie strictly below p. */
function binOf(edges: readonly number[], p: number): number {
  let lo = 1;
  let hi = edges.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (edges[mid] < p) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** NumPy's quantile with the default 'linear' method, of ascending values. */
function quantileOfSorted(sorted: Float64Array, q: number): number {
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  const t = position - below;
  const difference = sorted[above] - sorted[below];
  return t >= 0.5 ? sorted[above] - difference * (1 - t) : sorted[below] + difference * t;
}

/**
 * Expected calibration error: sum over bins of (bin count / N) * |fraction positive - mean predicted|, with the
 * bins of `reliabilityCurve` (default 10 equal-width bins).
 */
export function expectedCalibrationError(probabilities: Scores, labels: Labels, options: ReliabilityOptions = {}): number {
  return eceOfCurve(reliabilityCurve(probabilities, labels, options), probabilities.length);
}

export function eceOfCurve(curve: ReliabilityCurve, total: number): number {
  let ece = 0;
  for (const bin of curve.bins) if (bin.count > 0) ece += (bin.count / total) * Math.abs(bin.fractionPositive - bin.meanPredicted);
  return ece;
}

/** Mean squared difference between probability and label. */
export function brierScore(probabilities: Scores, labels: Labels): number {
  checkProbabilities(probabilities, labels);
  let sum = 0;
  for (let i = 0; i < probabilities.length; i++) sum += (probabilities[i] - labels[i]) ** 2;
  return sum / probabilities.length;
}

function checkProbabilities(probabilities: Scores, labels: Labels): void {
  checkBinary(probabilities, labels, 'probabilities');
  if (probabilities.length === 0) throw new Error('probabilities: no samples');
  for (let i = 0; i < probabilities.length; i++) {
    if (!(probabilities[i] >= 0 && probabilities[i] <= 1)) throw new Error(`probabilities: value ${i} is ${probabilities[i]}, outside [0, 1]`);
  }
}

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** log(p / (1 - p)), with p first clamped into [epsilon, 1 - epsilon] (e.g. for probabilities rounded to 0 or 1). */
export function logit(p: number, epsilon = 0): number {
  const q = Math.min(1 - epsilon, Math.max(epsilon, p));
  return Math.log(q / (1 - q));
}

/** log(1 + exp(x)) without overflow. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

export interface TemperatureFit {
  /** p = sigmoid(logit / temperature); above 1 softens over-confident outputs. */
  temperature: number;
  /** Mean log-loss before (temperature 1) and after. */
  logLossBefore: number;
  logLossAfter: number;
  iterations: number;
}

/**
 * The temperature minimising the mean log-loss of sigmoid(z / T) on validation logits. Errors when it does not
 * exist: logits that separate the classes perfectly (T -> 0) or that do not rank positives higher (T -> infinity).
 */
export function fitTemperature(logits: Scores, labels: Labels): TemperatureFit {
  const { positives, negatives } = checkBinary(logits, labels, 'logits');
  if (positives === 0 || negatives === 0) throw new Error(`temperature scaling needs both classes, got ${positives} positives and ${negatives} negatives`);
  const n = logits.length;
  const loss = (a: number) => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += softplus(a * logits[i]) - labels[i] * a * logits[i];
    return sum / n;
  };
  const slope = (a: number) => {
    let g = 0;
    let h = 0;
    for (let i = 0; i < n; i++) {
      const p = sigmoid(a * logits[i]);
      g += (p - labels[i]) * logits[i];
      h += p * (1 - p) * logits[i] * logits[i];
    }
    return { g: g / n, h: h / n };
  };
  // Positives all >= 0 and negatives all <= 0: the loss falls forever as T -> 0.
  let separated = true;
  for (let i = 0; i < n && separated; i++) separated = labels[i] === 1 ? logits[i] >= 0 : logits[i] <= 0;
  if (separated) throw new Error('temperature scaling: the logits separate the classes perfectly, so the best temperature is 0');
  // The loss is convex in a = 1/T; its slope at 0 says whether the minimum lies at a > 0.
  if (slope(0).g >= 0) throw new Error('temperature scaling: the logits do not rank positives above negatives, so no positive temperature fits');
  let a = 1;
  let f = loss(a);
  let iterations = 0;
  for (; iterations < 100; iterations++) {
    const { g, h } = slope(a);
    if (Math.abs(g) <= 1e-15 * Math.max(1, Math.abs(a))) break;
    let step = h > 0 ? g / h : Math.sign(g) * a;
    // Halve the step until the loss drops (or stays put at the limit of precision), keeping a positive.
    let next = a - step;
    let fNext = next > 0 ? loss(next) : Infinity;
    while (!(fNext <= f) && Math.abs(step) > 1e-300) {
      step /= 2;
      next = a - step;
      fNext = next > 0 ? loss(next) : Infinity;
    }
    const done = Math.abs(next - a) <= 1e-14 * a;
    a = next;
    f = fNext;
    if (done) break;
  }
  return { temperature: 1 / a, logLossBefore: loss(1), logLossAfter: f, iterations };
}

export function applyTemperature(logits: Scores, temperature: number): Float64Array {
  return Float64Array.from(logits, (z) => sigmoid(z / temperature));
}

export interface PlattFit {
  /** p = sigmoid(a * score + b). (scikit-learn writes 1 / (1 + exp(A f + B)): A = -a, B = -b.) */
  a: number;
  b: number;
  /** Mean log-loss against the fitting targets. */
  logLoss: number;
  iterations: number;
}

export interface PlattOptions {
  /**
   * `platt` (default): Platt's smoothed targets (positives (P+1)/(P+2), negatives 1/(N+2)), which keep the fit
   * finite even for separable scores, as scikit-learn's sigmoid calibration does; `labels`: the 0/1 labels.
   */
  targets?: 'platt' | 'labels';
}

/**
 * Platt scaling fitted by Newton's method with backtracking (Lin, Lin and Weng 2007, "A note on Platt's
 * probabilistic outputs for support vector machines"). Scores are what the model outputs before calibration;
 * for probabilities pass their logits.
 */
export function fitPlatt(scores: Scores, labels: Labels, options: PlattOptions = {}): PlattFit {
  const { positives, negatives } = checkBinary(scores, labels, 'scores');
  if (positives === 0 || negatives === 0) throw new Error(`Platt scaling needs both classes, got ${positives} positives and ${negatives} negatives`);
  const smooth = (options.targets ?? 'platt') === 'platt';
  const hi = smooth ? (positives + 1) / (positives + 2) : 1;
  const lo = smooth ? 1 / (negatives + 2) : 0;
  const n = scores.length;
  if (!smooth) {
    // With 0/1 targets a threshold that splits the classes (ties allowed) has no finite fit.
    let minPositive = Infinity;
    let maxPositive = -Infinity;
    let minNegative = Infinity;
    let maxNegative = -Infinity;
    for (let i = 0; i < n; i++) {
      if (labels[i] === 1) [minPositive, maxPositive] = [Math.min(minPositive, scores[i]), Math.max(maxPositive, scores[i])];
      else [minNegative, maxNegative] = [Math.min(minNegative, scores[i]), Math.max(maxNegative, scores[i])];
    }
    if (maxNegative <= minPositive || maxPositive <= minNegative) {
      throw new Error('Platt scaling with 0/1 targets: the scores separate the classes perfectly, so the slope grows without bound');
    }
  }
  const loss = (a: number, b: number) => {
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const x = a * scores[i] + b;
      sum += softplus(x) - (labels[i] === 1 ? hi : lo) * x;
    }
    return sum;
  };
  let a = 0;
  let b = Math.log((positives + 1) / (negatives + 1));
  let f = loss(a, b);
  let iterations = 0;
  for (; iterations < 200; iterations++) {
    let ga = 0;
    let gb = 0;
    let haa = 1e-12;
    let hab = 0;
    let hbb = 1e-12;
    for (let i = 0; i < n; i++) {
      const s = scores[i];
      const p = sigmoid(a * s + b);
      const d = p - (labels[i] === 1 ? hi : lo);
      const w = p * (1 - p);
      ga += d * s;
      gb += d;
      haa += w * s * s;
      hab += w * s;
      hbb += w;
    }
    if (Math.max(Math.abs(ga), Math.abs(gb)) <= 1e-13 * n) break;
    const det = haa * hbb - hab * hab;
    const da = -(hbb * ga - hab * gb) / det;
    const db = -(haa * gb - hab * ga) / det;
    const decrease = ga * da + gb * db;
    let t = 1;
    let fNext = loss(a + da, b + db);
    while (fNext > f + 1e-4 * t * decrease && t > 1e-12) {
      t /= 2;
      fNext = loss(a + t * da, b + t * db);
    }
    if (t <= 1e-12) break;
    a += t * da;
    b += t * db;
    const settled = Math.abs(f - fNext) <= 1e-16 * Math.abs(f);
    f = fNext;
    if (settled) break;
  }
  return { a, b, logLoss: f / n, iterations };
}

export function applyPlatt(scores: Scores, fit: Pick<PlattFit, 'a' | 'b'>): Float64Array {
  return Float64Array.from(scores, (s) => sigmoid(fit.a * s + fit.b));
}
