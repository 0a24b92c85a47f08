/** Small helpers for the data tests: temporary folders and CSV files written by the tests themselves. */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after } from 'node:test';
import { sharedDataPath } from '../helpers/fixtures.js';

export const NIH_SUBSET_CSV = sharedDataPath('nih-cxr14-subset', 'Data_Entry.csv');
export const NIH_64_CSV = sharedDataPath('nih-cxr14-64px', 'labels.csv');
export const NIH_1024_DIR = sharedDataPath('nih-cxr14-subset', 'images-1024');
export const NIH_META = sharedDataPath('nih-meta');
export const SAMPLE_LABELS_CSV = sharedDataPath('nih-meta', 'sample_labels.csv');
export const BBOX_CSV = sharedDataPath('nih-meta', 'BBox_List_2017.csv');

/** A fresh temporary folder, removed when the test file ends. */
export function tempFolder(prefix = 'cxr-data-'): string {
  const folder = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(folder, { recursive: true, force: true }));
  return folder;
}

export function writeText(path: string, text: string): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return path;
}

export function copyInto(source: string, target: string): string {
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(source, target);
  return target;
}
