/**
 * Reading a batch back: its progress (counts, rate, time left, failures with reasons) and its results, from the
 * records the workers keep in Redis, so a finished batch is read again later without scoring anything twice.
 */
import type { Redis } from 'ioredis';
import type { FileResult } from '../inference/files.js';
import type { Prediction } from '../inference/predictor.js';
import type { StoredHeatmaps } from './heatmaps.js';
import { batchKeys, checkBatchId } from './job.js';

/** One image's result as a worker stores it. */
export interface StoredResult {
  index: number;
  file: string;
  prediction: Prediction;
  /** Where its overlays were written, when the batch asked for them. */
  heatmaps?: StoredHeatmaps;
  /** A PACS instance's UIDs, as the PACS filed it (`file` is then its WADO-RS URL). */
  instance?: InstanceUids;
}

export interface InstanceUids {
  study: string;
  series: string;
  sop: string;
}

/** A result as `cxr predict` gives it, with the job's overlays and PACS UIDs when there are any. */
export type BatchResult = FileResult & { heatmaps?: StoredHeatmaps; instance?: InstanceUids };

/** An image that failed every try (or was refused): its reason, as the decoder or the worker said it. */
export interface StoredFailure {
  index: number;
  file: string;
  reason: string;
  attempts: number;
}

export interface BatchStatus {
  batch: string;
  total: number;
  done: number;
  failed: number;
  /** Waiting, running or waiting to be retried. */
  pending: number;
  modelHash: string;
  labels: string[];
  submittedAt: number;
  /** When the first worker took a job of this batch, and when the last result or failure was written. */
  startedAt?: number;
  finishedAt?: number;
  /** Images finished (done or failed) per second since the first was taken. */
  perSecond?: number;
  /** Seconds left at that rate; 0 when finished. */
  etaSeconds?: number;
  failures: (StoredFailure & { job: string })[];
}

export async function batchStatus(redis: Redis, batch: string): Promise<BatchStatus> {
  const keys = batchKeys(checkBatchId(batch));
  const meta = await redis.hgetall(keys.meta);
  if (!meta.total) throw new Error(`no batch named ${batch} in this Redis (submit it with \`cxr batch submit ... --name ${batch}\`)`);
  const [done, failuresRaw] = await Promise.all([redis.hlen(keys.results), redis.hgetall(keys.failures)]);
  const failures = Object.entries(failuresRaw)
    .map(([job, json]) => ({ job, ...(JSON.parse(json) as StoredFailure) }))
    .sort((a, b) => a.index - b.index);
  const total = Number(meta.total);
  const finished = done + failures.length;
  const status: BatchStatus = {
    batch,
    total,
    done,
    failed: failures.length,
    pending: Math.max(0, total - finished),
    modelHash: meta.modelHash,
    labels: JSON.parse(meta.labels) as string[],
    submittedAt: Number(meta.submittedAt),
    failures,
  };
  if (meta.startedAt) {
    status.startedAt = Number(meta.startedAt);
    status.finishedAt = meta.finishedAt ? Number(meta.finishedAt) : undefined;
    const end = status.pending === 0 && status.finishedAt ? status.finishedAt : Date.now();
    const seconds = (end - status.startedAt) / 1000;
    if (finished > 0 && seconds > 0) {
      status.perSecond = finished / seconds;
      status.etaSeconds = status.pending / status.perSecond;
    }
  }
  return status;
}

/**
 * Every image of the batch that has finished, in the submitted order, as `cxr predict` gives them: a prediction,
 * or the failure's reason as its error. Read with HSCAN, a slice at a time, so a large batch never blocks Redis.
 */
export async function batchResults(redis: Redis, batch: string): Promise<BatchResult[]> {
  const status = await batchStatus(redis, batch);
  const entries = new Map<string, { index: number; result: BatchResult }>(status.failures.map((f) => [f.job, { index: f.index, result: { file: f.file, error: f.reason } }]));
  const stream = redis.hscanStream(batchKeys(batch).results, { count: 500 });
  // HSCAN may return a field twice (while Redis resizes the hash): keyed by job id, it counts once.
  for await (const slice of stream as AsyncIterable<string[]>) {
    for (let i = 0; i + 1 < slice.length; i += 2) {
      const stored = JSON.parse(slice[i + 1]) as StoredResult;
      const { file, prediction, heatmaps, instance } = stored;
      entries.set(slice[i], { index: stored.index, result: { file, prediction, ...(heatmaps ? { heatmaps } : {}), ...(instance ? { instance } : {}) } });
    }
  }
  return [...entries.values()].sort((a, b) => a.index - b.index).map((e) => e.result);
}
