/**
 * Faithfulness of a map to the model (Petsiuk et al., RISE, BMVC 2018): deletion removes the model-input pixels
 * in the map's order of importance, most important first, and records the finding's probability as it falls;
 * insertion starts from a blurred image and puts the pixels back in the same order, recording it as it rises.
 * The area under each curve (fraction of pixels on x, probability on y, trapezoids) summarises it: low deletion
 * and high insertion AUC mean the map points at what the model uses. A random order gives the baseline. Needs
 * forward passes only. Pure.
 */
import { SeededRandom } from '../eval/random.js';
import { resample } from '../imaging/resample.js';
import { float32 } from '../onnx/tensor.js';
import type { GridMap, ModelRunner } from './types.js';

export interface FaithfulnessOptions {
  /** Points on each curve after the start; default 16. */
  steps?: number;
  /** Images per forward run; default 16. */
  batchSize?: number;
  /** Seed of the order among equal map values (and of the random baseline); default 0. */
  seed?: number;
}

export interface Curve {
  /** Probability of the finding after each step (steps + 1 values, the untouched start first). */
  probabilities: number[];
  auc: number;
}

export interface Faithfulness {
  deletion: Curve;
  insertion: Curve;
}

type Dims = readonly [channels: number, height: number, width: number];

/** Pixel indices of the model input, most important first; ties in a seeded random order. */
export function importanceOrder(map: GridMap, height: number, width: number, seed = 0): Int32Array {
  const values = map.width === width && map.height === height ? map.data : resample(map.data, map.width, map.height, width, height);
  const order = Int32Array.from({ length: width * height }, (_, i) => i);
  const random = new SeededRandom(seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = random.below(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return Int32Array.from([...order].sort((a, b) => values[b] - values[a]));
}

/** The image blurred strongly (down to 1/16 of its size and back): the insertion curve's starting point. */
export function blurred(input: Float32Array, [channels, height, width]: Dims): Float32Array {
  const plane = height * width;
  const out = new Float32Array(input.length);
  const small = [Math.max(1, Math.round(width / 16)), Math.max(1, Math.round(height / 16))] as const;
  for (let c = 0; c < channels; c++) {
    const down = resample(input.subarray(c * plane, (c + 1) * plane), width, height, small[0], small[1]);
    out.set(resample(down, small[0], small[1], width, height), c * plane);
  }
  return out;
}

/** Trapezoidal area under probabilities sampled at evenly spaced fractions 0..1. */
/** The model's probability of `label` (its sigmoid) for each image, run `batchSize` images at a time. */
export async function labelProbabilities(runner: ModelRunner, images: readonly Float32Array[], dims: Dims, label: number, batchSize: number): Promise<number[]> {
  const probabilities: number[] = [];
  for (let first = 0; first < images.length; first += batchSize) {
    const chunk = images.slice(first, first + batchSize);
    const batch = float32([chunk.length, ...dims]);
    chunk.forEach((img, b) => batch.data.set(img, b * img.length));
    const logits = await runner.logits(batch);
    chunk.forEach((_, b) => probabilities.push(1 / (1 + Math.exp(-logits[b * runner.labels.length + label]))));
  }
  return probabilities;
}

export function curveArea(probabilities: readonly number[]): number {
  const n = probabilities.length - 1;
  let area = 0;
  for (let k = 0; k < n; k++) area += (probabilities[k] + probabilities[k + 1]) / 2;
  return n > 0 ? area / n : probabilities[0];
}

/** Deletion and insertion curves of one finding (label index) for one map over one preprocessed image [C, H, W]. */
export async function deletionInsertion(runner: ModelRunner, input: Float32Array, dims: Dims, label: number, order: Int32Array, options: FaithfulnessOptions = {}): Promise<Faithfulness> {
  const steps = options.steps ?? 16;
  const batchSize = options.batchSize ?? 16;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`faithfulness: steps must be a positive whole number, got ${steps}`);
  const [channels, height, width] = dims;
  const plane = height * width;
  if (input.length !== channels * plane || order.length !== plane) throw new Error(`faithfulness: input and order must cover ${dims.join('x')}`);
  const start = blurred(input, dims);
  // Deletion writes the mean gray (0 after normalisation); insertion copies pixels of the image into the blur.
  const curve = async (from: Float32Array, replacement: (i: number) => number): Promise<Curve> => {
    const images: Float32Array[] = [];
    const image = from.slice();
    images.push(image.slice());
    for (let k = 1; k <= steps; k++) {
      const lo = Math.round(((k - 1) / steps) * plane);
      const hi = Math.round((k / steps) * plane);
      for (let n = lo; n < hi; n++) for (let c = 0; c < channels; c++) image[c * plane + order[n]] = replacement(c * plane + order[n]);
      images.push(image.slice());
    }
    const probabilities = await labelProbabilities(runner, images, dims, label, batchSize);
    return { probabilities, auc: curveArea(probabilities) };
  };
  return { deletion: await curve(input, () => 0), insertion: await curve(start, (i) => input[i]) };
}
