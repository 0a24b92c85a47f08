/** Locating the repository's fixtures and the shared real data from compiled tests (dist/test/...). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root (no package.json above the tests)');
    dir = parent;
  }
  return dir;
}

export const REPO_ROOT = findRepoRoot();
export const SHARED_DATA = join(REPO_ROOT, '..', 'shared', 'data');

export function fixturePath(...parts: string[]): string {
  return join(REPO_ROOT, 'test', 'fixtures', ...parts);
}

/** A fixture file, brotli-decompressed when its name ends in .br. */
export function readFixture(...parts: string[]): Uint8Array {
  const bytes = readFileSync(fixturePath(...parts));
  return parts.at(-1)?.endsWith('.br') ? new Uint8Array(brotliDecompressSync(bytes)) : new Uint8Array(bytes);
}

export function sharedDataPath(...parts: string[]): string {
  return join(SHARED_DATA, ...parts);
}
