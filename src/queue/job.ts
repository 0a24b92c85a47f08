/**
 * What a batch job is, and where a batch lives in Redis. One job per image, in one BullMQ queue shared by every
 * batch and worker. A job carries everything a worker on another machine needs: the image's source, the options
 * and the SHA-256 of the model file the batch was submitted for, so no worker ever mixes models in one batch.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { isAbsolute } from 'node:path';
import { type ExplanationMethod, isExplanationMethod } from '../explain/index.js';
import type { HeatmapRequest } from './heatmaps.js';

/** The BullMQ queue every batch and worker uses. */
export const QUEUE_NAME = 'cxr-predict';
export const JOB_VERSION = 1;
/**
 * A job that asks for its result to be stored back into the PACS (`store`) has this version: a worker that predates
 * it refuses such a job (upgrade the worker, its reason says) instead of scoring it and writing nothing back.
 */
export const STORE_JOB_VERSION = 2;

/**
 * Where the image comes from. Files are read by path, so workers on other machines need the same path (a shared
 * mount); PACS instances are retrieved by WADO-RS from the DICOMweb root by their UIDs.
 */
export interface FileSource {
  kind: 'file';
  path: string;
}
export interface DicomWebSource {
  kind: 'dicomweb';
  /** The PACS's DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web. */
  root: string;
  study: string;
  series: string;
  sop: string;
}
export type JobSource = FileSource | DicomWebSource;

/** Where a result says its image came from: the path, or the instance's WADO-RS URL. */
export function sourceLocation(source: JobSource): string {
  return source.kind === 'file' ? source.path : `${source.root}/studies/${source.study}/series/${source.series}/instances/${source.sop}`;
}

/** What identifies the image: its path, or its UIDs (the same instance found through another URL is the same image). */
function sourceIdentity(source: JobSource): string {
  return source.kind === 'file' ? `file\0${source.path}` : `dicomweb\0${source.study}\0${source.series}\0${source.sop}`;
}

export interface JobOptions {
  /** Give findings even for inputs the input checks reject (marked `rejected-shown`), as `cxr predict --show-rejected`. */
  showRejected: boolean;
  /** Overlays of the positive findings, written into a shared folder (`cxr batch submit --heatmaps M --out DIR`). */
  heatmaps?: HeatmapRequest;
  /** A PACS instance's result stored back into the PACS, as `cxr pacs` stores it (`cxr pacs --redis`, `--store-sr`). */
  store?: StoreRequest;
}

/**
 * What a worker writes back to the PACS of a `dicomweb` source (STOW-RS, with the writers of `cxr pacs`): the SR
 * always, a heatmap Secondary Capture per positive finding unless `heatmaps` is 'none', and with `fhir` a FHIR
 * DiagnosticReport into that folder (absolute, as the workers see it: a shared mount, like heatmap folders).
 */
export interface StoreRequest {
  heatmaps: ExplanationMethod | 'none';
  fhir?: string;
}

export interface BatchJobData {
  version: typeof JOB_VERSION | typeof STORE_JOB_VERSION;
  batch: string;
  /** Position in the batch, so results come back in the submitted order. */
  index: number;
  source: JobSource;
  /** SHA-256 (hex) of the ONNX model file the batch is scored with. */
  modelHash: string;
  options: JobOptions;
}

const BATCH_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function checkBatchId(id: string): string {
  if (!BATCH_ID.test(id)) throw new Error(`batch id "${id}": use 1-64 letters, digits, '-' or '_'`);
  return id;
}

/** A new batch id when none is given: the date and time, and random letters so two submissions never meet. */
export function newBatchId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `batch-${stamp}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * The job id of one image in a batch: derived, not random, so submitting the same batch again finds the jobs it
 * already has (BullMQ ignores an add whose id exists). Hashed so that no path appears in ids or logs.
 */
export function jobIdFor(batch: string, source: JobSource): string {
  const key = createHash('sha256').update(sourceIdentity(source)).digest('hex').slice(0, 32);
  return `${batch}.${key}`;
}

/**
 * Redis keys of a batch, beside BullMQ's own: its description, its results and its failures, each by job id; and for
 * a batch that grows as a PACS receives images (`cxr pacs --redis`), each job's position, by job id.
 */
export function batchKeys(batch: string) {
  const base = `cxr:batch:${batch}`;
  return { meta: base, results: `${base}:results`, failures: `${base}:failures`, positions: `${base}:positions` };
}

/** The job's data as a worker must see it; anything else (a newer client, a hand-made job) is refused by name. */
export function parseJobData(data: unknown): BatchJobData {
  const d = data as Partial<BatchJobData> | null;
  if (!d || (d.version !== JOB_VERSION && d.version !== STORE_JOB_VERSION)) throw new Error(`job format ${String(d?.version)} is not one this worker reads (${JOB_VERSION}, ${STORE_JOB_VERSION}): upgrade the worker or resubmit`);
  if (typeof d.batch !== 'string' || typeof d.index !== 'number' || typeof d.modelHash !== 'string') throw new Error('job without batch, index or model hash');
  if (!isSource(d.source)) throw new Error(`job source kind "${String((d.source as { kind?: unknown } | undefined)?.kind)}" is not one this worker reads, or lacks its path or UIDs`);
  const heatmaps = d.options?.heatmaps;
  if (heatmaps !== undefined && (!isExplanationMethod(heatmaps.method) || typeof heatmaps.out !== 'string' || !isAbsolute(heatmaps.out))) throw new Error('job asks for heatmaps without a known method and an absolute folder');
  const store = d.options?.store;
  if (store !== undefined) checkStore(store, d);
  return { version: d.version, batch: d.batch, index: d.index, source: d.source, modelHash: d.modelHash, options: { showRejected: d.options?.showRejected === true, ...(heatmaps ? { heatmaps } : {}), ...(store ? { store } : {}) } };
}

/** A write-back is of a PACS instance's own result, as `cxr pacs` writes it: no overlay folder, no rejected findings shown. */
function checkStore(store: StoreRequest, d: Partial<BatchJobData>): void {
  if (d.version !== STORE_JOB_VERSION) throw new Error(`job asks to store its result in the PACS but is format ${String(d.version)}, not ${STORE_JOB_VERSION}`);
  if (d.source?.kind !== 'dicomweb') throw new Error('job asks to store its result in the PACS but its image is not a PACS instance');
  if (store.heatmaps !== 'none' && !isExplanationMethod(store.heatmaps)) throw new Error('job asks for heatmap Secondary Captures without a known method');
  if (store.fhir !== undefined && (typeof store.fhir !== 'string' || !isAbsolute(store.fhir))) throw new Error('job asks for FHIR reports without an absolute folder');
  if (d.options?.heatmaps || d.options?.showRejected) throw new Error('job asks to store its result in the PACS together with overlay files or rejected findings shown: one or the other');
}

function isSource(source: unknown): source is JobSource {
  const s = source as Record<string, unknown> | undefined;
  if (s?.kind === 'file') return typeof s.path === 'string';
  return s?.kind === 'dicomweb' && [s.root, s.study, s.series, s.sop].every((v) => typeof v === 'string' && v !== '') && /^https?:\/\//.test(s.root as string);
}

/** SHA-256 of a file, streamed (model files are tens of MB). */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
