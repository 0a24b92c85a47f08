/** Locating the committed PyTorch fixtures and the shared real data from compiled tests (dist/test/...). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('no package.json above the test file');
    dir = parent;
  }
  return dir;
}

export function fixture(name: string): Uint8Array {
  return readFileSync(join(repoRoot(), 'test', 'fixtures', 'pytorch', name));
}

/** A file from ../shared/data beside the repository (the real data every checkout has next to it). */
export function sharedData(relative: string): Uint8Array {
  return readFileSync(join(repoRoot(), '..', 'shared', 'data', relative));
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
  return JSON.parse(readFileSync(join(repoRoot(), 'test', 'fixtures', 'pytorch', `${name}.expected.json`), 'utf8'));
}
