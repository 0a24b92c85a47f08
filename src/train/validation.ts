/**
 * Scoring a model on a split from the cache: probabilities for every image (no augmentation), per-class AUROC over
 * the labelled entries (a class without both positives and negatives has none), and their mean.
 */
import type { Dataset, ImageCache } from '../data/index.js';
import { auroc } from '../eval/roc.js';
import { sigmoid } from '../outputs/findings.js';
import { readModelInfo } from '../models/metadata.js';
import type { HostTensor, Model } from '../onnx/index.js';
import { OrtSession } from '../runtime/session.js';
import { batches } from './batches.js';

export interface SplitScores {
  /** [images, labels] probabilities, row i for dataset record i. */
  probabilities: Float32Array;
  labels: number;
}

export async function scoreSplit(model: Model, cache: ImageCache, dataset: Dataset, options: { batchSize: number; threads?: number }): Promise<SplitScores> {
  const info = readModelInfo(model);
  const session = await OrtSession.create(model, { threads: options.threads });
  const c = info.labels.length;
  const probabilities = new Float32Array(dataset.records.length * c);
  try {
    const order = dataset.records.map((_, i) => i);
    for await (const batch of batches(cache, dataset, order, { spec: info.preprocessing, batchSize: options.batchSize, withMetadata: !!info.io.metadata })) {
      const feeds: Record<string, HostTensor> = { [info.io.input]: batch.images };
      if (info.io.metadata && batch.metadata) feeds[info.io.metadata] = batch.metadata;
      const logits = (await session.run(feeds, [info.io.logits]))[info.io.logits].data as Float32Array;
      batch.records.forEach((r, k) => {
        for (let j = 0; j < c; j++) probabilities[r * c + j] = sigmoid(logits[k * c + j]);
      });
    }
  } finally {
    await session.release();
  }
  return { probabilities, labels: c };
}

/** Scores and binary truths of one class over the records where it is labelled. */
export function classColumn(scores: SplitScores, dataset: Dataset, j: number): { scores: Float64Array; truth: Uint8Array } {
  const kept = dataset.records.map((_, i) => i).filter((i) => dataset.records[i].mask[j] === 1);
  return {
    scores: Float64Array.from(kept, (i) => scores.probabilities[i * scores.labels + j]),
    truth: Uint8Array.from(kept, (i) => (dataset.records[i].labels[j] >= 0.5 ? 1 : 0)),
  };
}

/** Per-class AUROC (null where a class lacks positives or negatives) and the mean over the defined ones. */
export function aurocs(scores: SplitScores, dataset: Dataset): { perClass: (number | null)[]; mean: number } {
  const perClass = dataset.labelSet.labels.map((_, j) => {
    const { scores: s, truth } = classColumn(scores, dataset, j);
    const positives = truth.reduce((a, b) => a + b, 0);
    return positives === 0 || positives === truth.length ? null : auroc(s, truth);
  });
  const defined = perClass.filter((v): v is number => v !== null);
  return { perClass, mean: defined.length ? defined.reduce((a, b) => a + b, 0) / defined.length : Number.NaN };
}
