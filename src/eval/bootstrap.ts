/**
 * Bootstrap confidence intervals for per-class AUROCs (percentile method). Each class is sorted once; a resample
 * is a vector of how often each sample was drawn, and its AUROC is one pass over the sorted order summing
 * weights (Mann-Whitney with ties one half), O(n) per class and resample instead of a sort. By default whole
 * samples (images) are resampled, the same draw for every class, so the resamples of the mean AUROC are
 * consistent; `clusters` resamples whole clusters (patients) instead; `stratified` resamples each class's
 * positives and negatives separately (pROC's default; then the mean has no joint resample and gets no interval).
 */
import { type Labels, type Scores, checkBinary, descendingOrder } from './binary.js';
import { SeededRandom } from './random.js';

export interface AurocColumn {
  scores: Scores;
  labels: Labels;
  /** For each entry, the sample it belongs to (default: entry i is sample i); classes may leave samples out. */
  samples?: ArrayLike<number>;
}

export interface BootstrapOptions {
  /** Default 1000. */
  resamples?: number;
  /** Default 0; the same seed gives the same intervals everywhere. */
  seed?: number;
  /** Default 0.95. */
  level?: number;
  /** Resample each class's positives and negatives separately, keeping its prevalence (default false). */
  stratified?: boolean;
  /** The cluster (e.g. patient) of each sample, as integers: whole clusters are drawn. Not with `stratified`. */
  clusters?: ArrayLike<number>;
  /** Called now and then with the resamples done and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface BootstrapInterval {
  lower: number;
  upper: number;
  /** Standard deviation of the resampled values. */
  standardError: number;
  /** Resamples that gave a value. */
  used: number;
  /** Resamples left out because they drew no positive or no negative of the class. */
  skipped: number;
}

export interface BootstrapResult {
  /** Per column; null where the AUROC is undefined on the full data. */
  classes: (BootstrapInterval | null)[];
  /** Of the mean AUROC over the defined classes (null when stratified or no class is defined). */
  mean: BootstrapInterval | null;
  /** The resampled AUROCs per column (NaN where a resample lacked a class), for further analysis. */
  values: Float64Array[];
}

const POSITIVE = 1;
const GROUP_START = 2;

/** Resampling state of one class: its entries sorted by score, with flags for positives and starts of tie groups. */
interface PreparedColumn {
  defined: boolean;
  /** Per sorted entry: the index into the weight vector (sample, cluster, or entry when stratified). */
  units: Int32Array;
  /** Per sorted entry: POSITIVE, GROUP_START (first of its tie group). */
  flags: Uint8Array;
  /** Stratified only: sorted positions of positives and negatives. */
  positions?: { positives: Int32Array; negatives: Int32Array };
}

export function bootstrapAurocs(columns: readonly AurocColumn[], sampleCount: number, options: BootstrapOptions = {}): BootstrapResult {
  const resamples = options.resamples ?? 1000;
  const level = options.level ?? 0.95;
  const stratified = options.stratified ?? false;
  if (!Number.isInteger(resamples) || resamples < 1) throw new Error(`bootstrap resamples must be a positive whole number, got ${resamples}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`confidence level must be between 0 and 1, got ${level}`);
  if (stratified && options.clusters) throw new Error('a stratified bootstrap cannot also resample clusters');
  const clusterOf = options.clusters ? clusterIndex(options.clusters, sampleCount) : undefined;
  const unitCount = clusterOf ? clusterOf.count : sampleCount;
  const prepared = columns.map((column, c) => prepareColumn(column, c, sampleCount, clusterOf?.index, stratified));

  const random = new SeededRandom(options.seed ?? 0);
  const values = columns.map(() => new Float64Array(resamples));
  const weights = new Int32Array(stratified ? Math.max(0, ...prepared.map((p) => p.units.length)) : unitCount);
  const progressEvery = Math.max(1, Math.floor(resamples / 100));
  for (let r = 0; r < resamples; r++) {
    if (!stratified) {
      weights.fill(0);
      for (let i = 0; i < unitCount; i++) weights[random.below(unitCount)]++;
    }
    for (let c = 0; c < prepared.length; c++) {
      const column = prepared[c];
      if (!column.defined) {
        values[c][r] = NaN;
        continue;
      }
      if (stratified) drawStratified(column, weights, random);
      values[c][r] = weightedAuroc(column, weights);
    }
    if (options.onProgress && ((r + 1) % progressEvery === 0 || r + 1 === resamples)) options.onProgress(r + 1, resamples);
  }

  const classes = prepared.map((p, c) => (p.defined ? percentileInterval(values[c], level) : null));
  const definedColumns = prepared.flatMap((p, c) => (p.defined ? [c] : []));
  let mean: BootstrapInterval | null = null;
  if (!stratified && definedColumns.length > 0) {
    const means = new Float64Array(resamples);
    for (let r = 0; r < resamples; r++) {
      let sum = 0;
      for (const c of definedColumns) sum += values[c][r];
      means[r] = sum / definedColumns.length;
    }
    mean = percentileInterval(means, level);
  }
  return { classes, mean, values };
}

/** One column's interval; null when the AUROC is undefined (a class absent). */
export function bootstrapAuroc(scores: Scores, labels: Labels, options: BootstrapOptions = {}): BootstrapInterval | null {
  return bootstrapAurocs([{ scores, labels }], scores.length, options).classes[0];
}

function clusterIndex(clusters: ArrayLike<number>, sampleCount: number): { index: Int32Array; count: number } {
  if (clusters.length !== sampleCount) throw new Error(`clusters: ${clusters.length} given for ${sampleCount} samples`);
  const renumber = new Map<number, number>();
  const index = new Int32Array(sampleCount);
  for (let i = 0; i < sampleCount; i++) {
    let id = renumber.get(clusters[i]);
    if (id === undefined) renumber.set(clusters[i], (id = renumber.size));
    index[i] = id;
  }
  return { index, count: renumber.size };
}

function prepareColumn(column: AurocColumn, c: number, sampleCount: number, clusterOf: Int32Array | undefined, stratified: boolean): PreparedColumn {
  const { scores, labels } = column;
  const { positives, negatives } = checkBinary(scores, labels, `column ${c}`);
  const n = scores.length;
  const samples = column.samples;
  if (samples && samples.length !== n) throw new Error(`column ${c}: ${samples.length} sample indices for ${n} scores`);
  if (!samples && n !== sampleCount) throw new Error(`column ${c}: ${n} scores for ${sampleCount} samples (give sample indices for a subset)`);
  const descending = descendingOrder(scores);
  const units = new Int32Array(n);
  const flags = new Uint8Array(n);
  const positivePositions: number[] = [];
  const negativePositions: number[] = [];
  let k = 0;
  const place = (entry: number, positive: boolean, groupStart: boolean) => {
    const sample = samples ? samples[entry] : entry;
    if (!(sample >= 0 && sample < sampleCount && Number.isInteger(sample))) throw new Error(`column ${c}: sample index ${sample} outside 0..${sampleCount - 1}`);
    units[k] = stratified ? k : clusterOf ? clusterOf[sample] : sample;
    flags[k] = (positive ? POSITIVE : 0) | (groupStart ? GROUP_START : 0);
    if (stratified) (positive ? positivePositions : negativePositions).push(k);
    k++;
  };
  // Increasing score; within a tie group the negatives come first (see weightedAuroc).
  let end = n;
  while (end > 0) {
    let start = end - 1;
    const value = scores[descending[start]];
    while (start > 0 && scores[descending[start - 1]] === value) start--;
    let first = true;
    for (const wanted of [0, 1]) {
      for (let j = start; j < end; j++) {
        if (labels[descending[j]] !== wanted) continue;
        place(descending[j], wanted === 1, first);
        first = false;
      }
    }
    end = start;
  }
  return {
    defined: positives > 0 && negatives > 0,
    units,
    flags,
    positions: stratified ? { positives: Int32Array.from(positivePositions), negatives: Int32Array.from(negativePositions) } : undefined,
  };
}

function drawStratified(column: PreparedColumn, weights: Int32Array, random: SeededRandom): void {
  const { positives, negatives } = column.positions!;
  weights.fill(0, 0, column.units.length);
  for (let i = 0; i < positives.length; i++) weights[positives[random.below(positives.length)]]++;
  for (let i = 0; i < negatives.length; i++) weights[negatives[random.below(negatives.length)]]++;
}

/**
 * The AUROC of one resample in a single pass in increasing score order. A positive counts the negative weight
 * below it plus half the negative weight tied with it: with a tie group's negatives placed first, that is
 * (negatives so far + negatives before its group) / 2.
 */
function weightedAuroc(column: PreparedColumn, weights: Int32Array): number {
  const { units, flags } = column;
  let negatives = 0;
  let negativesBeforeGroup = 0;
  let positives = 0;
  let twiceArea = 0;
  for (let k = 0; k < units.length; k++) {
    const w = weights[units[k]];
    const f = flags[k];
    if (f & GROUP_START) negativesBeforeGroup = negatives;
    if (f & POSITIVE) {
      twiceArea += w * (negatives + negativesBeforeGroup);
      positives += w;
    } else negatives += w;
  }
  return positives > 0 && negatives > 0 ? twiceArea / (2 * positives * negatives) : NaN;
}

/** Percentile interval of the finite values (NumPy's default 'linear' percentile), with their standard deviation. */
export function percentileInterval(values: ArrayLike<number>, level: number): BootstrapInterval | null {
  const kept = Float64Array.from(Array.prototype.filter.call(values, (v: number) => !Number.isNaN(v)) as number[]).sort();
  const used = kept.length;
  const skipped = values.length - used;
  if (used === 0) return null;
  let mean = 0;
  for (const v of kept) mean += v;
  mean /= used;
  let squares = 0;
  for (const v of kept) squares += (v - mean) ** 2;
  const alpha = (1 - level) / 2;
  return {
    lower: percentileOfSorted(kept, alpha),
    upper: percentileOfSorted(kept, 1 - alpha),
    standardError: used > 1 ? Math.sqrt(squares / (used - 1)) : NaN,
    used,
    skipped,
  };
}

/** NumPy's `percentile(..., method='linear')` of ascending values, with q in [0, 1]. */
export function percentileOfSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  const position = (n - 1) * q;
  const below = Math.min(Math.floor(position), n - 1);
  const above = Math.min(below + 1, n - 1);
  const t = position - below;
  const a = sorted[below];
  const b = sorted[above];
  const difference = b - a;
  return t >= 0.5 ? b - difference * (1 - t) : a + difference * t;
}
