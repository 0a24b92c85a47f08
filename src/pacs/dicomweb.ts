/**
 * A small DICOMweb client (PS3.18): QIDO-RS search, WADO-RS instance retrieve, STOW-RS store, over Node's fetch.
 * Every request has a deadline; a PACS that is down, slow or overloaded (connection refused, timeout, 5xx, 429) is
 * retried with exponential back-off (Retry-After honoured), anything else fails at once. Errors name the request by
 * its kind and path level only: URLs carry UIDs, which are not logged in clear.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { asDatasets, type DicomJson, sequenceItems, stringValue, TAGS } from './dicom-json.js';
import { boundaryOf, buildMultipart, parseMultipart } from './multipart.js';

export interface DicomWebOptions {
  /** Deadline of one HTTP request (connect to last byte), ms; default 30 000. */
  timeoutMs?: number;
  /** Further tries after a failure that may pass (PACS down, slow or busy); default 4. */
  retries?: number;
  /** First back-off, doubled at each retry (capped at 30 s); default 500 ms. */
  backoffMs?: number;
  /** Told before each retry, e.g. to show a status line. */
  onRetry?: (event: RetryEvent) => void;
}

export interface RetryEvent {
  operation: string;
  attempt: number;
  waitMs: number;
  reason: string;
}

export type PacsErrorKind = 'unreachable' | 'timeout' | 'http' | 'malformed';

/** A DICOMweb request that failed for good; `kind` says why, `status` is the HTTP status where there was one. */
export class PacsError extends Error {
  constructor(
    message: string,
    readonly kind: PacsErrorKind,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'PacsError';
  }
}

/** The reference DICOMweb calls an instance by. */
export interface InstanceRef {
  study: string;
  series: string;
  sop: string;
  sopClass?: string;
}

export interface StoreResult {
  stored: string[];
  /** SOP Instance UIDs the PACS refused, with its failure reason code. */
  failed: { sop: string; reason?: string }[];
}

const MAX_BACKOFF_MS = 30_000;

export class DicomWebClient {
  readonly root: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;

  /** `root`: the DICOMweb base, e.g. http://127.0.0.1:8042/dicom-web (a trailing slash is ignored). */
  constructor(
    root: string,
    private readonly options: DicomWebOptions = {},
  ) {
    let url: URL;
    try {
      url = new URL(root);
    } catch {
      throw new Error(`not a URL: ${JSON.stringify(root)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`DICOMweb needs an http or https URL, got ${url.protocol}`);
    this.root = url.href.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retries = options.retries ?? 4;
    this.backoffMs = options.backoffMs ?? 500;
  }

  /** QIDO-RS at the instance level (all of them across studies), every page of `pageSize` followed. */
  async searchInstances(query: Record<string, string>, pageSize = 500): Promise<DicomJson[]> {
    const found: DicomJson[] = [];
    for (let offset = 0; ; offset += pageSize) {
      const page = await this.searchPage(`${this.root}/instances?${new URLSearchParams({ ...query, limit: String(pageSize), offset: String(offset) })}`);
      found.push(...page);
      if (page.length < pageSize) return found;
    }
  }

  /** QIDO-RS at the study level: the first `limit` studies matching `query` (one page: a person reads the first ones). */
  async searchStudies(query: Record<string, string>, limit = 50): Promise<DicomJson[]> {
    return this.searchPage(`${this.root}/studies?${new URLSearchParams({ ...query, limit: String(limit) })}`);
  }

  private async searchPage(url: string): Promise<DicomJson[]> {
    const text = await this.request('search', url, { headers: { accept: 'application/dicom+json' } }, readText);
    if (text.trim() === '') return [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new PacsError(`search: the PACS answered with invalid JSON (${(e as Error).message})`, 'malformed');
    }
    try {
      return asDatasets(parsed, 'search');
    } catch (e) {
      throw new PacsError((e as Error).message, 'malformed');
    }
  }

  /** Instance references of a QIDO answer; a dataset without its UIDs is a malformed answer. */
  static refs(datasets: readonly DicomJson[]): InstanceRef[] {
    return datasets.map((d, i) => {
      const study = stringValue(d, TAGS.StudyInstanceUID);
      const series = stringValue(d, TAGS.SeriesInstanceUID);
      const sop = stringValue(d, TAGS.SOPInstanceUID);
      if (!study || !series || !sop) throw new PacsError(`search: result ${i + 1} lacks its Study, Series or SOP Instance UID`, 'malformed');
      return { study, series, sop, sopClass: stringValue(d, TAGS.SOPClassUID) };
    });
  }

  /** WADO-RS: one instance as a DICOM Part 10 file, in the transfer syntax the PACS stored it in. */
  async retrieveInstance(ref: InstanceRef): Promise<Uint8Array> {
    const path = `/studies/${enc(ref.study)}/series/${enc(ref.series)}/instances/${enc(ref.sop)}`;
    const { body, contentType } = await this.request('retrieve', this.root + path, { headers: { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } }, async (response) => ({
      body: new Uint8Array(await response.arrayBuffer()),
      contentType: response.headers.get('content-type'),
    }));
    let parts;
    try {
      parts = parseMultipart(body, boundaryOf(contentType));
    } catch (e) {
      throw new PacsError(`retrieve: ${(e as Error).message}`, 'malformed');
    }
    if (parts.length !== 1) throw new PacsError(`retrieve: expected 1 instance, the PACS sent ${parts.length}`, 'malformed');
    const file = parts[0].body;
    if (file.length < 132 || Buffer.from(file.subarray(128, 132)).toString('latin1') !== 'DICM') throw new PacsError('retrieve: the part is not a DICOM Part 10 file (no DICM preamble)', 'malformed');
    return file;
  }

  /** WADO-RS of one instance, or null when the PACS no longer holds it (404). */
  async retrieveInstanceIfPresent(ref: InstanceRef): Promise<Uint8Array | null> {
    try {
      return await this.retrieveInstance(ref);
    } catch (e) {
      if (e instanceof PacsError && e.status === 404) return null;
      throw e;
    }
  }

  /**
   * STOW-RS of Part 10 files (one request). Stored instances are listed; any the PACS refused make it an error
   * naming how many and the reason codes, so a caller never takes a result for written when it was not.
   */
  async store(files: readonly Uint8Array[]): Promise<StoreResult> {
    const { body, contentType } = buildMultipart(files);
    const text = await this.request('store', `${this.root}/studies`, { method: 'POST', headers: { 'content-type': contentType, accept: 'application/dicom+json' }, body }, readText);
    let answer: unknown;
    try {
      answer = text.trim() === '' ? {} : JSON.parse(text);
    } catch (e) {
      throw new PacsError(`store: the PACS answered with invalid JSON (${(e as Error).message})`, 'malformed');
    }
    if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) throw new PacsError('store: the PACS answer is not a DICOM JSON dataset', 'malformed');
    const dataset = answer as DicomJson;
    const uid = (item: DicomJson) => stringValue(item, TAGS.ReferencedSOPInstanceUID) ?? '?';
    const result: StoreResult = {
      stored: sequenceItems(dataset, TAGS.ReferencedSOPSequence).map(uid),
      failed: sequenceItems(dataset, TAGS.FailedSOPSequence).map((item) => ({ sop: uid(item), reason: stringValue(item, TAGS.FailureReason) })),
    };
    if (result.failed.length > 0) {
      throw new PacsError(`store: the PACS refused ${result.failed.length} of ${files.length} instances (failure reasons ${result.failed.map((f) => f.reason ?? 'none given').join(', ')})`, 'http');
    }
    if (result.stored.length !== files.length) throw new PacsError(`store: sent ${files.length} instances, the PACS confirmed ${result.stored.length}`, 'malformed');
    return result;
  }

  /**
   * A JSON document elsewhere on the same server (`path` from its origin, e.g. Orthanc's /changes), with the same
   * deadline and retries; an answer that is not JSON is a malformed answer.
   */
  async getJson(operation: string, path: string): Promise<unknown> {
    const text = await this.request(operation, new URL(path, this.root).href, { headers: { accept: 'application/json' } }, readText);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new PacsError(`${operation}: the PACS answered with invalid JSON (${(e as Error).message})`, 'malformed');
    }
  }

  /**
   * One request with the deadline and retries, its 2xx body read by `read` inside the same deadline: an answer cut
   * short (the PACS died mid-body) is retried like a refused connection.
   */
  private async request<T>(operation: string, url: string, init: RequestInit, read: (response: Response) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let failure: { reason: string; kind: PacsErrorKind; status?: number; retryAfterMs?: number };
      try {
        const response = await fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
        if (response.ok) return await read(response);
        await response.body?.cancel();
        failure = { reason: `HTTP ${response.status} ${response.statusText}`.trim(), kind: 'http', status: response.status, retryAfterMs: retryAfter(response.headers.get('retry-after')) };
        if (!(response.status >= 500 || response.status === 429 || response.status === 408)) {
          throw new PacsError(`${operation}: the PACS answered ${failure.reason}${response.status === 404 ? ' (not found: is the DICOMweb path right, or was it deleted?)' : ''}`, 'http', response.status);
        }
      } catch (e) {
        if (e instanceof PacsError) throw e;
        failure = networkFailure(e as Error, this.timeoutMs);
      }
      if (attempt >= this.retries) {
        throw new PacsError(`${operation}: the PACS at ${new URL(this.root).origin} ${failure.kind === 'http' ? `answered ${failure.reason}` : failure.reason}, ${attempt + 1} tries`, failure.kind, failure.status);
      }
      const waitMs = Math.min(MAX_BACKOFF_MS, failure.retryAfterMs ?? this.backoffMs * 2 ** attempt);
      this.options.onRetry?.({ operation, attempt: attempt + 1, waitMs, reason: failure.reason });
      await sleep(waitMs);
    }
  }
}

function enc(uid: string): string {
  return encodeURIComponent(uid);
}

function networkFailure(error: Error, timeoutMs: number): { reason: string; kind: PacsErrorKind } {
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return { reason: `did not answer within ${timeoutMs} ms`, kind: 'timeout' };
  // fetch's own message is only "fetch failed"; the socket's error code (ECONNREFUSED, ...) is in its cause.
  const cause = error.cause as NodeJS.ErrnoException | undefined;
  return { reason: `could not be reached (${cause?.code ?? cause?.message ?? error.message})`, kind: 'unreachable' };
}

/** Retry-After in ms (seconds or an HTTP date), or undefined. */
function retryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

// No match is 204 (or an empty 200) in PS3.18.
async function readText(response: Response): Promise<string> {
  return response.status === 204 ? '' : await response.text();
}
