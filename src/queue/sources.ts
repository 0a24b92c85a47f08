/**
 * What a batch scores: the images of a folder (as `cxr predict` lists them), the files a CSV names, or the instances
 * a QIDO-RS search finds in a PACS. Paths are made absolute, because the workers that read them may run anywhere
 * that mounts the same paths; instances are named by their UIDs and the DICOMweb root the workers retrieve them from.
 */
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { readCsv, resolveColumns } from '../data/csv.js';
import { listImageFiles } from '../inference/files.js';
import { DicomWebClient } from '../pacs/dicomweb.js';
import type { DicomWebSource } from './job.js';

/** Column names a list may use for its files: `cxr predict --csv`'s (so its output can be rescored) or "path". */
const FILE_COLUMNS = ['file', 'path'];

export async function listBatchSources(input: string, options: { recursive?: boolean } = {}): Promise<string[]> {
  let isFolder: boolean;
  try {
    isFolder = statSync(input).isDirectory();
  } catch {
    throw new Error(`${input}: no such file or folder`);
  }
  const files = isFolder ? listImageFiles([input], options) : await filesOfList(input);
  if (files.length === 0) throw new Error(`${input}: no image files ${isFolder ? 'in this folder' : 'listed'}`);
  return files.map((file) => resolve(file));
}

/** A CSV's file column; relative names are relative to the CSV's own folder, as NIH's lists are to theirs. */
async function filesOfList(path: string): Promise<string[]> {
  if (!path.toLowerCase().endsWith('.csv')) throw new Error(`${path}: give a folder of images or a .csv list with a column named ${FILE_COLUMNS.map((c) => `"${c}"`).join(' or ')}`);
  const table = await readCsv(path);
  const { file } = resolveColumns(table, { file: { names: FILE_COLUMNS, required: true } });
  const base = dirname(path);
  return table.rows.map((row) => row[file]?.trim() ?? '').filter((name) => name !== '').map((name) => resolve(base, name));
}

/**
 * The instances a QIDO-RS search finds, e.g. `Modality=CR&StudyDate=20240101-20240131` (attribute keywords or tags,
 * as the PACS's QIDO-RS accepts them), every page followed.
 */
export async function searchPacsInstances(dicomweb: string, query: string): Promise<DicomWebSource[]> {
  if (!query.split('&').every((pair) => /^[^=]+=/.test(pair))) throw new Error(`--pacs-query "${query}": give QIDO-RS matching keys as KEY=VALUE joined by &, e.g. Modality=CR&StudyDate=20240101-20240131`);
  const client = new DicomWebClient(dicomweb);
  const refs = DicomWebClient.refs(await client.searchInstances(Object.fromEntries(new URLSearchParams(query))));
  // In UID order, whatever order the PACS answers in: the same search submitted again is the same batch.
  const key = (r: { study: string; series: string; sop: string }) => `${r.study}/${r.series}/${r.sop}`;
  return refs.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)).map(({ study, series, sop }) => ({ kind: 'dicomweb', root: client.root, study, series, sop }));
}
