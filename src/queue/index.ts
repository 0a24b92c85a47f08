/** Batch scoring on a shared BullMQ queue (Redis): submit, work, read back. See README "Batches and worker fleets". */
export { connectRedis, displayRedisUrl, type RedisConnectOptions } from './connection.js';
export { type BatchJobData, type DicomWebSource, type JobOptions, type JobSource, type StoreRequest, QUEUE_NAME, checkBatchId, jobIdFor, newBatchId, fileSha256, sourceLocation } from './job.js';
export { listBatchSources, searchPacsInstances } from './sources.js';
export { submitBatch, type SubmitOptions, type SubmitOutcome } from './submit.js';
export { BatchWorker, type BatchWorkerOptions, type WorkerEvent } from './worker.js';
export { heatmapFindings, type HeatmapRequest, type StoredHeatmaps } from './heatmaps.js';
export { batchResults, batchStatus, type BatchResult, type BatchStatus, type InstanceUids, type StoredFailure, type StoredResult } from './results.js';
export { PacsFeed, type FeedSummary, type PacsFeedOptions } from './pacs-feed.js';
