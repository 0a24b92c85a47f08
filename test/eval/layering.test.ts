/** src/eval stays pure numbers: no ONNX Runtime, no Node modules and no other layer, except in files.ts. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../helpers/fixtures.js';

const EVAL = join(REPO_ROOT, 'src', 'eval');
const NODE_SIDE = 'files.ts';

test('every src/eval module but files.ts imports only other src/eval modules', () => {
  const files = readdirSync(EVAL).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length > 10);
  for (const file of files) {
    const source = readFileSync(join(EVAL, file), 'utf8');
    const specs = [...source.matchAll(/^\s*(?:import|export)\s(?:[^'"]*?from\s+)?'([^']+)'/gm)].map((m) => m[1]);
    if (file === NODE_SIDE) continue;
    for (const spec of specs) {
      assert.ok(spec.startsWith('./'), `${file} imports ${spec}`);
      assert.ok(resolve(dirname(join(EVAL, file)), spec).startsWith(EVAL), `${file} imports ${spec}`);
      assert.notEqual(spec, `./${NODE_SIDE.replace('.ts', '.js')}`, `${file} imports the Node side`);
    }
  }
});
