/**
 * The folder tree is the architecture (../shared/DESIGN.md), read from the imports of src/: no import cycle between
 * folders, autodiff on onnx/ alone, imaging and eval free of ONNX Runtime, and nothing below the command line and
 * the server importing them.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './helpers/fixtures.js';

const SRC = join(REPO_ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : name.endsWith('.ts') ? [path] : [];
  });
}

/** The folder of src/ a file is in ('api.ts' and the like for files directly in src/). */
function unitOf(path: string): string {
  return relative(SRC, path).split('/')[0].replace(/\.js$/, '.ts');
}

interface Import {
  from: string;
  file: string;
  to: string;
}

const imports: Import[] = sourceFiles(SRC).flatMap((file) => {
  const source = readFileSync(file, 'utf8');
  return [...source.matchAll(/(?:^|\n)\s*(?:import|export)\s(?:[^'";]*?from\s+)?'([^']+)'/g)].map((m) => {
    const spec = m[1];
    const to = spec.startsWith('.') ? unitOf(resolve(dirname(file), spec)) : `package:${spec}`;
    return { from: unitOf(file), file: relative(SRC, file), to };
  });
});

const edges = new Map<string, Set<string>>();
for (const { from, to } of imports) {
  if (from === to || to.startsWith('package:')) continue;
  if (!edges.has(from)) edges.set(from, new Set());
  edges.get(from)!.add(to);
}

test('the imports were read', () => {
  assert.ok(imports.length > 300, `${imports.length} imports`);
  assert.ok(edges.get('train')?.has('autodiff'), 'train uses autodiff');
});

test('no import cycle between folders of src/', () => {
  const reaches = (start: string, goal: string): string[] | undefined => {
    const queue: string[][] = [[start]];
    const seen = new Set([start]);
    while (queue.length) {
      const path = queue.shift()!;
      for (const next of edges.get(path[path.length - 1]) ?? []) {
        if (next === goal) return [...path, next];
        if (!seen.has(next)) {
          seen.add(next);
          queue.push([...path, next]);
        }
      }
    }
    return undefined;
  };
  for (const [from, targets] of edges) {
    for (const to of targets) {
      const back = reaches(to, from);
      assert.equal(back, undefined, `${from} imports ${to}, and ${back?.join(' -> ')} leads back`);
    }
  }
});

test('autodiff depends on onnx/ alone', () => {
  const outside = imports.filter((i) => i.from === 'autodiff' && i.to !== 'autodiff' && i.to !== 'onnx');
  assert.deepEqual(outside.map((i) => `${i.file} -> ${i.to}`), []);
});

test('imaging and eval stay pure (no ONNX Runtime); eval reaches other layers only from files.ts', () => {
  const runtime = imports.filter((i) => (i.from === 'imaging' || i.from === 'eval') && /onnxruntime/.test(i.to));
  assert.deepEqual(runtime.map((i) => `${i.file} -> ${i.to}`), []);
  const evalOut = imports.filter((i) => i.from === 'eval' && !i.to.startsWith('package:') && i.to !== 'eval' && i.file !== 'eval/files.ts');
  assert.deepEqual(evalOut.map((i) => `${i.file} -> ${i.to}`), []);
});

test('nothing below the faces imports them: cli only from nowhere, serve only from cli (and the library index)', () => {
  const upward = imports.filter((i) => (i.to === 'cli' && i.from !== 'cli') || (i.to === 'serve' && !['serve', 'cli', 'index.ts'].includes(i.from)));
  assert.deepEqual(upward.map((i) => `${i.file} -> ${i.to}`), []);
});
