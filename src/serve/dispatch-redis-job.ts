/**
 * A server's analysis as a job on Redis, shared by the servers that submit it (dispatch-redis.ts) and the
 * `cxr worker`s that run it (dispatch-redis-worker.ts). The upload's bytes travel in their own key with a TTL (kept
 * out of BullMQ's job hash and event stream), deleted once the answer is read or nobody waits for it any more; the
 * answer comes back in a second key the same way. One queue per model file (named by its SHA-256), so a worker only
 * ever sees analyses for the model it holds; each job also carries the hash, checked again before it runs.
 */
import type { AnalyzeRequest } from './analysis.js';
import type { WorkerAnalysis } from './pool.js';

export const ANALYSIS_JOB_VERSION = 1;

export interface AnalysisJobData {
  version: typeof ANALYSIS_JOB_VERSION;
  /** SHA-256 (hex) of the server's model file. */
  modelHash: string;
  /** The name decoder messages use (never the client's file name). */
  name: string;
  request: AnalyzeRequest;
  /** Redis keys of the upload's bytes and of the answer. */
  uploadKey: string;
  resultKey: string;
  /** Epoch ms after which nobody waits for the answer: the job is skipped. */
  deadline: number;
}

/** What a worker leaves in the result key: the analysis, or why there is none. */
export type AnalysisOutcome =
  | { analysis: WorkerAnalysis; startedAt: number }
  | { error: { kind: 'image' | 'internal'; message: string }; startedAt: number };

/** The queue of one model's analyses (BullMQ queue names may not hold ':'). */
export function analysisQueueName(modelHash: string): string {
  return `cxr-analyze-${modelHash.slice(0, 16)}`;
}

export function analysisKeys(jobId: string): { uploadKey: string; resultKey: string } {
  return { uploadKey: `cxr:analyze:${jobId}:upload`, resultKey: `cxr:analyze:${jobId}:result` };
}

/** The job's data as a worker must see it; anything else (another version, a hand-made job) is refused by name. */
export function parseAnalysisJob(data: unknown): AnalysisJobData {
  const d = data as Partial<AnalysisJobData> | null;
  if (!d || d.version !== ANALYSIS_JOB_VERSION) throw new Error(`analysis job format ${String(d?.version)} is not the one this worker reads (${ANALYSIS_JOB_VERSION}): run the same cxr-lens version on servers and workers`);
  if (typeof d.modelHash !== 'string' || typeof d.uploadKey !== 'string' || typeof d.resultKey !== 'string' || typeof d.deadline !== 'number' || typeof d.name !== 'string' || !d.request) {
    throw new Error('analysis job without model hash, keys, deadline, name or request');
  }
  return d as AnalysisJobData;
}
