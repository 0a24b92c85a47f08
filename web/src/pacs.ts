/**
 * The viewer's calls to the server's PACS routes (`cxr serve --pacs`). Patient IDs and UIDs go in JSON bodies, never
 * in URLs (which servers and proxies log). An opened instance comes back as its DICOM file, which the viewer then
 * handles like a dropped file: decoded here for display, analysed by the server (or in the browser in private mode).
 */
import type { PacsInstance, PacsStudy, StoredResult } from '../../src/pacs/shapes.js';
import type { ErrorBody } from '../../src/serve/errors.js';
import { apiFetch } from './engines.js';

export type { PacsInstance, PacsStudy, StoredResult };

export interface PacsQuery {
  patientId?: string;
  accession?: string;
  /** YYYYMMDD or YYYYMMDD-YYYYMMDD. */
  date?: string;
}

async function post(path: string, body: object): Promise<Response> {
  // A Blob with a type sets the Content-Type (apiFetch sets only the authorization header).
  const response = await apiFetch(path, { method: 'POST', body: new Blob([JSON.stringify(body)], { type: 'application/json' }) });
  if (!response.ok) {
    const error = (await response.json().catch(() => null)) as ErrorBody | null;
    throw new Error(error?.message ?? `the server answered HTTP ${response.status}`);
  }
  return response;
}

/** Whether the server was started with a PACS; false when it cannot say. */
export async function pacsConfigured(): Promise<boolean> {
  const response = await apiFetch('/api/v1/pacs/status');
  return response.ok && ((await response.json()) as { configured: boolean }).configured;
}

export async function searchPacs(query: PacsQuery): Promise<{ studies: PacsStudy[]; truncated: boolean }> {
  return (await post('/api/v1/pacs/search', query)).json();
}

const refOf = (instance: PacsInstance) => ({ study: instance.study, series: instance.series, sop: instance.sop });

export async function fetchInstance(instance: PacsInstance): Promise<Uint8Array> {
  return new Uint8Array(await (await post('/api/v1/pacs/instance', refOf(instance))).arrayBuffer());
}

export async function fetchStoredResult(instance: PacsInstance): Promise<StoredResult | null> {
  return ((await (await post('/api/v1/pacs/result', refOf(instance))).json()) as { result: StoredResult | null }).result;
}

/** A stored heatmap as an object URL (revoke it when done). */
export async function fetchStoredHeatmap(instance: PacsInstance, finding: string): Promise<string> {
  return URL.createObjectURL(await (await post('/api/v1/pacs/heatmap', { ...refOf(instance), finding })).blob());
}

/** An <input type="date"> value (YYYY-MM-DD) as DICOM DA, or '' for none. */
export function dicomDate(value: string): string {
  return value.replaceAll('-', '');
}

/** DICOM DA as YYYY-MM-DD for reading; anything else as given. */
export function readableDate(da: string): string {
  return /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}` : da;
}
