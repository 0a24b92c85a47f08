/**
 * ROAD, RemOve And Debias (Rong, Leemann, Borisov, Kasneci and Kasneci, ICML 2022): deletion curves whose removed
 * pixels are not painted a constant (which the model sees as a shape, leaking the map's outline) but imputed from
 * their neighbours, plus a little noise. Each removed pixel takes the weighted mean of its eight neighbours (1/6
 * for the four beside it, 1/12 for the diagonals; known neighbours fixed, removed ones solved for together), as the
 * authors' NoisyLinearImputer (also pytorch-grad-cam's metrics/road.py) defines it; they solve the sparse system
 * directly, we solve the same system iteratively (linearImpute) to well below the noise. MoRF removes the most relevant pixels first (the finding's probability should fall:
 * lower is better), LeRF the least relevant first (it should stay: higher is better), at 10..90% of the pixels.
 * Needs forward passes only. Pure.
 */
import { SeededRandom } from '../eval/random.js';
import { labelProbabilities } from './faithfulness.js';
import type { ModelRunner } from './types.js';

export interface RoadOptions {
  /** Shares of the pixels removed, each in (0, 1); default 0.1, 0.2, ..., 0.9 (the authors'). */
  fractions?: readonly number[];
  /** Standard deviation of the noise added to imputed values, in the model's input units; default 0.01 (the authors'). */
  noise?: number;
  /** Seed of the noise; default 0. */
  seed?: number;
  /** Images per forward run; default 16. */
  batchSize?: number;
}

export interface Road {
  fractions: number[];
  /** Probability of the finding with the most relevant pixels removed, per fraction. */
  morf: number[];
  /** Probability with the least relevant pixels removed, per fraction. */
  lerf: number[];
  /** Means over the fractions (the authors' summary): low MoRF and high LeRF mean a faithful map. */
  morfMean: number;
  lerfMean: number;
}

type Dims = readonly [channels: number, height: number, width: number];

export const ROAD_FRACTIONS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] as const;

const NEIGHBOURS: readonly (readonly [dy: number, dx: number, weight: number])[] = [
  [-1, -1, 1 / 12], [-1, 0, 1 / 6], [-1, 1, 1 / 12],
  [0, -1, 1 / 6], [0, 1, 1 / 6],
  [1, -1, 1 / 12], [1, 0, 1 / 6], [1, 1, 1 / 12],
];

/** Starting values for the removed pixels: each takes the mean of the known pixels in the smallest block of a 2x pyramid holding any. */
function pyramidFill(values: Float32Array, known: Uint8Array, width: number, height: number): Float64Array {
  const levels: { v: Float64Array; w: Float64Array; width: number; height: number }[] = [];
  let v = Float64Array.from(values, (x, i) => (known[i] ? x : 0));
  let w = Float64Array.from(known);
  let lw = width;
  let lh = height;
  levels.push({ v, w, width: lw, height: lh });
  while (lw > 1 || lh > 1) {
    const nw = Math.ceil(lw / 2);
    const nh = Math.ceil(lh / 2);
    const sv = new Float64Array(nw * nh);
    const sw = new Float64Array(nw * nh);
    for (let y = 0; y < lh; y++) for (let x = 0; x < lw; x++) {
      const j = (y >> 1) * nw + (x >> 1);
      sv[j] += v[y * lw + x] * w[y * lw + x];
      sw[j] += w[y * lw + x];
    }
    for (let j = 0; j < sv.length; j++) if (sw[j] > 0) sv[j] /= sw[j];
    [v, w, lw, lh] = [sv, sw, nw, nh];
    levels.push({ v, w, width: lw, height: lh });
  }
  for (let k = levels.length - 2; k >= 0; k--) {
    const level = levels[k];
    const parent = levels[k + 1];
    for (let y = 0; y < level.height; y++) for (let x = 0; x < level.width; x++) {
      const i = y * level.width + x;
      if (level.w[i] === 0) level.v[i] = parent.v[(y >> 1) * parent.width + (x >> 1)];
    }
  }
  return levels[0].v;
}

/**
 * One channel [height, width] with the pixels where `removed` is 1 replaced by the solution of the neighbour-mean
 * system (no noise): what the authors' spsolve gives. In their form, total_i x_i - sum_j w_ij x_j = sum_k w_ik v_k
 * (j removed, k known, total_i the weights of i's in-image neighbours), the matrix is symmetric and positive
 * definite wherever a removed region touches a known pixel, so conjugate gradients solve it (Jacobi
 * preconditioned, from a pyramid fill) until every equation holds to `tolerance` in pixel units. Gauss-Seidel,
 * even over-relaxed, stalls on the large holes a CAM's top region makes while its updates already look small.
 */
export function linearImpute(values: Float32Array, removed: Uint8Array, width: number, height: number, tolerance = 1e-4, maxIterations = 5000): Float64Array {
  const known = Uint8Array.from(removed, (r) => (r ? 0 : 1));
  const filled = pyramidFill(values, known, width, height);
  const out = Float64Array.from(values);
  const unknown: number[] = [];
  removed.forEach((r, i) => r && unknown.push(i));
  const n = unknown.length;
  if (n === 0) return out;
  const slot = new Int32Array(values.length).fill(-1);
  unknown.forEach((i, k) => (slot[i] = k));
  // Per removed pixel: its diagonal (total weight), its removed neighbours (slot, weight) and the known side b.
  const diagonal = new Float64Array(n);
  const b = new Float64Array(n);
  const neighbourSlots: Int32Array[] = [];
  const neighbourWeights: Float64Array[] = [];
  for (let k = 0; k < n; k++) {
    const i = unknown[k];
    const px = i % width;
    const py = (i - px) / width;
    const slots: number[] = [];
    const weights: number[] = [];
    for (const [dy, dx, weight] of NEIGHBOURS) {
      const nx = px + dx;
      const ny = py + dy;
      if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
      diagonal[k] += weight;
      const j = ny * width + nx;
      if (slot[j] >= 0) {
        slots.push(slot[j]);
        weights.push(weight);
      } else b[k] += weight * values[j];
    }
    neighbourSlots.push(Int32Array.from(slots));
    neighbourWeights.push(Float64Array.from(weights));
  }
  const multiply = (x: Float64Array, into: Float64Array) => {
    for (let k = 0; k < n; k++) {
      let sum = diagonal[k] * x[k];
      const s = neighbourSlots[k];
      const w = neighbourWeights[k];
      for (let m = 0; m < s.length; m++) sum -= w[m] * x[s[m]];
      into[k] = sum;
    }
  };
  const x = Float64Array.from(unknown, (i) => filled[i]);
  const r = new Float64Array(n);
  multiply(x, r);
  for (let k = 0; k < n; k++) r[k] = b[k] - r[k];
  const z = Float64Array.from(r, (v, k) => v / diagonal[k]);
  const p = Float64Array.from(z);
  const q = new Float64Array(n);
  let rz = 0;
  for (let k = 0; k < n; k++) rz += r[k] * z[k];
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    let worst = 0;
    for (let k = 0; k < n; k++) worst = Math.max(worst, Math.abs(z[k]));
    if (worst < tolerance) break;
    multiply(p, q);
    let pq = 0;
    for (let k = 0; k < n; k++) pq += p[k] * q[k];
    const alpha = rz / pq;
    for (let k = 0; k < n; k++) {
      x[k] += alpha * p[k];
      r[k] -= alpha * q[k];
      z[k] = r[k] / diagonal[k];
    }
    let next = 0;
    for (let k = 0; k < n; k++) next += r[k] * z[k];
    const beta = next / rz;
    rz = next;
    for (let k = 0; k < n; k++) p[k] = z[k] + beta * p[k];
  }
  unknown.forEach((i, k) => (out[i] = x[k]));
  return out;
}

/**
 * Channel c as a * channel 0 + b, when it is one (a gray film replicated into RGB and normalised per channel):
 * the imputation is affine-equivariant (each equation's weights sum to its diagonal), so such channels are solved
 * once. Undefined when the channels are not related so.
 */
function affineOfFirst(input: Float32Array, plane: number, c: number): { a: number; b: number } | undefined {
  let lo = 0;
  let hi = 0;
  for (let i = 1; i < plane; i++) {
    if (input[i] < input[lo]) lo = i;
    if (input[i] > input[hi]) hi = i;
  }
  if (input[hi] === input[lo]) return undefined;
  const at = (i: number) => input[c * plane + i];
  const a = (at(hi) - at(lo)) / (input[hi] - input[lo]);
  const b = at(lo) - a * input[lo];
  for (let i = 0; i < plane; i++) if (Math.abs(at(i) - (a * input[i] + b)) > 1e-5 * (1 + Math.abs(at(i)))) return undefined;
  return { a, b };
}

/** The image [C, H, W] with the masked pixels imputed per channel, plus Gaussian noise of `noise` on them. */
export function noisyLinearImpute(input: Float32Array, [channels, height, width]: Dims, removed: Uint8Array, noise: number, random: SeededRandom): Float32Array {
  const plane = height * width;
  const out = Float32Array.from(input);
  const normal = () => Math.sqrt(-2 * Math.log((random.uint32() + 0.5) / 4294967296)) * Math.cos((2 * Math.PI * (random.uint32() + 0.5)) / 4294967296);
  const first = linearImpute(input.subarray(0, plane), removed, width, height);
  for (let c = 0; c < channels; c++) {
    const affine = c === 0 ? { a: 1, b: 0 } : affineOfFirst(input, plane, c);
    const filled = affine ? first.map((v) => affine.a * v + affine.b) : linearImpute(input.subarray(c * plane, (c + 1) * plane), removed, width, height);
    for (let i = 0; i < plane; i++) if (removed[i]) out[c * plane + i] = filled[i] + noise * normal();
  }
  return out;
}

/** MoRF and LeRF curves of one finding (label index) for one pixel order (most relevant first) over one preprocessed image. */
export async function road(runner: ModelRunner, input: Float32Array, dims: Dims, label: number, order: Int32Array, options: RoadOptions = {}): Promise<Road> {
  const fractions = [...(options.fractions ?? ROAD_FRACTIONS)];
  const noise = options.noise ?? 0.01;
  const batchSize = options.batchSize ?? 16;
  if (fractions.length === 0 || !fractions.every((f) => f > 0 && f < 1)) throw new Error(`ROAD: fractions must lie in (0, 1), got ${fractions.join(', ')}`);
  if (!(noise >= 0)) throw new Error(`ROAD: noise must be >= 0, got ${noise}`);
  const [, height, width] = dims;
  const plane = height * width;
  if (order.length !== plane) throw new Error(`ROAD: the order must cover ${height}x${width} pixels`);
  const random = new SeededRandom(options.seed ?? 0);
  const images: Float32Array[] = [];
  for (const mostFirst of [true, false]) {
    for (const f of fractions) {
      const count = Math.round(f * plane);
      const removed = new Uint8Array(plane);
      for (let n = 0; n < count; n++) removed[order[mostFirst ? n : plane - 1 - n]] = 1;
      images.push(noisyLinearImpute(input, dims, removed, noise, random));
    }
  }
  const probabilities = await labelProbabilities(runner, images, dims, label, batchSize);
  const morf = probabilities.slice(0, fractions.length);
  const lerf = probabilities.slice(fractions.length);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  return { fractions, morf, lerf, morfMean: mean(morf), lerfMean: mean(lerf) };
}
