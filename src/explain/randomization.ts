/**
 * The model-randomisation sanity check (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018): an
 * explanation that depends on what the model learned must change when the learned weights are replaced by random
 * ones. Cascading: the blocks are re-initialised from the classifier down, one more at each step, and each step's
 * map is compared with the trained model's by Spearman rank correlation (of the values and of their magnitudes).
 * A map that stays highly correlated after the weights are gone is an edge detector, not an explanation. Pure
 * (the Node driver lives in localize-eval.ts).
 */
import { SeededRandom } from '../eval/random.js';
import { readModelInfo } from '../models/metadata.js';
import type { Model } from '../onnx/index.js';

/** Learned statistics are not weights: BatchNorm's running mean and variance stay (as in Adebayo et al.'s code). */
const KEPT = /\.(running_mean|running_var|num_batches_tracked)$/;

/** The model's blocks, classifier first: the order of the cascade. */
export function cascadeBlocks(model: Model): string[] {
  return [...readModelInfo(model).blocks].reverse();
}

/**
 * A copy of the model whose parameters under the given blocks ("a|b" entries list several prefixes) are drawn
 * again: Gaussian with each tensor's own mean and standard deviation (so activations keep their scale), seeded.
 */
export function randomizedModel(model: Model, blocks: readonly string[], seed = 0): Model {
  const prefixes = blocks.flatMap((b) => b.split('|'));
  const random = new SeededRandom(seed);
  const uniform = () => (random.uint32() + 0.5) / 4294967296;
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  const initializers = new Map(model.graph.initializers);
  let changed = 0;
  for (const [name, t] of model.graph.initializers) {
    if (t.dtype !== 'float32' || KEPT.test(name) || !prefixes.some((p) => name.startsWith(`${p}.`))) continue;
    const data = t.data as Float32Array;
    let mean = 0;
    for (const v of data) mean += v;
    mean /= data.length;
    let variance = 0;
    for (const v of data) variance += (v - mean) ** 2;
    const sd = Math.sqrt(variance / Math.max(1, data.length - 1));
    initializers.set(name, { ...t, data: Float32Array.from(data, () => mean + sd * normal()) });
    changed++;
  }
  if (changed === 0) throw new Error(`randomisation: no parameters under ${prefixes.join(', ')}`);
  return { ...model, graph: { ...model.graph, initializers } };
}

/** Ranks with ties sharing their mean rank. */
function ranks(values: ArrayLike<number>): Float64Array {
  const order = Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  const out = new Float64Array(values.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1]] === values[order[i]]) j++;
    for (let k = i; k <= j; k++) out[order[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

/** Spearman's rank correlation (Pearson's on mid-ranks); NaN when either side is constant. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`spearman: ${a.length} and ${b.length} values`);
  const ra = ranks(a);
  const rb = ranks(b);
  const mean = (ra.length + 1) / 2;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < ra.length; i++) {
    num += (ra[i] - mean) * (rb[i] - mean);
    da += (ra[i] - mean) ** 2;
    db += (rb[i] - mean) ** 2;
  }
  return da === 0 || db === 0 ? Number.NaN : num / Math.sqrt(da * db);
}
