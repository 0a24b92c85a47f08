/**
 * The cxr-lens HTTP server: a thin fastify layer over the library. Routes live in plugins (plugins/*.ts); inference
 * runs in a pool of worker threads (pool.ts), or on a shared fleet of `cxr worker`s through Redis (dispatch.ts).
 * `buildServer` loads the model and starts the workers (or connects to the fleet); the caller
 * listens (or injects requests in tests) and closes.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { loadModel } from '../api.js';
import { modelCard, type ModelCard } from './model-card.js';
import { DEFAULTS, type ResolvedServeOptions, resolveServeOptions, type ServeOptions } from './options.js';
import { AdmissionGate } from './admission.js';
import { type AnalysisDispatcher, startDispatcher } from './dispatch.js';
import { readTokenFile } from './tokens.js';
import analyze from './plugins/analyze.js';
import auth from './plugins/auth.js';
import errors from './plugins/errors.js';
import health from './plugins/health.js';
import model from './plugins/model.js';
import openapi from './plugins/openapi.js';
import pacs from './plugins/pacs.js';
import security from './plugins/security.js';
import web from './plugins/web.js';

/** Where `npm run build:web` puts the viewer, relative to this compiled file (dist/src/serve/app.js). */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../web/', import.meta.url));

export interface Server {
  app: FastifyInstance;
  /** Where analyses run: the in-process pool, or the Redis fleet with --redis (dispatch.ts). */
  pool: AnalysisDispatcher;
  admission: AdmissionGate;
  card: ModelCard;
  options: ResolvedServeOptions;
}

const REQUEST_ID = /^[\w.:-]{1,64}$/;
/** Requests allowed to wait for admission per worker and queue place. */
const WAITING_PER_PLACE = 4;

export async function buildServer(serveOptions: ServeOptions = {}): Promise<Server> {
  const options = resolveServeOptions(serveOptions);
  const loaded = loadModel(options.modelPath);
  const { card, bytes } = modelCard(loaded);
  const tokens = options.authTokensFile === undefined ? undefined : readTokenFile(options.authTokensFile);
  const https = options.tlsCertFile === undefined ? null : { cert: readPem(options.tlsCertFile, 'certificate'), key: readPem(options.tlsKeyFile!, 'private key') };
  const app = Fastify({
    https,
    logger: options.logLevel === false ? false : { level: options.logLevel ?? 'info', ...(options.logStream ? { stream: options.logStream } : {}) },
    // A caller's X-Request-Id is kept (when it is a plain token) so logs can be joined across services.
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    // Time allowed to receive a whole request (a slow 50 MB upload included).
    requestTimeout: 5 * 60_000,
  });
  const pool = await startDispatcher({ modelPath: loaded.path, options, log: app.log });
  // Requests may wait for room with their uploads unread: a few times what the pool itself holds, each costing a
  // socket and at most one chunk of its upload.
  const admission = new AdmissionGate(() => pool.room, {
    waitMs: options.admissionWaitMs,
    maxWaiting: WAITING_PER_PLACE * (options.workers + options.queueLimit),
  });
  pool.onRoom(() => admission.roomChanged());
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onClose', async () => pool.close());
  await app.register(errors);
  await app.register(security, { corsOrigins: options.corsOrigins, allowedHosts: options.allowedHosts, https: https !== null });
  if (tokens) await app.register(auth, { tokens });
  await app.register(health, { pool, admission });
  await app.register(model, { card, bytes });
  await app.register(openapi);
  await app.register(analyze, {
    pool,
    admission,
    card,
    maxUploadBytes: options.maxUploadBytes,
    analysisTimeoutMs: options.analysisTimeoutMs,
    saveUploadsTo: options.saveUploadsTo,
  });
  await app.register(pacs, {
    dicomweb: options.pacsDicomweb,
    timeoutMs: options.pacsTimeoutMs ?? DEFAULTS.pacsTimeoutMs,
    pool,
    admission,
    card,
    modelPath: loaded.path,
    analysisTimeoutMs: options.analysisTimeoutMs,
  });
  await app.register(web, { root: options.webRoot ?? DEFAULT_WEB_ROOT });
  return { app, pool, admission, card, options };
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read the TLS ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}
