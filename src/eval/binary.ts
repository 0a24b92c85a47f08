/** Inputs of the binary metrics: one score and one 0/1 label per sample, checked once with errors that say where. */

/** Scores (probabilities, logits or any ranking score): higher means more likely positive. */
export type Scores = ArrayLike<number>;
/** 1 for positive, 0 for negative. */
export type Labels = ArrayLike<number>;

export interface ClassCounts {
  positives: number;
  negatives: number;
}

/** Throws naming the first bad entry; returns the number of positives and negatives. */
export function checkBinary(scores: Scores, labels: Labels, what = 'scores'): ClassCounts {
  if (scores.length !== labels.length) throw new Error(`${what}: ${scores.length} scores but ${labels.length} labels`);
  let positives = 0;
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (label === 1) positives++;
    else if (label !== 0) throw new Error(`${what}: label ${i} is ${label}; labels must be 0 or 1`);
    if (!Number.isFinite(scores[i])) throw new Error(`${what}: score ${i} is ${scores[i]}; scores must be finite numbers`);
  }
  return { positives, negatives: labels.length - positives };
}

/** Below this many samples a comparison sort beats the radix sort's fixed cost. */
const RADIX_MIN = 4096;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Sample indices ordered by decreasing score (ties in any order: every metric here treats a tie as one group). */
export function descendingOrder(scores: Scores): Int32Array {
  const ascending = ascendingOrder(scores);
  return ascending.reverse();
}

/**
 * Sample indices ordered by increasing score. Large inputs use an LSD radix sort on the float64 bits mapped to
 * unsigned integers that sort like the numbers (4 passes of 16 bits): several times faster than a comparison
 * sort at test-set sizes, and it keeps the metrics' cost at one cheap sort per class.
 */
export function ascendingOrder(scores: Scores): Int32Array {
  const n = scores.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const values = Float64Array.from(scores);
  if (n < RADIX_MIN) return order.sort((a, b) => values[a] - values[b]);
  const words = new Uint32Array(values.buffer);
  const [loWord, hiWord] = LITTLE_ENDIAN ? [0, 1] : [1, 0];
  const lo = new Uint32Array(n);
  const hi = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const h = words[2 * i + hiWord];
    const l = words[2 * i + loWord];
    // Negative numbers: flip every bit (larger magnitude sorts first); others: set the sign bit.
    if (h & 0x80000000) {
      hi[i] = ~h >>> 0;
      lo[i] = ~l >>> 0;
    } else {
      hi[i] = (h | 0x80000000) >>> 0;
      lo[i] = l;
    }
  }
  let from = order;
  let to = new Int32Array(n);
  const counts = new Int32Array(65536);
  for (const [key, shift] of [[lo, 0], [lo, 16], [hi, 0], [hi, 16]] as const) {
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[(key[from[i]] >>> shift) & 0xffff]++;
    // A digit shared by every sample leaves the order as it is.
    if (counts[(key[from[0]] >>> shift) & 0xffff] === n) continue;
    let total = 0;
    for (let d = 0; d < 65536; d++) {
      const c = counts[d];
      counts[d] = total;
      total += c;
    }
    for (let i = 0; i < n; i++) {
      const index = from[i];
      to[counts[(key[index] >>> shift) & 0xffff]++] = index;
    }
    [from, to] = [to, from];
  }
  return from;
}
