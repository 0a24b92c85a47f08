/**
 * The worker side of `cxr serve --redis`: a `cxr worker` takes the analyses of the servers that share its model
 * from their queue (dispatch-redis-job.ts) and runs each exactly as the in-process pool would (analyze-image.ts),
 * with the model it already holds for batches. A job for another model file is refused for good (never analysed
 * with the wrong model); a job whose upload is gone (the client left, the deadline passed) is skipped, and one
 * running stops between overlays once its upload is deleted.
 */
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Explainer } from '../explain/index.js';
import type { Predictor } from '../inference/predictor.js';
import { analyzeImage } from './analyze-image.js';
import { type AnalysisJobData, type AnalysisOutcome, analysisQueueName, parseAnalysisJob } from './dispatch-redis-job.js';

export interface AnalysisWorkerOptions {
  /** SHA-256 of the worker's model file: it takes this model's queue only, and checks every job against it. */
  modelHash: string;
  predictor: Predictor;
  explainer: Explainer;
  concurrency?: number;
  /** How long a job stays claimed without renewal: a killed worker's job is taken over after this. Default 30 s. */
  lockDurationMs?: number;
  /** What happened, by job id only: for logs. */
  onEvent?: (event: { event: 'analysed' | 'analysis-skipped' | 'analysis-failed'; job: string; ms?: number; reason?: string }) => void;
}

/** How long a finished answer waits in Redis for its server. */
const RESULT_TTL_MS = 60_000;
/** How often a running analysis checks that someone still waits for it. */
const WANTED_POLL_MS = 250;

class NoLongerWanted extends Error {}

export class AnalysisWorker {
  private constructor(private readonly worker: Worker<AnalysisJobData>) {}

  static async start(redis: Redis, options: AnalysisWorkerOptions): Promise<AnalysisWorker> {
    const lockDuration = options.lockDurationMs ?? 30_000;
    const worker = new Worker<AnalysisJobData>(analysisQueueName(options.modelHash), (job) => run(job, redis, options), {
      connection: redis,
      concurrency: options.concurrency ?? 1,
      lockDuration,
      stalledInterval: lockDuration,
      maxStalledCount: 2,
    });
    worker.on('failed', (job, error) => options.onEvent?.({ event: 'analysis-failed', job: job?.id ?? '?', reason: error.message }));
    worker.on('error', () => {}); // connection trouble: the batch worker on the same connection reports it
    await worker.waitUntilReady();
    return new AnalysisWorker(worker);
  }

  /** Stops taking analyses and waits for the running ones; `force` hands them back instead. */
  close(force = false): Promise<void> {
    return this.worker.close(force);
  }
}

async function run(job: Job<AnalysisJobData>, redis: Redis, options: AnalysisWorkerOptions): Promise<void> {
  const id = job.id ?? '?';
  let data: AnalysisJobData;
  try {
    data = parseAnalysisJob(job.data);
  } catch (error) {
    throw new UnrecoverableError((error as Error).message);
  }
  if (data.modelHash !== options.modelHash) {
    throw new UnrecoverableError(`refused: the server's model is sha256 ${data.modelHash.slice(0, 12)}…, this worker has ${options.modelHash.slice(0, 12)}…; an analysis is never run with another model`);
  }
  const bytes = Date.now() > data.deadline ? null : await redis.getBuffer(data.uploadKey);
  if (bytes === null) return options.onEvent?.({ event: 'analysis-skipped', job: id, reason: 'nobody waits for it any more' });
  const startedAt = Date.now();
  let wanted = true;
  const poll = setInterval(() => {
    redis.exists(data.uploadKey).then((n) => (wanted = n === 1), () => undefined);
  }, WANTED_POLL_MS);
  let outcome: AnalysisOutcome;
  try {
    const checkWanted = () => {
      if (!wanted) throw new NoLongerWanted();
    };
    outcome = { analysis: await analyzeImage(options.predictor, options.explainer, bytes, data.name, data.request, checkWanted), startedAt };
  } catch (error) {
    if (error instanceof NoLongerWanted) return options.onEvent?.({ event: 'analysis-skipped', job: id, reason: 'stopped: nobody waits for it any more' });
    outcome = { error: { kind: (error as { kind?: string }).kind === 'image' ? 'image' : 'internal', message: (error as Error).message }, startedAt };
  } finally {
    clearInterval(poll);
  }
  await redis.set(data.resultKey, JSON.stringify(outcome), 'PX', RESULT_TTL_MS);
  options.onEvent?.({ event: 'analysed', job: id, ms: Date.now() - startedAt });
}
