/**
 * Submitting a batch: one BullMQ job per image, ids derived from the batch and the image, so submitting the same
 * batch again adds nothing that is queued or done; it only sends failed images (the dead-letter list) round again.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadModel } from '../api.js';
import type { HeatmapRequest } from './heatmaps.js';
import { type BatchJobData, type DicomWebSource, JOB_VERSION, type JobSource, QUEUE_NAME, STORE_JOB_VERSION, type StoreRequest, batchKeys, checkBatchId, fileSha256, jobIdFor } from './job.js';

export interface SubmitOptions {
  batch: string;
  /** The images' paths (made absolute here: workers read them as given, wherever they run); or */
  files?: readonly string[];
  /** PACS instances (from a QIDO-RS search, sources.ts), which the workers retrieve by WADO-RS. */
  instances?: readonly DicomWebSource[];
  /** The model file the batch is for; default: the embedded default model. Workers must have the same file. */
  modelPath?: string;
  showRejected?: boolean;
  /** Overlays of each image's positive findings, written by the workers into `out` (a folder they all share). */
  heatmaps?: HeatmapRequest;
  /** PACS instances only: each result also stored back into the PACS, as `cxr pacs` stores it (`--store-sr`). */
  store?: StoreRequest;
  /** Tries per image before it is kept as a failure; default 3. */
  attempts?: number;
  /** First wait before a retry, doubling each time; default 2000 ms. */
  backoffMs?: number;
}

export interface SubmitOutcome {
  batch: string;
  total: number;
  modelHash: string;
  /** Images now waiting for a worker (new, or still queued from an earlier submission). */
  queued: number;
  /** Images with a result already. */
  done: number;
  /** Failed images sent round again. */
  retried: number;
}

/** Redis round trips carry this many images at a time. */
const CHUNK = 1000;

export async function submitBatch(redis: Redis, options: SubmitOptions): Promise<SubmitOutcome> {
  const batch = checkBatchId(options.batch);
  const sources = uniqueSources(options);
  if (sources.length === 0) throw new Error(`batch ${batch}: no images to submit`);
  const { info, path: modelPath } = loadModel(options.modelPath);
  const modelHash = await fileSha256(modelPath);
  if (options.store && (options.files || options.heatmaps || options.showRejected)) throw new Error('storing results in the PACS is for PACS instances, without overlay files or rejected findings shown (the SR cxr pacs writes)');
  const jobOptions: BatchJobData['options'] = { showRejected: options.showRejected ?? false, ...(options.heatmaps ? { heatmaps: { ...options.heatmaps, out: resolve(options.heatmaps.out) } } : {}), ...(options.store ? { store: options.store } : {}) };
  const jobs = sources.map((source, index) => {
    const data: BatchJobData = { version: options.store ? STORE_JOB_VERSION : JOB_VERSION, batch, index, source, modelHash, options: jobOptions };
    return { id: jobIdFor(batch, source), data };
  });
  const keys = batchKeys(batch);
  const listHash = createHash('sha256').update(jobs.map((j) => j.id).join('\n')).digest('hex');
  await describeBatch(redis, keys.meta, { batch, total: jobs.length, modelHash, listHash, labels: info.labels, modelFile: modelPath, options: jobOptions });

  const queue = new Queue<BatchJobData>(QUEUE_NAME, { connection: redis });
  queue.on('error', () => {}); // connection trouble surfaces as the failed command below, with its message
  const outcome: SubmitOutcome = { batch, total: jobs.length, modelHash, queued: 0, done: 0, retried: 0 };
  try {
    for (let start = 0; start < jobs.length; start += CHUNK) {
      const chunk = jobs.slice(start, start + CHUNK);
      const ids = chunk.map((j) => j.id);
      const [done, failed] = await Promise.all([redis.hmget(keys.results, ...ids), redis.hmget(keys.failures, ...ids)]);
      const fresh = chunk.filter((_, i) => done[i] === null && failed[i] === null);
      outcome.done += done.filter((d) => d !== null).length;
      await queue.addBulk(fresh.map(({ id, data }) => queuedJob(id, data, options)));
      outcome.queued += fresh.length;
      for (const [i, reason] of failed.entries()) {
        if (reason === null || done[i] !== null) continue;
        outcome.retried += await retryFailed(queue, redis, keys.failures, ids[i]);
      }
    }
  } finally {
    await queue.close();
  }
  return outcome;
}

/**
 * A job as it is added: its derived id, tries and back-off. Completed jobs are removed (their results are kept with
 * the batch); failed ones stay in BullMQ's failed set, the dead-letter list, so the same id is not added again.
 */
export function queuedJob(id: string, data: BatchJobData, options: Pick<SubmitOptions, 'attempts' | 'backoffMs'>) {
  return {
    name: 'predict',
    data,
    opts: { jobId: id, attempts: options.attempts ?? 3, backoff: { type: 'exponential', delay: options.backoffMs ?? 2000 }, removeOnComplete: true, removeOnFail: false },
  };
}

/**
 * The batch's images, each once: the same file (or instance) twice is one image, one job, one result (else the
 * batch would wait for a second one forever).
 */
function uniqueSources(options: SubmitOptions): JobSource[] {
  if ((options.files === undefined) === (options.instances === undefined)) throw new Error('a batch is either files or PACS instances: give one of the two');
  const sources: JobSource[] = options.files?.map((file) => ({ kind: 'file', path: resolve(file) })) ?? [...(options.instances ?? [])];
  const seen = new Set<string>();
  return sources.filter((source) => {
    const id = jobIdFor('-', source);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

interface BatchDescription {
  batch: string;
  total: number;
  modelHash: string;
  listHash: string;
  labels: readonly string[];
  modelFile: string;
  options: BatchJobData['options'];
}

/** Writes the batch's description once; a second submission must be the same images for the same model. */
async function describeBatch(redis: Redis, key: string, d: BatchDescription): Promise<void> {
  const fields = { total: String(d.total), modelHash: d.modelHash, listHash: d.listHash, labels: JSON.stringify(d.labels), modelFile: d.modelFile, options: JSON.stringify(d.options), submittedAt: String(Date.now()) };
  // HSETNX on one field makes the first submission win a race between two identical ones.
  const created = await redis.hsetnx(key, 'listHash', d.listHash);
  if (created) {
    await redis.hset(key, fields);
    return;
  }
  const [modelHash, listHash, total] = await redis.hmget(key, 'modelHash', 'listHash', 'total');
  if (modelHash !== null && modelHash !== d.modelHash) {
    throw new Error(`batch ${d.batch} was submitted for model sha256 ${modelHash.slice(0, 12)}…, not this one (${d.modelHash.slice(0, 12)}…): give it another --name`);
  }
  if (listHash !== d.listHash) throw new Error(`batch ${d.batch} already holds ${total} other images: a batch's images are fixed when it is first submitted; give this one another --name`);
}

/** Sends a failed job round again; 0 when it is no longer in the failed set (a worker or a submission took it). */
export async function retryFailed(queue: Queue<BatchJobData>, redis: Redis, failuresKey: string, id: string): Promise<number> {
  const job = await Job.fromId<BatchJobData>(queue, id);
  if (!job || (await job.getState()) !== 'failed') return 0;
  await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
  await redis.hdel(failuresKey, id);
  return 1;
}
