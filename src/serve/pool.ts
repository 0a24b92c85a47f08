/**
 * A fixed pool of inference worker threads with a bounded queue. Each worker holds its own ONNX Runtime sessions
 * and runs one analysis at a time; analyses wait in a FIFO queue of at most `queueLimit` entries, and one more is
 * refused at once (QueueFullError, with a retry estimate) instead of piling up. Every analysis has a deadline from
 * the moment it is submitted: when it passes, the caller gets AnalysisTimeoutError; a waiting analysis leaves the
 * queue, a running one finishes in its worker (ONNX Runtime cannot be interrupted) and its result is dropped.
 * A worker that dies is replaced, and only the analysis it was running fails.
 */
import { Worker } from 'node:worker_threads';
import type { AnalyzeRequest, ExplanationResult, ImageResult, InputFlag, InputVerdict } from './analysis.js';
import type { Finding } from '../inference/findings.js';

export interface WorkerInit {
  modelPath: string;
  threads: number;
}

export type ToWorker = { id: number; bytes: Uint8Array; name: string; request: AnalyzeRequest };

/** What a worker computes for one image; the routes add request id, model and queue time. */
export interface WorkerAnalysis {
  image: ImageResult;
  inputFlags: InputFlag[];
  verdict: InputVerdict;
  findings: Finding[];
  explanations: ExplanationResult[];
  timings: { decodeMs: number; predictMs: number; explainMs: number };
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'init-error'; message: string }
  | { type: 'done'; id: number; result: WorkerAnalysis }
  | { type: 'failed'; id: number; kind: 'image' | 'internal'; message: string };

export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super(`the server is busy (all workers busy and the queue is full); retry in about ${retryAfterSeconds} s`);
  }
}

export class AnalysisTimeoutError extends Error {
  constructor(timeoutMs: number, readonly whileQueued: boolean) {
    super(`the analysis did not finish within ${timeoutMs} ms (${whileQueued ? 'still waiting for a worker' : 'still running'})`);
  }
}

/** The image could not be decoded (the message names the problem). */
export class UnreadableImageError extends Error {}

export class WorkerFailedError extends Error {}

export interface PoolOptions {
  modelPath: string;
  workers: number;
  threadsPerWorker: number;
  queueLimit: number;
  /** Told when a worker stops unexpectedly and is replaced (for logging). */
  onWorkerExit?: (event: { code: number; error?: Error }) => void;
}

export interface PoolStats {
  workers: number;
  busy: number;
  queued: number;
  queueLimit: number;
  completed: number;
  rejected: number;
  timedOut: number;
  /** Mean time a worker spent per analysis, over the last 50. */
  meanServiceMs: number | null;
}

interface Task {
  id: number;
  message: ToWorker;
  resolve: (result: WorkerAnalysis & { queuedMs: number }) => void;
  reject: (error: Error) => void;
  submittedAt: number;
  startedAt?: number;
  timer: NodeJS.Timeout;
  /** The caller already has its answer (timed out); a late result is dropped. */
  abandoned: boolean;
}

interface Slot {
  worker: Worker;
  task: Task | null;
}

const WORKER_URL = new URL('./pool-worker.js', import.meta.url);

export class InferencePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private readonly serviceTimes: number[] = [];
  private nextId = 1;
  private closing = false;
  private counters = { completed: 0, rejected: 0, timedOut: 0 };

  private constructor(private readonly options: PoolOptions) {}

  /** Starts every worker and waits until each has loaded the model; a model that cannot load fails here. */
  static async start(options: PoolOptions): Promise<InferencePool> {
    const pool = new InferencePool(options);
    try {
      await Promise.all(Array.from({ length: options.workers }, () => pool.addWorker()));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /**
   * Queues an analysis. Rejects with QueueFullError at once when the queue is full, with AnalysisTimeoutError
   * when `timeoutMs` passes first, with UnreadableImageError for an image that cannot be decoded.
   */
  analyze(bytes: Uint8Array, name: string, request: AnalyzeRequest, timeoutMs: number): Promise<WorkerAnalysis & { queuedMs: number }> {
    if (this.closing) return Promise.reject(new WorkerFailedError('the server is shutting down'));
    const idle = this.slots.find((s) => s.task === null);
    if (!idle && this.queue.length >= this.options.queueLimit) {
      this.counters.rejected++;
      return Promise.reject(new QueueFullError(this.retryAfterSeconds()));
    }
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const task: Task = {
        id,
        // A private copy: the caller's buffer may be a view into a shared pool, which must not be transferred.
        message: { id, bytes: new Uint8Array(bytes), name, request },
        resolve,
        reject,
        submittedAt: performance.now(),
        abandoned: false,
        timer: setTimeout(() => this.expire(task, timeoutMs), timeoutMs),
      };
      if (idle) this.dispatch(idle, task);
      else this.queue.push(task);
    });
  }

  get stats(): PoolStats {
    const times = this.serviceTimes;
    return {
      workers: this.slots.length,
      busy: this.slots.filter((s) => s.task !== null).length,
      queued: this.queue.length,
      queueLimit: this.options.queueLimit,
      ...this.counters,
      meanServiceMs: times.length ? Math.round(times.reduce((a, b) => a + b, 0) / times.length) : null,
    };
  }

  /** Seconds until a place is likely free: the work ahead divided among the workers. */
  retryAfterSeconds(): number {
    const mean = this.stats.meanServiceMs ?? 1000;
    const ahead = this.queue.length + this.slots.length;
    return Math.min(60, Math.max(1, Math.ceil((mean * ahead) / this.slots.length / 1000)));
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const task of this.queue.splice(0)) this.fail(task, new WorkerFailedError('the server is shutting down'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private addWorker(): Promise<void> {
    const worker = new Worker(WORKER_URL, { workerData: { modelPath: this.options.modelPath, threads: this.options.threadsPerWorker } satisfies WorkerInit });
    return new Promise((resolve, reject) => {
      const onStartExit = (code: number) => reject(new WorkerFailedError(`an inference worker stopped while loading the model (exit code ${code})`));
      worker.once('error', reject);
      worker.once('exit', onStartExit);
      worker.once('message', (message: FromWorker) => {
        worker.off('error', reject);
        worker.off('exit', onStartExit);
        if (message.type === 'init-error') {
          void worker.terminate();
          reject(new Error(message.message));
          return;
        }
        const slot: Slot = { worker, task: null };
        this.slots.push(slot);
        worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
        worker.on('error', (error) => this.onExit(slot, 1, error));
        worker.on('exit', (code) => this.onExit(slot, code));
        this.next(slot);
        resolve();
      });
    });
  }

  private dispatch(slot: Slot, task: Task): void {
    slot.task = task;
    task.startedAt = performance.now();
    slot.worker.postMessage(task.message, [task.message.bytes.buffer as ArrayBuffer]);
  }

  private next(slot: Slot): void {
    const task = this.queue.shift();
    if (task) this.dispatch(slot, task);
  }

  private onMessage(slot: Slot, message: FromWorker): void {
    const task = slot.task;
    if (!task || (message.type !== 'done' && message.type !== 'failed') || message.id !== task.id) return;
    slot.task = null;
    const now = performance.now();
    this.serviceTimes.push(now - task.startedAt!);
    if (this.serviceTimes.length > 50) this.serviceTimes.shift();
    if (!task.abandoned) {
      clearTimeout(task.timer);
      if (message.type === 'done') {
        this.counters.completed++;
        task.resolve({ ...message.result, queuedMs: Math.round((task.startedAt! - task.submittedAt) * 10) / 10 });
      } else {
        task.reject(message.kind === 'image' ? new UnreadableImageError(message.message) : new WorkerFailedError(message.message));
      }
    }
    this.next(slot);
  }

  private onExit(slot: Slot, code: number, error?: Error): void {
    const index = this.slots.indexOf(slot);
    if (index < 0 || this.closing) return;
    this.slots.splice(index, 1);
    if (slot.task) this.fail(slot.task, new WorkerFailedError(`the inference worker stopped (${error?.message ?? `exit code ${code}`})`));
    this.options.onWorkerExit?.({ code, error });
    void slot.worker.terminate();
    this.addWorker().catch((e: Error) => this.options.onWorkerExit?.({ code: 1, error: e }));
  }

  private expire(task: Task, timeoutMs: number): void {
    const queued = this.queue.indexOf(task);
    if (queued >= 0) this.queue.splice(queued, 1);
    this.counters.timedOut++;
    task.abandoned = true;
    task.reject(new AnalysisTimeoutError(timeoutMs, queued >= 0));
  }

  private fail(task: Task, error: Error): void {
    clearTimeout(task.timer);
    task.abandoned = true;
    task.reject(error);
  }
}
