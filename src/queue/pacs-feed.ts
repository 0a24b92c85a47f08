/**
 * `cxr pacs --redis`: the PACS's pending instances, found exactly as `cxr pacs` finds them (no SR of this model
 * yet), handed to the batch queue's `cxr worker`s, one job per instance, instead of analysed in this process. Each
 * job carries the instance's UIDs, the DICOMweb root and what to store back (`store`); a worker retrieves it,
 * analyses it and stores the SR (and heatmaps) as `cxr pacs` would (worker.ts, pacs/processor.ts).
 *
 * The jobs belong to one batch that grows with the PACS (positions are given as instances are first seen), so
 * `cxr batch status` and `results` read it like any other batch, failures and their reasons included. What is done
 * is still read from the PACS: an instance with its SR is not queued again. One still queued or running is not
 * doubled (its job id comes from the batch and its UIDs, and BullMQ adds no second job with an id it holds); one
 * whose job failed for good stays in the batch's failures (BullMQ's failed set) until a run's first pass sends it
 * round again, as submitting a batch again does.
 */
import { createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadModel } from '../api.js';
import type { DicomJson } from '../pacs/dicom-json.js';
import type { DicomWebClient } from '../pacs/dicomweb.js';
import { DEFAULT_MODALITIES, pendingAmong, pendingInstances, type PendingInstance } from '../pacs/processor.js';
import { type BatchJobData, type DicomWebSource, QUEUE_NAME, STORE_JOB_VERSION, type StoreRequest, batchKeys, checkBatchId, fileSha256, jobIdFor } from './job.js';
import { queuedJob, retryFailed } from './submit.js';

export interface PacsFeedOptions {
  /** The batch the jobs belong to; default `pacs-` and a hash of the DICOMweb root and the model file. */
  batch?: string;
  /** The model file the workers must have; default: the embedded default model. */
  modelPath?: string;
  modalities?: readonly string[];
  /** What the workers store back; the SR always. */
  store: StoreRequest;
  /** Tries per instance before it is kept as a failure; default 3. */
  attempts?: number;
  /** First wait before a retry, doubling each time; default 2000 ms. */
  backoffMs?: number;
}

export interface FeedSummary {
  batch: string;
  /** Instances of the chosen modalities searched. */
  candidates: number;
  /** Of them, those with this model's SR in the PACS. */
  alreadyDone: number;
  /** Pending instances given a new job now. */
  queued: number;
  /** Pending instances whose job was already waiting or running. */
  inQueue: number;
  /** Pending instances whose job failed for good, left in the batch's failures. */
  failed: number;
  /** Failed ones sent round again (first pass of a run). */
  retried: number;
}

/** Redis round trips carry this many instances at a time. */
const CHUNK = 1000;

/**
 * Gives each job id its position in the batch the first time it is seen (the batch's total grows by one), and
 * returns the positions; one script, so two `cxr pacs` feeding one batch never give one position twice.
 */
const POSITIONS = `
local positions = {}
for i, id in ipairs(ARGV) do
  local position = redis.call('HGET', KEYS[2], id)
  if not position then
    position = redis.call('HINCRBY', KEYS[1], 'total', 1) - 1
    redis.call('HSET', KEYS[2], id, position)
  end
  positions[i] = tonumber(position)
end
return positions`;

export class PacsFeed {
  private readonly queue: Queue<BatchJobData>;

  private constructor(
    private readonly redis: Redis,
    private readonly client: DicomWebClient,
    readonly batch: string,
    readonly modelHash: string,
    private readonly modalities: readonly string[],
    private readonly options: PacsFeedOptions,
  ) {
    this.queue = new Queue<BatchJobData>(QUEUE_NAME, { connection: redis });
    this.queue.on('error', () => {}); // connection trouble surfaces as the failed command, with its message
  }

  /** Describes the batch in Redis (a batch of another model under the same name is an error). */
  static async open(redis: Redis, client: DicomWebClient, options: PacsFeedOptions): Promise<PacsFeed> {
    const modalities = options.modalities ?? DEFAULT_MODALITIES;
    if (modalities.length === 0) throw new Error('no modalities to analyse were given');
    const { info, path } = loadModel(options.modelPath);
    const modelHash = await fileSha256(path);
    const batch = checkBatchId(options.batch ?? `pacs-${createHash('sha256').update(`${client.root}\0${modelHash}`).digest('hex').slice(0, 16)}`);
    const keys = batchKeys(batch);
    // listHash marks the batch as a growing one: `cxr batch submit` refuses to reuse its name for a fixed list.
    const created = await redis.hsetnx(keys.meta, 'listHash', 'pacs');
    if (created) {
      await redis.hset(keys.meta, { modelHash, labels: JSON.stringify(info.labels), modelFile: path, options: JSON.stringify({ showRejected: false, store: options.store }), submittedAt: String(Date.now()) });
      await redis.hsetnx(keys.meta, 'total', '0');
    } else {
      const [listHash, existing] = await redis.hmget(keys.meta, 'listHash', 'modelHash');
      if (listHash !== 'pacs') throw new Error(`batch ${batch} is a batch of fixed images (cxr batch submit), not one a PACS feeds: give another --name`);
      if (existing !== null && existing !== modelHash) throw new Error(`batch ${batch} is fed for model sha256 ${String(existing).slice(0, 12)}…, not this one (${modelHash.slice(0, 12)}…): give another --name`);
    }
    return new PacsFeed(redis, client, batch, modelHash, modalities, options);
  }

  /** Every pending instance of the PACS handed over; `retry` also sends those that failed for good round again. */
  async processPending(signal?: AbortSignal, retry = false): Promise<FeedSummary> {
    return this.handOver(await pendingInstances(this.client, this.modalities, this.modelHash), signal, retry);
  }

  /** processPending for the given search results only (new instances a change log named). */
  async processInstances(searched: readonly DicomJson[], signal?: AbortSignal): Promise<FeedSummary> {
    return this.handOver(await pendingAmong(this.client, this.modalities, this.modelHash, searched), signal, false);
  }

  private async handOver({ pending, candidates }: { pending: PendingInstance[]; candidates: number }, signal: AbortSignal | undefined, retry: boolean): Promise<FeedSummary> {
    const summary: FeedSummary = { batch: this.batch, candidates, alreadyDone: candidates - pending.length, queued: 0, inQueue: 0, failed: 0, retried: 0 };
    const keys = batchKeys(this.batch);
    for (let start = 0; start < pending.length && !signal?.aborted; start += CHUNK) {
      const sources = pending.slice(start, start + CHUNK).map(({ ref }): DicomWebSource => ({ kind: 'dicomweb', root: this.client.root, study: ref.study, series: ref.series, sop: ref.sop }));
      const ids = sources.map((source) => jobIdFor(this.batch, source));
      const positions = (await this.redis.eval(POSITIONS, 2, keys.meta, keys.positions, ...ids)) as number[];
      const held = this.redis.pipeline();
      for (const id of ids) held.exists(this.queue.toKey(id));
      const [exists, failures] = await Promise.all([held.exec(), this.redis.hmget(keys.failures, ...ids)]);
      const fresh: ReturnType<typeof queuedJob>[] = [];
      for (const [i, id] of ids.entries()) {
        if (exists?.[i]?.[1] !== 1) {
          const data: BatchJobData = { version: STORE_JOB_VERSION, batch: this.batch, index: positions[i], source: sources[i], modelHash: this.modelHash, options: { showRejected: false, store: this.options.store } };
          fresh.push(queuedJob(id, data, this.options));
        } else if (failures[i] === null) summary.inQueue++;
        else if (retry && (await retryFailed(this.queue, this.redis, keys.failures, id)) === 1) summary.retried++;
        else summary.failed++;
      }
      await this.queue.addBulk(fresh);
      summary.queued += fresh.length;
    }
    return summary;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
