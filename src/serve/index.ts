/** The HTTP server and its API shapes, for embedding cxr-lens in another Node program. */
export { buildServer, DEFAULT_WEB_ROOT, type Server } from './app.js';
export * from './analysis.js';
export { type ErrorBody, HttpError } from './errors.js';
export { type ModelCard, MODEL_URL } from './model-card.js';
export { OPENAPI_DOCUMENT } from './openapi.js';
export { DEFAULTS, type ServeOptions } from './options.js';
export { InferencePool, type PoolStats } from './pool.js';
