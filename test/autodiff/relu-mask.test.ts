/**
 * ReLU and Clip (ReLU6, hardtanh) gradient masks at their edges. Each bound's mask is 2^k * (y - bound) clipped to
 * [0, 1]: in blocked-layout (explanation) graphs, on image-shaped tensors, a Conv + Clip; elsewhere one HardSigmoid.
 * Either must be exactly 0 or 1 from the smallest normal float to the largest, and on each side of a bound's nearest
 * neighbours.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addGradients } from '../../src/autodiff/gradients.js';
import { GraphBuilder, type Value, createModel, float32 } from '../../src/onnx/index.js';
import { OrtSession } from '../../src/runtime/session.js';

const EDGES = [-3.4e38, -1, -(2 ** -126), 0, 2 ** -126, 1e-30, 1e-20, 0.5, 4, 1e30, 3.4e38, -0];

interface Activation {
  build(b: GraphBuilder, x: Value): Value;
  /** Where the gradient passes. */
  inside(x: number): boolean;
  /** How many bounds (one step mask each). */
  bounds: number;
  edges: number[];
}

const RELU: Activation = { build: (b, x) => b.op('Relu', [x]), inside: (x) => x > 0, bounds: 1, edges: EDGES };
// Float32 neighbours of 6 are 2^-21 away, of 1.5 2^-23.
const RELU6: Activation = {
  build: (b, x) => b.op('Clip', [x, b.scalar(0), b.scalar(6)]),
  inside: (x) => x > 0 && x < 6,
  bounds: 2,
  edges: [...EDGES, 6, 6 - 2 ** -21, 6 + 2 ** -19, 5.5, 7],
};
const HARDTANH: Activation = {
  build: (b, x) => b.op('Clip', [x, b.scalar(-1.5), b.scalar(1.5)]),
  inside: (x) => x > -1.5 && x < 1.5,
  bounds: 2,
  edges: [...EDGES, -1.5, -1.5 + 2 ** -23, -1.5 - 2 ** -22, 1.5, 1.5 - 2 ** -23, 1.5 + 2 ** -22],
};

async function checkGradient(activation: Activation, shape: number[], blockedLayout: boolean): Promise<void> {
  const b = new GraphBuilder('activation');
  const x = b.input('x', 'float32', ['batch', ...shape.slice(1)]);
  const cotangent = b.input('cotangent', 'float32', ['batch', ...shape.slice(1)]);
  const y = activation.build(b, x);
  b.output(y, 'y');
  const before = b.build().nodes.length;
  const grads = addGradients(b, { seeds: new Map([[y.name, cotangent]]), sources: [x.name], blockedLayout });
  const forms = b.build().nodes.slice(before).map((n) => n.opType);
  const convForm = blockedLayout && shape.length === 4;
  const count = (op: string) => forms.filter((f) => f === op).length;
  assert.equal(count('Conv'), convForm ? activation.bounds : 0, `mask form: ${forms.join(', ')}`);
  assert.equal(count('HardSigmoid'), convForm ? 0 : activation.bounds, `mask form: ${forms.join(', ')}`);
  b.output(grads.get(x.name)!, 'dx');
  const session = await OrtSession.create(createModel(b.build()), { threads: 1 });
  try {
    const size = shape.reduce((a, d) => a * d, 1);
    const values = Float32Array.from({ length: size }, (_, i) => activation.edges[i % activation.edges.length]);
    const cotangents = Float32Array.from({ length: size }, (_, i) => 1 + i);
    const out = await session.run({ x: float32(shape, values), cotangent: float32(shape, cotangents) });
    const dx = out.dx.data as Float32Array;
    for (let i = 0; i < size; i++) {
      assert.equal(dx[i], activation.inside(values[i]) ? cotangents[i] : 0, `x = ${values[i]}: gradient ${dx[i]}`);
    }
  } finally {
    await session.release();
  }
}

describe('ReLU and Clip gradient masks', () => {
  for (const [name, activation] of [['ReLU', RELU], ['ReLU6', RELU6], ['hardtanh(-1.5, 1.5)', HARDTANH]] as const) {
    it(`${name}: passes the gradient exactly inside, image-shaped in a blocked-layout graph (the Conv + Clip form)`, async () => {
      await checkGradient(activation, [2, 3, 4, 5], true);
    });

    it(`${name}: does the same in the HardSigmoid form: image-shaped in a training graph, and [batch, features] anywhere`, async () => {
      await checkGradient(activation, [2, 3, 4, 5], false);
      await checkGradient(activation, [2, 30], true);
    });
  }
});
