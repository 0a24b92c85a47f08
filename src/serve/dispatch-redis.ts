/**
 * `cxr serve --redis URL`: analyses go to a shared fleet of `cxr worker`s through a BullMQ queue instead of this
 * process's worker threads, so any number of servers behind a load balancer share one fleet.
 *
 * The upload's bytes go to Redis in a key that expires after the request's deadline (so with Redis's append-only
 * file on, uploads pass through it for as long as they wait); the answer comes back the same way, announced by
 * BullMQ's queue events, and both keys are deleted once read. Back-pressure works as with the pool: the admission
 * gate's room comes from the shared queue's depth (every server's waiting and running analyses) against this
 * server's queue limit plus the workers connected, read at every queue event and at least every REFRESH_MS; servers
 * racing for the last places may overshoot the limit by what they admit within that interval. No worker connected
 * is a 503 at once; an analysis not finished by its deadline a 504 (a worker killed mid-job hands its job on when its
 * lock expires, within the deadline if another worker is there); a client that leaves has its job removed (queued)
 * or its upload deleted, which a worker takes as "stop" (running, checked between overlays).
 */
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis, displayRedisUrl, fileSha256 } from '../queue/index.js';
import type { AnalyzeRequest } from './analysis.js';
import { ANALYSIS_JOB_VERSION, type AnalysisJobData, type AnalysisOutcome, analysisKeys, analysisQueueName } from './dispatch-redis-job.js';
import {
  AnalysisCancelledError,
  AnalysisTimeoutError,
  type AnalyzeCallOptions,
  type PoolStats,
  QueueFullError,
  UnreadableImageError,
  type WorkerAnalysis,
  WorkerFailedError,
} from './pool.js';

export interface RedisDispatchOptions {
  redisUrl: string;
  modelPath: string;
  /** Analyses allowed to wait in the shared queue (every server's) before this server refuses more. */
  queueLimit: number;
  /** Told while Redis cannot be reached (the message names the server, never its password). */
  onRetry?: (message: string) => void;
}

/** How often the shared queue's depth and worker count are read when no event says they changed. */
const REFRESH_MS = 250;
/** Keys outlive the request's deadline by this much, for a worker finishing just in time. */
const KEY_GRACE_MS = 30_000;
const EWMA_ALPHA = 0.3;
const UNMEASURED_MS = 1000;

interface Pending {
  submittedAt: number;
  started: boolean;
  settle: (outcome: { ok: WorkerAnalysis & { queuedMs: number } } | { error: Error }) => void;
}

export class RedisDispatcher {
  private readonly pending = new Map<string, Pending>();
  private readonly roomListeners = new Set<() => void>();
  private shared = { waiting: 0, active: 0, workers: 0 };
  private meanServiceMs: number | undefined;
  private counters = { completed: 0, rejected: 0, timedOut: 0, cancelled: 0 };
  private refreshing: Promise<void> | undefined;
  private closing = false;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly options: RedisDispatchOptions,
    private readonly redis: Redis,
    private readonly eventsConnection: Redis,
    readonly modelHash: string,
    private readonly queue: Queue<AnalysisJobData>,
    private readonly events: QueueEvents,
  ) {
    events.on('active', ({ jobId }) => {
      const entry = this.pending.get(jobId);
      if (entry) entry.started = true;
      this.refresh();
    });
    events.on('completed', ({ jobId }) => {
      if (this.pending.has(jobId)) void this.collect(jobId);
      this.refresh();
    });
    events.on('failed', ({ jobId, failedReason }) => {
      this.pending.get(jobId)?.settle({ error: new WorkerFailedError(`the analysis worker failed: ${failedReason}`) });
      this.refresh();
    });
    events.on('waiting', () => this.refresh());
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  static async start(options: RedisDispatchOptions): Promise<RedisDispatcher> {
    const modelHash = await fileSha256(options.modelPath);
    const redis = await connectRedis(options.redisUrl, { onRetry: options.onRetry });
    const eventsConnection = redis.duplicate();
    eventsConnection.on('error', () => {}); // the main connection's retries say it once
    const name = analysisQueueName(modelHash);
    const queue = new Queue<AnalysisJobData>(name, { connection: redis });
    queue.on('error', () => {}); // a failed command surfaces where it was sent
    const events = new QueueEvents(name, { connection: eventsConnection });
    events.on('error', () => {});
    await events.waitUntilReady();
    const dispatcher = new RedisDispatcher(options, redis, eventsConnection, modelHash, queue, events);
    await dispatcher.refresh();
    return dispatcher;
  }

  analyze(bytes: Uint8Array, name: string, request: AnalyzeRequest, { timeoutMs, signal }: AnalyzeCallOptions): Promise<WorkerAnalysis & { queuedMs: number }> {
    if (this.closing) return Promise.reject(new WorkerFailedError('the server is shutting down'));
    if (signal?.aborted) return Promise.reject(new AnalysisCancelledError(true));
    // A worker may have connected since the last read: look again before refusing for want of one.
    if (this.shared.workers === 0) return this.refresh().then(() => this.submit(bytes, name, request, { timeoutMs, signal }));
    return this.submit(bytes, name, request, { timeoutMs, signal });
  }

  private submit(bytes: Uint8Array, name: string, request: AnalyzeRequest, { timeoutMs, signal }: AnalyzeCallOptions): Promise<WorkerAnalysis & { queuedMs: number }> {
    if (this.shared.workers === 0) {
      this.counters.rejected++;
      return Promise.reject(new QueueFullError(this.retryAfterSeconds(), `no analysis worker for this server's model is connected to Redis at ${displayRedisUrl(this.options.redisUrl)} (start \`cxr worker --redis URL\` with the same model file)`));
    }
    if (this.depth >= this.capacity) {
      this.counters.rejected++;
      return Promise.reject(new QueueFullError(this.retryAfterSeconds()));
    }
    const id = randomUUID();
    const keys = analysisKeys(id);
    return new Promise((resolve, reject) => {
      const entry: Pending = {
        submittedAt: Date.now(),
        started: false,
        settle: (outcome) => {
          if (!this.pending.delete(id)) return;
          clearTimeout(deadline);
          signal?.removeEventListener('abort', onAbort);
          // Nothing left for a worker to do: its upload goes (a running job sees that and stops), a queued job too.
          this.redis.del(keys.uploadKey, keys.resultKey).catch(() => undefined);
          if (!entry.started) this.queue.remove(id).catch(() => undefined);
          this.announceRoom();
          if ('ok' in outcome) resolve(outcome.ok);
          else reject(outcome.error);
        },
      };
      const deadline = setTimeout(() => {
        this.counters.timedOut++;
        entry.settle({ error: new AnalysisTimeoutError(timeoutMs, !entry.started) });
      }, timeoutMs);
      const onAbort = () => {
        this.counters.cancelled++;
        entry.settle({ error: new AnalysisCancelledError(!entry.started) });
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      // Registered before the job exists, so no event about it can be missed.
      this.pending.set(id, entry);
      const data: AnalysisJobData = { version: ANALYSIS_JOB_VERSION, modelHash: this.modelHash, name, request, ...keys, deadline: entry.submittedAt + timeoutMs };
      this.redis
        .set(keys.uploadKey, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'PX', timeoutMs + KEY_GRACE_MS)
        // A client that left while its upload was being stored gets no job, and its upload goes.
        .then(async () => {
          if (this.pending.has(id)) await this.queue.add('analyze', data, { jobId: id, attempts: 1, removeOnComplete: true, removeOnFail: true });
          else await this.redis.del(keys.uploadKey);
        })
        .catch((error: Error) => entry.settle({ error: new QueueFullError(this.retryAfterSeconds(), `the analysis queue at ${displayRedisUrl(this.options.redisUrl)} cannot be reached (${error.message})`) }));
    });
  }

  /** Reads a finished job's answer and hands it to its request. */
  private async collect(id: string): Promise<void> {
    const entry = this.pending.get(id);
    if (!entry) return;
    const { resultKey } = analysisKeys(id);
    let outcome: AnalysisOutcome | undefined;
    try {
      const json = await this.redis.get(resultKey);
      outcome = json === null ? undefined : (JSON.parse(json) as AnalysisOutcome);
    } catch (error) {
      return entry.settle({ error: new WorkerFailedError(`the analysis finished but its answer cannot be read from Redis: ${(error as Error).message}`) });
    }
    if (!outcome) return entry.settle({ error: new WorkerFailedError('the analysis finished but left no answer (expired, or the worker was cancelled)') });
    if ('error' in outcome) {
      return entry.settle({ error: outcome.error.kind === 'image' ? new UnreadableImageError(outcome.error.message) : new WorkerFailedError(outcome.error.message) });
    }
    const { analysis, startedAt } = outcome;
    const serviceMs = analysis.timings.decodeMs + analysis.timings.predictMs + analysis.timings.explainMs;
    this.meanServiceMs = this.meanServiceMs === undefined ? serviceMs : this.meanServiceMs + EWMA_ALPHA * (serviceMs - this.meanServiceMs);
    this.counters.completed++;
    // Clocks of different machines: a skew never makes the wait negative.
    entry.settle({ ok: { ...analysis, queuedMs: Math.max(0, startedAt - entry.submittedAt) } });
  }

  /** Reads the shared queue's depth and worker count (once at a time; callers during a read share it). */
  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const [counts, workers] = await Promise.all([this.queue.getJobCounts('waiting', 'prioritized', 'active'), this.queue.getWorkersCount()]);
        this.shared = { waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0), active: counts.active ?? 0, workers };
      } catch {
        // Redis away: the last counts stand; submissions say what is wrong.
      } finally {
        this.refreshing = undefined;
      }
      this.announceRoom();
    })();
    return this.refreshing;
  }

  /** Analyses in the shared queue, at least this server's own (which the last read may predate). */
  private get depth(): number {
    return Math.max(this.shared.waiting + this.shared.active, this.pending.size);
  }

  /** Every worker busy and `queueLimit` waiting. */
  private get capacity(): number {
    return this.options.queueLimit + this.shared.workers;
  }

  get room(): number {
    // With no worker, requests are admitted and refused by analyze() with the reason, not left to wait.
    return this.shared.workers === 0 ? Math.max(1, this.options.queueLimit) : Math.max(0, this.capacity - this.depth);
  }

  get full(): boolean {
    return this.shared.workers > 0 && this.depth >= this.capacity;
  }

  get saturated(): boolean {
    return this.shared.waiting > 0 || this.full;
  }

  get stats(): PoolStats {
    return {
      workers: this.shared.workers,
      busy: this.shared.active,
      queued: this.shared.waiting,
      queueLimit: this.options.queueLimit,
      ...this.counters,
      recycled: 0,
      retired: 0,
      rssMb: Math.round(process.memoryUsage.rss() / 2 ** 20),
      meanServiceMs: this.meanServiceMs === undefined ? null : Math.round(this.meanServiceMs),
      estimatedWaitMs: Math.round(this.estimatedWaitMs()),
    };
  }

  onRoom(listener: () => void): void {
    this.roomListeners.add(listener);
  }

  countRejected(): void {
    this.counters.rejected++;
  }

  /** The shared queue's work at the measured cost per analysis, shared among the workers. */
  private estimatedWaitMs(): number {
    return (this.depth * (this.meanServiceMs ?? UNMEASURED_MS)) / Math.max(1, this.shared.workers);
  }

  retryAfterSeconds(): number {
    return Math.min(3600, Math.max(1, Math.ceil(this.estimatedWaitMs() / 1000)));
  }

  private announceRoom(): void {
    for (const listener of this.roomListeners) listener();
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    for (const entry of [...this.pending.values()]) entry.settle({ error: new WorkerFailedError('the server is shutting down') });
    await this.refreshing;
    await this.events.close();
    await this.queue.close();
    this.eventsConnection.disconnect();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
