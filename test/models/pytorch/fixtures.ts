/** Locating the committed PyTorch fixtures and the shared real data from compiled tests (dist/test/...). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, sharedDataPath } from '../../helpers/fixtures.js';


export function fixture(name: string): Uint8Array {
  return readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'pytorch', name));
}

/** A file from ../shared/data beside the repository (the real data every checkout has next to it). */
export function sharedData(relative: string): Uint8Array {
  return readFileSync(sharedDataPath(relative));
}

export interface ExpectedTensor {
  shape: number[];
  dtype: string;
  contiguous: boolean;
  sum: number;
  sumOfSquares: number;
  weightedSum: number;
  first: number[];
  last: number | null;
}

export interface Expected {
  format: 'zip' | 'legacy';
  entryPath: string[];
  ignoredEntries: string[];
  renamedKeys: number;
  tensors: Record<string, ExpectedTensor>;
}

export function expected(name: string): Expected {
  return JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'pytorch', `${name}.expected.json`), 'utf8'));
}
