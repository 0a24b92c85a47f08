/** What `cxr serve` can be told, with the defaults a newcomer gets from `npm start`. */
import { availableParallelism } from 'node:os';
import { parseOrigins } from './plugins/security.js';

export interface ServeOptions {
  /** A cxr-lens model file; default: the embedded default model (models/default.onnx). */
  modelPath?: string;
  /** Inference workers (threads, each with its own ONNX Runtime sessions); default: the number of cores. */
  workers?: number;
  /** ONNX Runtime intra-op threads per worker; default 1 (parallelism comes from the workers). */
  threadsPerWorker?: number;
  /** Analyses allowed to wait for a worker; beyond it requests get 503 with Retry-After. Default 16. */
  queueLimit?: number;
  /**
   * How long a request that finds every worker busy and the queue full waits (its upload unread) for a place
   * before 503 + Retry-After; 0 refuses at once. Default 5 s.
   */
  admissionWaitMs?: number;
  /** Largest accepted upload in bytes; default 50 MB. */
  maxUploadBytes?: number;
  /** An analysis (queue wait included) taking longer answers 504; default 120 s. */
  analysisTimeoutMs?: number;
  /**
   * Memory high-water mark in MB: when the server process's RSS is above it after an analysis, the worker that ran
   * it is replaced before its next one (never during one). Default: never (the serving malloc settings of bin/cxr.js
   * already return large buffers).
   */
  workerMaxRssMb?: number;
  /**
   * Where uploaded images are kept (one file per decoded upload, named by a server-generated id, mode 0600; uploads
   * that cannot be decoded are not kept); default: nowhere, never on disk.
   */
  saveUploadsTo?: string;
  /** Folder with the built viewer (index.html and assets); default: the package's dist/web. */
  webRoot?: string;
  /** Origins whose pages may call the API (CORS); default none. */
  corsOrigins?: string[];
  /** Host names accepted besides loopback's while listening on loopback (e.g. behind a reverse proxy); default none. */
  allowedHosts?: string[];
  /** A token file (`cxr token create`): every API route but the OpenAPI document then needs a bearer token; default: no authentication. */
  authTokensFile?: string;
  /** PEM certificate (chain) and private key: the server then speaks HTTPS; default plain HTTP. Both or neither. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /**
   * A PACS's DICOMweb root (e.g. http://127.0.0.1:8042/dicom-web): the viewer then searches it, opens its instances
   * and shows the results `cxr pacs` stored there; default none.
   */
  pacsDicomweb?: string;
  /** Deadline of one request to that PACS, ms; default 10 s (a person is waiting). */
  pacsTimeoutMs?: number;
  /**
   * A Redis server (redis://host:port): analyses then go to the `cxr worker`s sharing it instead of this process's
   * workers (`workers`, `threadsPerWorker` and `workerMaxRssMb` then do not apply; `queueLimit` bounds the shared
   * queue's waiting analyses). Default: the in-process pool.
   */
  redisUrl?: string;
  /** Pino log level, or false for no logs; default 'info'. */
  logLevel?: string | false;
  /** Where JSON log lines go; default stdout. */
  logStream?: NodeJS.WritableStream;
}

export const DEFAULTS = {
  queueLimit: 16,
  admissionWaitMs: 5000,
  threadsPerWorker: 1,
  maxUploadBytes: 50 * 1024 * 1024,
  analysisTimeoutMs: 120_000,
  pacsTimeoutMs: 10_000,
} as const;

export type ResolvedServeOptions = Required<Pick<ServeOptions, 'workers' | 'threadsPerWorker' | 'queueLimit' | 'admissionWaitMs' | 'maxUploadBytes' | 'analysisTimeoutMs'>> &
  Omit<ServeOptions, 'workers' | 'threadsPerWorker' | 'queueLimit' | 'admissionWaitMs' | 'maxUploadBytes' | 'analysisTimeoutMs'>;

/** Fills in defaults and rejects nonsense with a message naming the option. */
export function resolveServeOptions(options: ServeOptions): ResolvedServeOptions {
  const resolved = {
    ...options,
    workers: options.workers ?? availableParallelism(),
    threadsPerWorker: options.threadsPerWorker ?? DEFAULTS.threadsPerWorker,
    queueLimit: options.queueLimit ?? DEFAULTS.queueLimit,
    admissionWaitMs: options.admissionWaitMs ?? DEFAULTS.admissionWaitMs,
    maxUploadBytes: options.maxUploadBytes ?? DEFAULTS.maxUploadBytes,
    analysisTimeoutMs: options.analysisTimeoutMs ?? DEFAULTS.analysisTimeoutMs,
  };
  const positive = (name: string, value: number, min = 1) => {
    if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number of at least ${min}, got ${value}`);
  };
  positive('workers', resolved.workers);
  positive('threads per worker', resolved.threadsPerWorker);
  positive('queue limit', resolved.queueLimit, 0);
  positive('admission wait (ms)', resolved.admissionWaitMs, 0);
  positive('maximum upload size', resolved.maxUploadBytes);
  positive('analysis timeout', resolved.analysisTimeoutMs);
  if (resolved.workerMaxRssMb !== undefined) positive('worker memory mark (MB)', resolved.workerMaxRssMb);
  if (resolved.pacsTimeoutMs !== undefined) positive('PACS timeout (ms)', resolved.pacsTimeoutMs);
  if ((resolved.tlsCertFile === undefined) !== (resolved.tlsKeyFile === undefined)) {
    throw new Error('HTTPS needs both a certificate (--tls-cert) and its private key (--tls-key)');
  }
  if (resolved.corsOrigins) resolved.corsOrigins = parseOrigins(resolved.corsOrigins);
  return resolved;
}
