/** Running the real `cxr` (bin/cxr.js, as users do) from the PACS tests, and what the tests compare with. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/fixtures.js';
import type { DicomWebClient } from '../../src/pacs/dicomweb.js';
import { DICOM_DIR } from './orthanc.js';
import { readSr, type SrValues } from './sr-read.js';

const run = promisify(execFile);
export const CXR = join(REPO_ROOT, 'bin', 'cxr.js');

/** The real DICOM files of ../shared/data/dicom (not the derived ones), read in place. */
export function dicomFiles(): string[] {
  return readdirSync(DICOM_DIR)
    .filter((f) => f.endsWith('.dcm'))
    .sort()
    .map((f) => join(DICOM_DIR, f));
}

export async function cxr(args: string[], timeoutMs = 120_000): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [CXR, ...args], { timeout: timeoutMs, maxBuffer: 64 << 20, env: { ...process.env, GLIBC_TUNABLES: undefined } });
}

/** One image of `cxr predict --json`, the reference a PACS result is checked against. */
export interface PredictedImage {
  file: string;
  verdict: string;
  inputFlags: { code: string; severity: string; message: string }[];
  findings: { name: string; probability: number; calibrated: boolean; threshold: number | null; thresholdRule: string | null; decision: string | null; decisionNote: string | null }[];
}

/** `cxr predict --json` on the files, by file (it exits non-zero when it refuses some, and still answers them all). */
export async function predictJson(files: string[]): Promise<Map<string, PredictedImage>> {
  const { stdout } = await cxr(['predict', '--json', ...files]).catch((e) => e);
  return new Map((JSON.parse(stdout).images as PredictedImage[]).map((image) => [image.file, image]));
}

/**
 * `cxr` as one process (GLIBC_TUNABLES set, as bin/cxr.js would set it, so it does not re-launch Node in a child):
 * a kill -9 of this pid is a kill -9 of the process doing the work.
 */
export function startCxr(args: string[]): ChildProcess {
  return spawn(process.execPath, [CXR, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736' } });
}

/** A file's SOP Instance UID, read by dcmtk's dcmdump (files without a meta header included). */
export async function sopInstanceUid(file: string): Promise<string> {
  const { stdout } = await run('dcmdump', ['-q', '+P', '0008,0018', file]);
  const uid = /\[([\d.]+)\]/.exec(stdout)?.[1];
  if (!uid) throw new Error(`no SOP Instance UID in ${file}`);
  return uid;
}

/** Every SR in the PACS, read back, with the SOP Instance UID of the image each refers to. */
export async function readAllSrs(client: DicomWebClient): Promise<SrValues[]> {
  const { DicomWebClient: Client } = await import('../../src/pacs/dicomweb.js');
  const refs = Client.refs(await client.searchInstances({ Modality: 'SR' }));
  return Promise.all(refs.map(async (ref) => readSr(await client.retrieveInstance(ref))));
}

/**
 * Fails when the logs name any of the secrets (patient names and IDs, accession numbers, UIDs, file names). A secret
 * counts where it stands as a value of its own, not inside a longer word or number: one of the films' accession
 * number is "0000000001", which a logged number's digits (a duration's rounding tail, "3.0000000001") can contain
 * by chance.
 */
export function assertNoSecrets(logs: string, secrets: Iterable<string>): void {
  for (const secret of secrets) {
    const escaped = secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const named = new RegExp(`(?<![\\w.])${escaped}(?![\\w]|\\.\\w)`).exec(logs);
    if (named) throw new Error(`a log line names "${secret}": ${logs.slice(Math.max(0, named.index - 120), named.index + secret.length + 40)}`);
  }
}
