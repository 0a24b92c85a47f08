/** The imaging layer's import rules: no ONNX Runtime anywhere, and nothing Node-only behind the browser entry. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/fixtures.js';

const IMAGING = join(REPO_ROOT, 'src', 'imaging');

function importsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  return [...source.matchAll(/^\s*(?:import|export)\s(?:[^'"]*?from\s+)?'([^']+)'/gm)].map((m) => m[1]);
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

// The one module imaging shares with the rest of src: seeded randomness (pure, browser-safe).
const SHARED = [resolve(IMAGING, '..', 'random.js')];

test('no imaging module imports ONNX Runtime or a module outside src/imaging (but shared randomness)', () => {
  for (const file of tsFiles(IMAGING)) {
    for (const spec of importsOf(file)) {
      assert.ok(!spec.includes('onnxruntime'), `${relative(IMAGING, file)} imports ${spec}`);
      const target = resolve(dirname(file), spec);
      if (spec.startsWith('.')) assert.ok(target.startsWith(IMAGING) || SHARED.includes(target), `${relative(IMAGING, file)} imports ${spec}`);
    }
  }
});

test('everything reachable from browser.ts avoids Node-only modules (node:*, sharp)', () => {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of importsOf(file)) {
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
      else assert.ok(!spec.startsWith('node:') && spec !== 'sharp' && spec !== 'fs', `${relative(IMAGING, file)} imports ${spec}`);
    }
  };
  visit(join(IMAGING, 'browser.ts'));
  for (const pure of ['resample.ts', 'preprocess.ts', 'augment.ts', 'geometry.ts', 'dicom/grayscale.ts']) assert.ok(seen.has(join(IMAGING, pure)), pure);
  assert.ok(!seen.has(join(IMAGING, 'decode.ts')));
});
