/**
 * Occlusion sensitivity (Zeiler & Fergus 2014): slide a patch of neutral gray over the image and record how much
 * each finding's logit drops; regions whose hiding lowers the score most are the ones that drove it. Needs only
 * forward passes, so it works for any model; the price is one pass per patch position (batched).
 */
import { float32 } from '../onnx/tensor.js';
import type { ExplanationTarget, GridMap, ModelRunner } from './types.js';

export interface OcclusionOptions {
  /** Patch side in model-input pixels; default 1/8 of the input. */
  patch?: number;
  /** Step between patch positions; default half the patch. */
  stride?: number;
  /** Value written into the patch, in normalised units (0 = the dataset mean gray); default 0. */
  baseline?: number;
  /** Occluded images per run; default 16. */
  batchSize?: number;
  /** Whether the drop is measured in the logit (default) or the probability. */
  target?: ExplanationTarget;
}

/**
 * Maps for the given label indices over a preprocessed image [C, H, W]: each pixel gets the mean score drop of
 * the patch positions covering it.
 */
export async function occlusionMaps(
  runner: ModelRunner,
  input: Float32Array,
  dims: readonly [number, number, number],
  targets: readonly number[],
  baseLogits: Float32Array,
  options: OcclusionOptions = {},
): Promise<GridMap[]> {
  const [channels, height, width] = dims;
  const patch = options.patch ?? Math.max(1, Math.round(Math.min(height, width) / 8));
  const stride = options.stride ?? Math.max(1, Math.floor(patch / 2));
  const batchSize = options.batchSize ?? 16;
  if (!Number.isInteger(patch) || patch < 1 || patch > Math.min(height, width)) throw new Error(`occlusion patch must be 1..${Math.min(height, width)} pixels, got ${patch}`);
  if (!Number.isInteger(stride) || stride < 1) throw new Error(`occlusion stride must be a positive whole number, got ${stride}`);
  const positions: [number, number][] = [];
  for (const y of starts(height, patch, stride)) for (const x of starts(width, patch, stride)) positions.push([y, x]);
  const sums = targets.map(() => new Float32Array(height * width));
  const counts = new Float32Array(height * width);
  const labelCount = runner.labels.length;
  const score = options.target === 'probability' ? (logit: number) => 1 / (1 + Math.exp(-logit)) : (logit: number) => logit;
  const plane = height * width;
  for (let first = 0; first < positions.length; first += batchSize) {
    const chunk = positions.slice(first, first + batchSize);
    const batch = float32([chunk.length, channels, height, width]);
    chunk.forEach(([y0, x0], b) => {
      batch.data.set(input, b * input.length);
      for (let c = 0; c < channels; c++) {
        for (let y = y0; y < y0 + patch; y++) batch.data.fill(options.baseline ?? 0, b * input.length + c * plane + y * width + x0, b * input.length + c * plane + y * width + x0 + patch);
      }
    });
    const logits = await runner.logits(batch);
    chunk.forEach(([y0, x0], b) => {
      for (let y = y0; y < y0 + patch; y++) for (let x = x0; x < x0 + patch; x++) counts[y * width + x] += 1;
      targets.forEach((label, t) => {
        const drop = score(baseLogits[label]) - score(logits[b * labelCount + label]);
        for (let y = y0; y < y0 + patch; y++) for (let x = x0; x < x0 + patch; x++) sums[t][y * width + x] += drop;
      });
    });
  }
  return sums.map((sum) => ({ width, height, data: sum.map((v, i) => (counts[i] > 0 ? v / counts[i] : 0)) }));
}

/** Patch start positions covering the whole extent (the last one flush with the edge). */
function starts(extent: number, patch: number, stride: number): number[] {
  const out: number[] = [];
  for (let s = 0; s + patch <= extent; s += stride) out.push(s);
  if (out[out.length - 1] !== extent - patch) out.push(extent - patch);
  return out;
}
