/**
 * Every gradient rule against PyTorch autograd (float64): one ONNX node per case, the gradient graph of
 * sum(output * cotangent) built by addGradients, run on ONNX Runtime (fixtures: scripts/fixtures/make_autodiff_rules.py).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { addGradients } from '../../src/autodiff/gradients.js';
import { differentiableOps } from '../../src/autodiff/registry.js';
import { GraphBuilder, type HostTensor, type Value, createModel, float32, int64, tensor } from '../../src/onnx/index.js';
import { fixturePath, readFixture } from '../helpers/fixtures.js';
import { runOnce } from '../helpers/session.js';
import { type InputKind, generated, relativeError } from './generated.js';

type InputSpec = { kind: InputKind; shape: number[]; seed: number } | { const: 'int64' | 'float32' | 'bool'; value: number | number[]; shape?: number[] };

interface RuleCase {
  name: string;
  op: string;
  attributes: Record<string, number | number[] | string>;
  inputs: InputSpec[];
  outputs: number;
  wrt: number[];
  cotangents: Record<string, { shape: number[]; seed: number }>;
  expected: Record<string, { offset: number; length: number }>;
  tolerance: number;
}

const fixture: { cases: RuleCase[] } = JSON.parse(readFileSync(fixturePath('autodiff', 'rules.json'), 'utf8'));
const blobBytes = readFixture('autodiff', 'rules.bin.br');
const blob = new Float32Array(blobBytes.buffer, blobBytes.byteOffset, blobBytes.byteLength / 4);
const expected = (c: RuleCase, key: string) => blob.subarray(c.expected[key].offset, c.expected[key].offset + c.expected[key].length);
const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** With symbolicBatch, the data input(s) and cotangents declare their first dimension as "batch", as model graphs do. */
async function runCase(c: RuleCase, symbolicBatch = false): Promise<Record<string, HostTensor>> {
  const declared = (shape: number[], batched = true) => (symbolicBatch && batched && shape.length >= 3 ? ['batch', ...shape.slice(1)] : shape);
  const b = new GraphBuilder('rule');
  const feeds: Record<string, HostTensor> = {};
  const inputs: Value[] = c.inputs.map((spec, i) => {
    if ('const' in spec) {
      const values = Array.isArray(spec.value) ? spec.value : [spec.value];
      if (spec.const === 'int64') return spec.shape ? b.constant(int64(spec.shape, values)) : b.ints(values);
      if (spec.const === 'bool') return b.constant(tensor('bool', [values.length], Uint8Array.from(values)));
      return b.scalar(values[0]);
    }
    const name = `in${i}`;
    feeds[name] = float32(spec.shape, generated(count(spec.shape), spec.seed, spec.kind));
    return b.input(name, 'float32', declared(spec.shape, i === 0 || c.op === 'Concat'));
  });
  const outputs = b.node(c.op, inputs, c.attributes, { outputs: c.outputs, name: 'node' });
  outputs.forEach((o, k) => b.output(o, `output${k}`));
  const seeds = new Map<string, Value>();
  for (const [k, cot] of Object.entries(c.cotangents)) {
    const name = `cotangent${k}`;
    feeds[name] = float32(cot.shape, generated(count(cot.shape), cot.seed));
    seeds.set(outputs[Number(k)].name, b.input(name, 'float32', declared(cot.shape)));
  }
  const grads = addGradients(b, { seeds, sources: c.wrt.map((i) => inputs[i].name) });
  for (const i of c.wrt) {
    const g = grads.get(inputs[i].name);
    assert.ok(g, `a gradient for input ${i}`);
    b.output(g, `grad${i}`);
  }
  return runOnce(createModel(b.build()), feeds);
}

const covered = new Set<string>();
const BATCHED_OPS = new Set(['Conv', 'BatchNormalization', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Concat', 'MatMul', 'Add', 'Mul', 'LayerNormalization', 'Softmax', 'Gather', 'Slice']);

function check(c: RuleCase, out: Record<string, HostTensor>, report?: (message: string) => void): void {
  for (const key of Object.keys(c.expected)) {
    const want = expected(c, key);
    assert.equal(out[key].data.length, want.length, `${key} size`);
    const error = relativeError(out[key].data as Float32Array, want);
    report?.(`${key}: relative error ${error.toExponential(2)}`);
    assert.ok(error < c.tolerance, `${key}: relative error ${error}`);
  }
}

describe('gradient rules against PyTorch autograd (float64)', () => {
  for (const c of fixture.cases) {
    it(c.name, async (t) => {
      covered.add(c.op);
      check(c, await runCase(c), c.tolerance > 2e-6 ? (m) => t.diagnostic(m) : undefined);
    });
    if (BATCHED_OPS.has(c.op) && c.inputs.some((s) => 'kind' in s && s.shape.length >= 3)) {
      it(`${c.name}, batch size unknown when the graph is built`, async () => check(c, await runCase(c, true)));
    }
  }
  after(() => {
    // Every registered rule has a PyTorch case.
    const missing = differentiableOps().filter((op) => !covered.has(op));
    assert.deepEqual(missing, [], `rules without a PyTorch case: ${missing.join(', ')}`);
  });
});
