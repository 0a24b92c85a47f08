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

/** Sample indices ordered by decreasing score (ties in any order: every metric here treats a tie as one group). */
export function descendingOrder(scores: Scores): Int32Array {
  const order = new Int32Array(scores.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  const s = Float64Array.from(scores);
  return order.sort((a, b) => s[b] - s[a]);
}
