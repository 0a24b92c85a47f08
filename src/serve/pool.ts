/**
 * A fixed pool of inference worker threads with a bounded queue. Each worker holds its own ONNX Runtime sessions
 * and runs one analysis at a time; analyses wait in a FIFO queue of at most `queueLimit` entries, and one more is
 * refused at once (QueueFullError, with a retry estimate from the measured cost of the work ahead) instead of piling
 * up. Every analysis has a deadline from the moment it is submitted and may be cancelled by its caller (an
 * AbortSignal: the HTTP client went away). Either way a waiting analysis leaves the queue, and a running one is
 * told to stop through memory shared with its worker, which checks it before and after every ONNX Runtime run
 * (an occlusion map is hundreds of them) and between overlays, so the worker is free again within one forward
 * pass. Terminating the worker instead is not safe while ONNX Runtime is inside a run (the process aborts when the
 * run completes into a torn-down thread), so that is only the fallback for a worker that has not stopped after
 * CANCEL_GRACE_MS and is not inside a run; it is then replaced. A worker that dies is replaced too, and only the
 * analysis it was running fails.
 *
 * Slow work never takes every worker: an analysis asking for occlusion (hundreds of forward passes), or of a kind
 * measured to take SLOW_MS or more, may run on at most workers - 1 workers (with 2 or more), and a quick analysis
 * queued behind slow ones starts first on the worker kept for it. A flood of occlusion requests then delays
 * slow work only, not every client's (bench/results/serve.json, occlusion_flood). The queue limit counts both.
 *
 * Memory high-water mark (`workerMaxRssMb`): worker threads share one process, so a worker's own resident memory
 * cannot be told apart from the others'. After each analysis the process's RSS is read; above the mark, the worker
 * that just finished is retired before it takes another job (never during one): terminated, which releases its ONNX
 * Runtime sessions and arenas, its V8 heap and its decoders' buffers, and replaced by a fresh one. One worker is
 * retired at a time, and at most one per RETIRE_INTERVAL_MS, so the others keep serving while the replacement loads
 * the model and a working set that sits near the mark does not make every analysis pay for a model load. Freed memory only goes back
 * to the system when the allocator returns it, which is why `cxr serve` runs with serving malloc settings
 * (bin/cxr.js). A mark below the RSS of a freshly started pool would retire a worker after every analysis; start()
 * refuses it.
 */
import { Worker } from 'node:worker_threads';
import type { AnalyzeRequest, ExplanationResult, ImageResult, InputFlag, InputVerdict } from './analysis.js';
import type { Finding } from '../outputs/findings.js';

export interface WorkerInit {
  modelPath: string;
  threads: number;
  /** Shared Int32Array: [CONTROL_CANCEL] the id of the analysis to stop, [CONTROL_IN_RUN] 1 while inside an ONNX Runtime run. */
  control: SharedArrayBuffer;
}

export const CONTROL_CANCEL = 0;
export const CONTROL_IN_RUN = 1;

export type ToWorker = { id: number; bytes: Uint8Array; name: string; request: AnalyzeRequest };

/** What a worker computes for one image; the routes add request id, model and queue time. */
export interface WorkerAnalysis {
  image: ImageResult;
  inputFlags: InputFlag[];
  verdict: InputVerdict;
  findings: Finding[];
  explanations: ExplanationResult[];
  /** The film as a PNG data: URL, when the request asked for it (reports). */
  filmPng?: string;
  timings: { decodeMs: number; predictMs: number; explainMs: number };
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'init-error'; message: string }
  | { type: 'done'; id: number; result: WorkerAnalysis }
  | { type: 'failed'; id: number; kind: 'image' | 'internal' | 'cancelled'; message: string }
  /** Another ONNX Runtime run of analysis `id` finished (`runs` so far): slow explanations report as they go. */
  | { type: 'progress'; id: number; runs: number };

/** How far a running analysis is: ONNX Runtime runs done (a batch of noisy copies, path points, masks...). */
export interface AnalysisProgress {
  runs: number;
  /** Since the analysis left the queue. */
  elapsedMs: number;
}

/** No room for the analysis now (503 + Retry-After); the message says why when it is not a full queue. */
export class QueueFullError extends Error {
  constructor(
    readonly retryAfterSeconds: number,
    message = `the server is busy (all workers busy and the queue is full); retry in about ${retryAfterSeconds} s`,
  ) {
    super(message);
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

/** The caller cancelled the analysis (its client disconnected). */
export class AnalysisCancelledError extends Error {
  constructor(readonly whileQueued: boolean) {
    super(`the analysis was cancelled (${whileQueued ? 'while waiting for a worker' : 'while running; its worker was replaced'})`);
  }
}

export interface AnalyzeCallOptions {
  /** Wall-clock budget from submission (queue wait included). */
  timeoutMs: number;
  /** Aborting it cancels the analysis: dropped from the queue, or its worker terminated and replaced. */
  signal?: AbortSignal;
  /** Told after each ONNX Runtime run of the analysis, in order; never after it settled. */
  onProgress?: (progress: AnalysisProgress) => void;
}

export interface PoolOptions {
  modelPath: string;
  workers: number;
  threadsPerWorker: number;
  queueLimit: number;
  /** Told when a worker stops unexpectedly and is replaced (for logging). */
  onWorkerExit?: (event: { code: number; error?: Error }) => void;
  /** Process RSS in MB above which a worker that finished an analysis is replaced before its next one; default: never. */
  workerMaxRssMb?: number;
  /** Told when a worker is retired at the memory high-water mark (for logging). */
  onWorkerRetired?: (event: { rssMb: number; limitMb: number }) => void;
}

export interface PoolStats {
  workers: number;
  busy: number;
  queued: number;
  queueLimit: number;
  completed: number;
  rejected: number;
  timedOut: number;
  /** Analyses cancelled by their caller (client gone), queued or running. */
  cancelled: number;
  /** Workers terminated to stop a running analysis (deadline passed or client gone) and replaced. */
  recycled: number;
  /** Workers retired between analyses because the process's RSS was above the high-water mark, and replaced. */
  retired: number;
  /** Resident memory of the whole server process now, in MB. */
  rssMb: number;
  /** Exponentially weighted mean time a worker spent per analysis (all kinds of request). */
  meanServiceMs: number | null;
  /** How long a new analysis would wait for a worker: the estimated cost of the queued and running work per worker. */
  estimatedWaitMs: number;
}

interface Task {
  id: number;
  message: ToWorker;
  /** What kind of work this is (the explanation methods asked for), for the cost estimates. */
  costKey: string;
  signal?: AbortSignal;
  onAbort?: () => void;
  onProgress?: (progress: AnalysisProgress) => void;
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
  control: Int32Array;
}

/** How long a worker told to stop an analysis has before it is terminated (when not inside a run) and replaced. */
const CANCEL_GRACE_MS = 5000;

/**
 * At most one worker is retired at the memory mark per this interval: where the server's working set itself sits
 * near the mark, retiring after every analysis would halve throughput (measured) and give little back.
 */
const RETIRE_INTERVAL_MS = 30_000;

/** An analysis of a kind measured to take this long or longer is slow work (at most workers - 1 workers). */
const SLOW_MS = 2000;

/** Weight of the newest duration in the moving averages. */
const EWMA_ALPHA = 0.3;
/** Assumed duration of an analysis of a kind never measured yet. */
const UNMEASURED_MS = 1000;

const WORKER_URL = new URL('./pool-worker.js', import.meta.url);

export class InferencePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  /** EWMA of the service time per kind of work (costKey), and over all work under ''. */
  private readonly serviceMs = new Map<string, number>();
  /** Workers being started (replacements included). */
  private starting = 0;
  private nextId = 1;
  private closing = false;
  private lastRetiredAt = -Infinity;
  private counters = { completed: 0, rejected: 0, timedOut: 0, cancelled: 0, recycled: 0, retired: 0 };
  private readonly roomListeners = new Set<() => void>();

  private constructor(private readonly options: PoolOptions) {}

  /** Starts every worker and waits until each has loaded the model; a model that cannot load fails here. */
  static async start(options: PoolOptions): Promise<InferencePool> {
    const pool = new InferencePool(options);
    try {
      await Promise.all(Array.from({ length: options.workers }, () => pool.addWorker()));
      const limit = options.workerMaxRssMb;
      if (limit !== undefined && rssMb() >= limit) {
        throw new Error(
          `the worker memory mark (${limit} MB) is not above the server's resident memory with its workers started and idle (${Math.round(rssMb())} MB); ` +
            'every worker would be replaced after every analysis. Give a higher mark, or fewer workers',
        );
      }
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  /**
   * Queues an analysis. Rejects with QueueFullError at once when the queue is full, with AnalysisTimeoutError
   * when the deadline passes first, with AnalysisCancelledError when the signal aborts first, with
   * UnreadableImageError for an image that cannot be decoded.
   */
  analyze(bytes: Uint8Array, name: string, request: AnalyzeRequest, options: AnalyzeCallOptions | number): Promise<WorkerAnalysis & { queuedMs: number }> {
    const { timeoutMs, signal, onProgress } = typeof options === 'number' ? { timeoutMs: options, signal: undefined, onProgress: undefined } : options;
    if (this.closing) return Promise.reject(new WorkerFailedError('the server is shutting down'));
    if (signal?.aborted) return Promise.reject(new AnalysisCancelledError(true));
    const idle = this.slots.find((s) => s.task === null);
    const costKey = costKeyOf(request);
    const startsNow = idle !== undefined && this.mayStart(costKey, request);
    if (!startsNow && this.queue.length >= this.options.queueLimit) {
      this.counters.rejected++;
      return Promise.reject(new QueueFullError(this.retryAfterSeconds()));
    }
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const task: Task = {
        id,
        // A private copy: the caller's buffer may be a view into a shared pool, which must not be transferred.
        message: { id, bytes: new Uint8Array(bytes), name, request },
        costKey,
        signal,
        onProgress,
        resolve,
        reject,
        submittedAt: performance.now(),
        abandoned: false,
        timer: setTimeout(() => this.stop(task, new AnalysisTimeoutError(timeoutMs, this.queue.includes(task)), 'timedOut'), timeoutMs),
      };
      if (signal) {
        task.onAbort = () => this.stop(task, new AnalysisCancelledError(this.queue.includes(task)), 'cancelled');
        signal.addEventListener('abort', task.onAbort, { once: true });
      }
      if (startsNow) this.dispatch(idle, task);
      else this.queue.push(task);
    });
  }

  /** Slow work: occlusion asked for, or a kind measured at SLOW_MS or more. */
  private isSlow(costKey: string, request: AnalyzeRequest): boolean {
    return request.methods.includes('occlusion') || (this.serviceMs.get(costKey) ?? 0) >= SLOW_MS;
  }

  /** Whether an analysis may take an idle worker now: quick work always, slow work while another worker is left for quick work. */
  private mayStart(costKey: string, request: AnalyzeRequest): boolean {
    if (this.options.workers < 2 || !this.isSlow(costKey, request)) return true;
    const slowRunning = this.slots.filter((s) => s.task && this.isSlow(s.task.costKey, s.task.message.request)).length;
    return slowRunning < this.options.workers - 1;
  }

  /** True when one more analysis would be refused: every worker busy (or starting) and the queue full. */
  get full(): boolean {
    return !this.slots.some((s) => s.task === null) && this.queue.length >= this.options.queueLimit;
  }

  /** Analyses the pool would take now without refusing one: idle workers and free places in the queue. */
  get room(): number {
    return this.slots.filter((s) => s.task === null).length + Math.max(0, this.options.queueLimit - this.queue.length);
  }

  /** Calls `listener` whenever room may have appeared (an analysis started, finished or left the queue, a worker started). */
  onRoom(listener: () => void): void {
    this.roomListeners.add(listener);
  }

  /** Counts an analysis refused before it was submitted (the route's early check of `full`). */
  countRejected(): void {
    this.counters.rejected++;
  }

  /** True when analyses are waiting because every worker is busy (or the pool has no room at all). */
  get saturated(): boolean {
    return !this.slots.some((s) => s.task === null) && (this.queue.length > 0 || this.options.queueLimit === 0 || this.slots.length < this.options.workers);
  }

  get stats(): PoolStats {
    const mean = this.serviceMs.get('');
    return {
      workers: this.slots.length,
      busy: this.slots.filter((s) => s.task !== null).length,
      queued: this.queue.length,
      queueLimit: this.options.queueLimit,
      ...this.counters,
      rssMb: Math.round(rssMb()),
      meanServiceMs: mean === undefined ? null : Math.round(mean),
      estimatedWaitMs: Math.round(this.estimatedWaitMs()),
    };
  }

  /**
   * Milliseconds until a new analysis would likely start: the measured cost of each queued analysis (by its kind)
   * plus what is left of each running one, shared among the workers.
   */
  estimatedWaitMs(): number {
    const now = performance.now();
    let work = 0;
    for (const task of this.queue) work += this.costOf(task.costKey);
    for (const slot of this.slots) if (slot.task) work += Math.max(0, this.costOf(slot.task.costKey) - (now - slot.task.startedAt!));
    return work / Math.max(1, this.options.workers);
  }

  /** Seconds until a place is likely free (Retry-After): the estimated wait, at least 1 s. */
  retryAfterSeconds(): number {
    return Math.min(3600, Math.max(1, Math.ceil(this.estimatedWaitMs() / 1000)));
  }

  private costOf(key: string): number {
    return this.serviceMs.get(key) ?? this.serviceMs.get('') ?? UNMEASURED_MS;
  }

  private measure(key: string, ms: number): void {
    for (const k of [key, '']) {
      const previous = this.serviceMs.get(k);
      this.serviceMs.set(k, previous === undefined ? ms : previous + EWMA_ALPHA * (ms - previous));
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const task of this.queue.splice(0)) this.fail(task, new WorkerFailedError('the server is shutting down'));
    for (const slot of this.slots) if (slot.task && !slot.task.abandoned) this.fail(slot.task, new WorkerFailedError('the server is shutting down'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private addWorker(): Promise<void> {
    this.starting++;
    const done = () => this.starting--;
    const control = new SharedArrayBuffer(8);
    const worker = new Worker(WORKER_URL, { workerData: { modelPath: this.options.modelPath, threads: this.options.threadsPerWorker, control } satisfies WorkerInit });
    return new Promise((resolve, reject) => {
      const onStartError = (error: Error) => {
        done();
        reject(error);
      };
      const onStartExit = (code: number) => onStartError(new WorkerFailedError(`an inference worker stopped while loading the model (exit code ${code})`));
      worker.once('error', onStartError);
      worker.once('exit', onStartExit);
      worker.once('message', (message: FromWorker) => {
        done();
        worker.off('error', onStartError);
        worker.off('exit', onStartExit);
        if (this.closing) {
          void worker.terminate();
          resolve();
          return;
        }
        if (message.type === 'init-error') {
          void worker.terminate();
          reject(new Error(message.message));
          return;
        }
        const slot: Slot = { worker, task: null, control: new Int32Array(control) };
        this.slots.push(slot);
        worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
        worker.on('error', (error) => this.onExit(slot, 1, error));
        worker.on('exit', (code) => this.onExit(slot, code));
        this.pump();
        resolve();
      });
    });
  }

  private dispatch(slot: Slot, task: Task): void {
    slot.task = task;
    task.startedAt = performance.now();
    slot.worker.postMessage(task.message, [task.message.bytes.buffer as ArrayBuffer]);
  }

  /** Gives each idle worker the first queued analysis that may start (quick work passes slow work held back). */
  private pump(): void {
    for (const slot of this.slots) {
      if (slot.task !== null) continue;
      const index = this.queue.findIndex((t) => this.mayStart(t.costKey, t.message.request));
      if (index < 0) break;
      this.dispatch(slot, this.queue.splice(index, 1)[0]);
    }
    this.announceRoom();
  }

  private announceRoom(): void {
    for (const listener of this.roomListeners) listener();
  }

  /** Settles a task's caller once: no more timer or abort listener. */
  private settle(task: Task): void {
    clearTimeout(task.timer);
    if (task.onAbort) task.signal?.removeEventListener('abort', task.onAbort);
    task.abandoned = true;
  }

  private onMessage(slot: Slot, message: FromWorker): void {
    const task = slot.task;
    if (message.type === 'progress') {
      if (task && message.id === task.id && !task.abandoned) task.onProgress?.({ runs: message.runs, elapsedMs: Math.round(performance.now() - task.startedAt!) });
      return;
    }
    if (!task || (message.type !== 'done' && message.type !== 'failed') || message.id !== task.id) return;
    slot.task = null;
    // A stopped analysis did not show what a whole one costs.
    if (!task.abandoned) this.measure(task.costKey, performance.now() - task.startedAt!);
    if (!task.abandoned) {
      this.settle(task);
      if (message.type === 'done') {
        this.counters.completed++;
        task.resolve({ ...message.result, queuedMs: Math.round((task.startedAt! - task.submittedAt) * 10) / 10 });
      } else {
        task.reject(message.kind === 'image' ? new UnreadableImageError(message.message) : new WorkerFailedError(message.message));
      }
    }
    this.retireAtHighWater(slot);
    this.pump();
  }

  /**
   * Between analyses: replaces this idle worker when the process's RSS is above the high-water mark and no other
   * worker is being started (one at a time, so the pool never stops serving). True when it was retired.
   */
  private retireAtHighWater(slot: Slot): boolean {
    const limit = this.options.workerMaxRssMb;
    if (limit === undefined || this.closing || this.starting > 0 || performance.now() - this.lastRetiredAt < RETIRE_INTERVAL_MS) return false;
    const rss = rssMb();
    if (rss <= limit) return false;
    this.lastRetiredAt = performance.now();
    this.slots.splice(this.slots.indexOf(slot), 1);
    this.counters.retired++;
    this.detachAndTerminate(slot);
    this.options.onWorkerRetired?.({ rssMb: Math.round(rss), limitMb: limit });
    this.replaceWorker();
    return true;
  }

  /** Terminates a worker whose messages and exit no longer concern the pool. */
  private detachAndTerminate(slot: Slot): void {
    slot.worker.removeAllListeners('message');
    slot.worker.removeAllListeners('exit');
    slot.worker.removeAllListeners('error');
    slot.worker.on('error', () => undefined);
    void slot.worker.terminate();
  }

  private onExit(slot: Slot, code: number, error?: Error): void {
    const index = this.slots.indexOf(slot);
    if (index < 0 || this.closing) return;
    this.slots.splice(index, 1);
    if (slot.task && !slot.task.abandoned) this.fail(slot.task, new WorkerFailedError(`the inference worker stopped (${error?.message ?? `exit code ${code}`})`));
    this.options.onWorkerExit?.({ code, error });
    void slot.worker.terminate();
    this.replaceWorker();
  }

  private replaceWorker(): void {
    this.addWorker().catch((e: Error) => this.options.onWorkerExit?.({ code: 1, error: e }));
  }

  /**
   * Ends a task early (deadline passed or caller gone): a queued one leaves the queue; a running one is told to
   * stop (its worker reports back and takes the next task), with termination and replacement as the fallback.
   */
  private stop(task: Task, error: Error, counter: 'timedOut' | 'cancelled'): void {
    if (task.abandoned) return;
    this.settle(task);
    this.counters[counter]++;
    const queued = this.queue.indexOf(task);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      this.announceRoom();
    }
    const slot = this.slots.find((s) => s.task === task);
    if (slot && !this.closing) {
      Atomics.store(slot.control, CONTROL_CANCEL, task.id);
      this.recycleIfStuck(slot, task, CANCEL_GRACE_MS);
    }
    task.reject(error);
  }

  /** Terminates and replaces a worker still on a stopped task after `delayMs`, once it is not inside a run. */
  private recycleIfStuck(slot: Slot, task: Task, delayMs: number): void {
    setTimeout(() => {
      if (slot.task !== task || !this.slots.includes(slot) || this.closing) return;
      if (Atomics.load(slot.control, CONTROL_IN_RUN) === 1) return this.recycleIfStuck(slot, task, 250);
      this.slots.splice(this.slots.indexOf(slot), 1);
      this.counters.recycled++;
      this.detachAndTerminate(slot);
      this.replaceWorker();
      this.pump();
    }, delayMs).unref();
  }

  private fail(task: Task, error: Error): void {
    this.settle(task);
    task.reject(error);
  }
}

/** Analyses with the same explanation methods and heatmap format cost about the same. */
function costKeyOf(request: AnalyzeRequest): string {
  return `${request.heatmap === 'none' ? 'none' : [...request.methods].sort().join(',') || 'none'}:${request.findings.length}`;
}

/** Resident memory of this process (every thread), in MB. */
function rssMb(): number {
  return process.memoryUsage.rss() / 2 ** 20;
}
