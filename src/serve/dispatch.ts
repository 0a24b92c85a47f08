/**
 * Where the server's analyses run: the extension point between the routes and the work. Two dispatchers answer
 * the same calls: the in-process pool of worker threads (pool.ts, the default) and a shared fleet of `cxr worker`s
 * behind a Redis queue (dispatch-redis.ts, `cxr serve --redis URL`), so several servers behind a load balancer
 * share one fleet. The routes, the admission gate and /healthz only see this interface.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { AnalyzeRequest } from './analysis.js';
import { RedisDispatcher } from './dispatch-redis.js';
import type { ResolvedServeOptions } from './options.js';
import { type AnalyzeCallOptions, InferencePool, type PoolStats, type WorkerAnalysis } from './pool.js';

export interface AnalysisDispatcher {
  /**
   * Runs one analysis. Rejects with QueueFullError when there is no room (or no worker), AnalysisTimeoutError when
   * the deadline passes first, AnalysisCancelledError when the signal aborts first, UnreadableImageError for an
   * image that cannot be decoded (all from pool.ts).
   */
  analyze(bytes: Uint8Array, name: string, request: AnalyzeRequest, options: AnalyzeCallOptions): Promise<WorkerAnalysis & { queuedMs: number }>;
  /** Analyses that would be taken now without refusing one (what the admission gate hands out). */
  readonly room: number;
  /** One more analysis would be refused. */
  readonly full: boolean;
  /** Analyses are waiting because every worker is busy. */
  readonly saturated: boolean;
  readonly stats: PoolStats;
  /** Calls `listener` whenever room may have appeared. */
  onRoom(listener: () => void): void;
  /** Counts an analysis refused before it was submitted (by the admission gate). */
  countRejected(): void;
  /** Seconds until a place is likely free (Retry-After), at least 1. */
  retryAfterSeconds(): number;
  close(): Promise<void>;
}

export interface DispatchContext {
  modelPath: string;
  options: ResolvedServeOptions;
  log: FastifyBaseLogger;
}

const DISPATCHERS = {
  pool: ({ modelPath, options, log }: DispatchContext): Promise<AnalysisDispatcher> =>
    InferencePool.start({
      modelPath,
      workers: options.workers,
      threadsPerWorker: options.threadsPerWorker,
      queueLimit: options.queueLimit,
      onWorkerExit: ({ code, error }) => log.error({ code, err: error }, 'an inference worker stopped; starting another'),
      workerMaxRssMb: options.workerMaxRssMb,
      onWorkerRetired: ({ rssMb, limitMb }) => log.info({ rssMb, limitMb }, 'memory above the worker mark after an analysis; replacing that worker'),
    }),
  redis: ({ modelPath, options, log }: DispatchContext): Promise<AnalysisDispatcher> =>
    RedisDispatcher.start({ redisUrl: options.redisUrl!, modelPath, queueLimit: options.queueLimit, onRetry: (message) => log.warn(message) }),
} as const;

export type DispatcherKind = keyof typeof DISPATCHERS;

/** The dispatcher the options choose: the Redis fleet when a Redis URL is given, else the in-process pool. */
export function dispatcherKind(options: ResolvedServeOptions): DispatcherKind {
  return options.redisUrl === undefined ? 'pool' : 'redis';
}

export function startDispatcher(context: DispatchContext): Promise<AnalysisDispatcher> {
  return DISPATCHERS[dispatcherKind(context.options)](context);
}
