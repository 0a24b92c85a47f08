/** Locating the repository and the shared real data from compiled tests (which run from dist/test/...). */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The nearest folder above this file that holds package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}

/** The real data beside the checkout: <repo>/../shared/data, optionally a path inside it. */
export function dataPath(...parts: string[]): string {
  return resolve(repoRoot(), '..', 'shared', 'data', ...parts);
}
