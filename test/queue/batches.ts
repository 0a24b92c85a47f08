/** Batches for the fault tests: submitted as users do (a CSV list) and read back as users do. */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sharedDataPath } from '../helpers/fixtures.js';
import { cxr } from './processes.js';
import type { RedisServer } from './redis.js';

const IMAGES = sharedDataPath('nih-cxr14-subset', 'images');

/** Submits the first `n` NIH films (and any `extra` paths) as a CSV list in `dir`; their paths. */
export function submitList(server: RedisServer, dir: string, name: string, n: number, extra: string[] = []): string[] {
  const files = [...readdirSync(IMAGES).filter((f) => f.endsWith('.png')).sort().slice(0, n).map((f) => join(IMAGES, f)), ...extra];
  const csv = join(dir, `${name}.csv`);
  writeFileSync(csv, `file\n${files.join('\n')}\n`);
  const run = cxr('batch', 'submit', csv, '--redis', server.url, '--name', name);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.trim(), name);
  return files;
}

/** Every image has exactly one result and no failure, read back with `cxr batch results --jsonl`. */
export function assertExactlyOnce(server: RedisServer, dir: string, name: string, files: string[]): void {
  const out = join(dir, `${name}.jsonl`);
  const run = cxr('batch', 'results', name, '--redis', server.url, '--jsonl', out);
  assert.equal(run.code, 0, run.stderr);
  const rows = readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { file: string; findings?: unknown[]; error?: string });
  assert.deepEqual(rows.map((r) => r.file), files, 'one row per image, in order, none twice');
  for (const r of rows) assert.equal(r.findings?.length ?? r.error, 14, r.error);
}
