/**
 * What a batch scores: the images of a folder (as `cxr predict` lists them) or the files a CSV names. Paths are
 * made absolute, because the workers that read them may run anywhere that mounts the same paths.
 */
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { readCsv, resolveColumns } from '../data/csv.js';
import { listImageFiles } from '../inference/files.js';

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
