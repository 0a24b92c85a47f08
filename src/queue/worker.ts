/**
 * A batch worker: loads the model once, then takes jobs from the shared queue until closed. Each image is decoded
 * and predicted exactly as `cxr predict` does (the same decoder and Predictor); its result is written to the
 * batch's results in Redis under the job's id, so a job run twice (its worker died after the write) still leaves
 * one result. A job for another model file is refused for good rather than scored with the wrong model. A PACS
 * instance's job may also ask for its result to be stored back into the PACS, as `cxr pacs` stores it.
 */
import { readFile } from 'node:fs/promises';
import { type Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { loadModel } from '../api.js';
import { Explainer } from '../explain/index.js';
import { decodeImage } from '../imaging/index.js';
import { Predictor } from '../inference/predictor.js';
import type { Model } from '../onnx/index.js';
import type { Prediction } from '../inference/predictor.js';
import { Analyser, modelIdentity } from '../pacs/analyse.js';
import { DicomWebClient } from '../pacs/dicomweb.js';
import { processInstance } from '../pacs/processor.js';
import type { ModelIdentity } from '../pacs/sr.js';
import { writeHeatmaps } from './heatmaps.js';
import { type BatchJobData, type DicomWebSource, type JobSource, QUEUE_NAME, type StoreRequest, batchKeys, parseJobData, sourceLocation } from './job.js';
import type { StoredFailure, StoredResult } from './results.js';

export interface BatchWorkerOptions {
  /** The model file; default: the embedded default model. Only batches submitted for this file are taken. */
  modelPath?: string;
  /** Jobs in flight at once in this process; default 1. */
  concurrency?: number;
  /** ONNX Runtime threads; default: all cores (give 1 to each of several workers on one machine). */
  threads?: number;
  /**
   * How long a job stays claimed without its worker renewing the claim; a killed worker's job goes back to the
   * queue after this. Default 30 s.
   */
  lockDurationMs?: number;
  /** What happened, by job id only (never file names): for logs. */
  onEvent?: (event: WorkerEvent) => void;
}

export type WorkerEvent =
  | { event: 'completed'; job: string; ms: number }
  | { event: 'failed'; job: string; attempt: number; attempts: number; final: boolean; reason: string }
  | { event: 'stalled'; job: string }
  | { event: 'error'; message: string };

/** The model, loaded once per worker: its predictor, and its explainer when a batch first asks for heatmaps. */
class Scorer {
  private explainer?: Promise<Explainer>;

  constructor(
    /** The model as the results stored in a PACS name it (its hash is the one jobs are checked against). */
    readonly identity: ModelIdentity,
    readonly predictor: Predictor,
    private readonly model: Model,
    private readonly source: string,
    private readonly threads: number | undefined,
  ) {}

  get hash(): string {
    return this.identity.sha256;
  }

  explainerFor(): Promise<Explainer> {
    this.explainer ??= Explainer.create(this.model, { threads: this.threads, source: this.source });
    return this.explainer;
  }

  async close(): Promise<void> {
    await this.predictor.close();
    await (await this.explainer)?.close();
  }
}

export class BatchWorker {
  private constructor(
    readonly modelHash: string,
    private readonly worker: Worker<BatchJobData>,
    private readonly queue: Queue<BatchJobData>,
    private readonly scorer: Scorer,
  ) {}

  static async start(redis: Redis, options: BatchWorkerOptions = {}): Promise<BatchWorker> {
    const loaded = loadModel(options.modelPath);
    const { model, path } = loaded;
    const predictor = await Predictor.create(model, { threads: options.threads, batchSize: 1, source: path });
    const scorer = new Scorer(modelIdentity(loaded), predictor, model, path, options.threads);
    const emit = options.onEvent ?? (() => {});
    const lockDuration = options.lockDurationMs ?? 30_000;
    const worker = new Worker<BatchJobData>(QUEUE_NAME, (job) => runJob(job, redis, scorer), {
      connection: redis,
      concurrency: options.concurrency ?? 1,
      lockDuration,
      // Dead workers' jobs are looked for as often as a claim can expire, so none waits two lock periods.
      stalledInterval: lockDuration,
      // A Redis restart can cost a running job its claim once; a job that keeps killing its workers fails.
      maxStalledCount: 2,
    });
    worker.on('completed', (job) => emit({ event: 'completed', job: job.id ?? '?', ms: (job.finishedOn ?? Date.now()) - (job.processedOn ?? Date.now()) }));
    worker.on('failed', (job, error) => {
      if (!job) return;
      const attempts = job.opts.attempts ?? 1;
      const final = isFinal(job, error, 0);
      emit({ event: 'failed', job: job.id ?? '?', attempt: job.attemptsMade, attempts, final, reason: error.message });
      // BullMQ fails a job itself, without running it, once its workers have died on it too often (a poison image):
      // the processor never saw it, so its failure is recorded here, unless the processor's own record exists.
      if (final) recordFailure(redis, job, error, true).catch((e: Error) => emit({ event: 'error', message: e.message }));
    });
    worker.on('stalled', (job) => emit({ event: 'stalled', job }));
    worker.on('error', (error) => emit({ event: 'error', message: error.message }));
    const queue = new Queue<BatchJobData>(QUEUE_NAME, { connection: redis });
    queue.on('error', (error) => emit({ event: 'error', message: error.message }));
    await worker.waitUntilReady();
    return new BatchWorker(scorer.hash, worker, queue, scorer);
  }

  /** The model's predictor, shared with the server analyses `cxr worker` also takes, so the model is loaded once. */
  get predictor(): Predictor {
    return this.scorer.predictor;
  }

  /** The model's explainer (created on first use), shared the same way. */
  explainer(): Promise<Explainer> {
    return this.scorer.explainerFor();
  }

  /**
   * Resolves once the queue has nothing waiting, delayed or running anywhere (checked twice, `pollMs` apart), so a
   * worker told to exit when idle still outlives another worker's job that may come back after its worker died.
   */
  async whenIdle(pollMs = 1000): Promise<void> {
    let quietPolls = 0;
    while (quietPolls < 2) {
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      const counts = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused', 'waiting-children');
      quietPolls = Object.values(counts).every((n) => n === 0) ? quietPolls + 1 : 0;
    }
  }

  /** Stops taking jobs and waits for the running ones; `force` hands them back instead (claimed until their lock expires). */
  async close(force = false): Promise<void> {
    await this.worker.close(force);
    await this.queue.close();
    await this.scorer.close();
  }
}

/** Whether this failure is the job's last: refused for good, or no tries left (attemptsMade counts earlier ones). */
function isFinal(job: Job<BatchJobData>, error: Error, attemptsBefore: number): boolean {
  return error instanceof UnrecoverableError || error.name === 'UnrecoverableError' || job.attemptsMade + attemptsBefore >= (job.opts.attempts ?? 1);
}

async function runJob(job: Job<BatchJobData>, redis: Redis, scorer: Scorer): Promise<void> {
  const modelHash = scorer.hash;
  const id = job.id ?? '';
  try {
    let data: BatchJobData;
    try {
      data = parseJobData(job.data);
    } catch (error) {
      throw new UnrecoverableError((error as Error).message);
    }
    if (data.modelHash !== modelHash) {
      throw new UnrecoverableError(`refused: the batch is for model sha256 ${data.modelHash.slice(0, 12)}…, this worker has ${modelHash.slice(0, 12)}…; one batch is never scored with two models (start workers with the batch's --model)`);
    }
    const keys = batchKeys(data.batch);
    await redis.hsetnx(keys.meta, 'startedAt', String(Date.now()));
    const source = data.source;
    const store = data.options.store;
    const instance = source.kind === 'dicomweb' ? { study: source.study, series: source.series, sop: source.sop } : undefined;
    let result: StoredResult;
    if (store && source.kind === 'dicomweb') {
      result = { index: data.index, file: sourceLocation(source), prediction: await analyseAndStore(source, store, scorer), instance };
    } else {
      // Named "image" in messages: the path stays out of reasons and logs (the job id is beside them).
      const image = await decodeImage(await readSource(source), 'image');
      const [prediction] = await scorer.predictor.predict([image], { showRejected: data.options.showRejected });
      result = { index: data.index, file: sourceLocation(source), prediction, ...(instance ? { instance } : {}) };
      const heatmaps = data.options.heatmaps;
      if (heatmaps && prediction.verdict !== 'rejected') {
        result.heatmaps = await writeHeatmaps(await scorer.explainerFor(), image, prediction, heatmaps, data.index, source.kind === 'file' ? source.path : `${source.sop}.dcm`);
      }
    }
    await redis.multi().hset(keys.results, id, JSON.stringify(result)).hdel(keys.failures, id).hset(keys.meta, 'finishedAt', String(Date.now())).exec();
  } catch (error) {
    // The failure is recorded with the batch before BullMQ files the job as failed, so `batch status` sees every
    // image that will get no result, with the reason (a crash in between leaves the job to run again).
    if (isFinal(job, error as Error, 1)) await recordFailure(redis, job, error as Error, false);
    throw error;
  }
}

/** BullMQ's reason for a job whose workers kept dying on it. */
const STALLED_TOO_OFTEN = 'job stalled more than allowable limit';

/** Keeps a job's last failure with its batch; `ifAbsent` leaves an existing record (the processor's) as it is. */
async function recordFailure(redis: Redis, job: Job<BatchJobData>, error: Error, ifAbsent: boolean): Promise<void> {
  const keys = batchKeys(typeof job.data?.batch === 'string' ? job.data.batch : 'unknown');
  const reason = error.message === STALLED_TOO_OFTEN ? `every worker that took it stopped mid-job (killed, or out of memory?) until the queue gave up (BullMQ: ${STALLED_TOO_OFTEN})` : error.message;
  const failure: StoredFailure = { index: typeof job.data?.index === 'number' ? job.data.index : -1, file: job.data?.source ? sourceLocation(job.data.source) : '', reason, attempts: ifAbsent ? job.attemptsMade : job.attemptsMade + 1 };
  const write = redis.multi();
  if (ifAbsent) write.hsetnx(keys.failures, job.id ?? '', JSON.stringify(failure));
  else write.hset(keys.failures, job.id ?? '', JSON.stringify(failure));
  await write.hset(keys.meta, 'finishedAt', String(Date.now())).exec();
}

/**
 * A PACS instance analysed and its result stored back exactly as `cxr pacs` does it (the same code: processInstance,
 * with this worker's predictor and explainer); its prediction, for the batch's results. An instance that cannot be
 * decoded gets the SR saying so, as with `cxr pacs`, and then fails for good with the decoder's reason, as an
 * undecodable file of a batch does; one the PACS no longer holds fails for good too.
 */
async function analyseAndStore(source: DicomWebSource, store: StoreRequest, scorer: Scorer): Promise<Prediction> {
  const heatmaps = store.heatmaps === 'none' ? undefined : { explainer: await scorer.explainerFor(), method: store.heatmaps };
  const analyser = Analyser.borrowing(scorer.identity, scorer.predictor, heatmaps);
  const done = await processInstance(new DicomWebClient(source.root), analyser, source, store.fhir);
  if (!done) throw new UnrecoverableError('the instance is no longer in the PACS (deleted since it was queued?)');
  const { outcome } = done.analysis;
  if (outcome.kind === 'undecodable') throw new UnrecoverableError(`${outcome.reason} (the SR stored in the PACS says so)`);
  return outcome.prediction;
}

/** The image's bytes: a file read, or a PACS instance retrieved by WADO-RS (errors name the request kind, never UIDs). */
function readSource(source: JobSource): Promise<Uint8Array> {
  if (source.kind === 'file') return readImage(source.path);
  return new DicomWebClient(source.root).retrieveInstance(source);
}

/** The file's bytes; a read error names the kind (ENOENT ...), not the path, since messages reach logs. */
async function readImage(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? 'image file not found' : `cannot read the image file (${code ?? (error as Error).message})`);
  }
}
