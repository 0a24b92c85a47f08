/**
 * ReLU's gradient mask at its edges. It is min(1, 2^126 * y): in blocked-layout (explanation) graphs, on image-shaped
 * tensors, a Conv + Clip; elsewhere one HardSigmoid. Either must be exactly 0 or 1 from the smallest normal float to
 * the largest.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addGradients } from '../../src/autodiff/gradients.js';
import { GraphBuilder, createModel, float32 } from '../../src/onnx/index.js';
import { OrtSession } from '../../src/runtime/session.js';

const EDGES = [-3.4e38, -1, -(2 ** -126), 0, 2 ** -126, 1e-30, 1e-20, 0.5, 4, 1e30, 3.4e38, -0];

async function checkReluGradient(shape: number[], blockedLayout: boolean): Promise<void> {
  const b = new GraphBuilder('relu');
  const x = b.input('x', 'float32', ['batch', ...shape.slice(1)]);
  const cotangent = b.input('cotangent', 'float32', ['batch', ...shape.slice(1)]);
  const y = b.op('Relu', [x]);
  b.output(y, 'y');
  const grads = addGradients(b, { seeds: new Map([[y.name, cotangent]]), sources: [x.name], blockedLayout });
  const forms = b.build().nodes.map((n) => n.opType);
  const convForm = blockedLayout && shape.length === 4;
  assert.equal(forms.includes('Clip'), convForm, `mask form: ${forms.join(', ')}`);
  assert.equal(forms.includes('HardSigmoid'), !convForm, `mask form: ${forms.join(', ')}`);
  b.output(grads.get(x.name)!, 'dx');
  const session = await OrtSession.create(createModel(b.build()), { threads: 1 });
  try {
    const count = shape.reduce((a, d) => a * d, 1);
    const values = Float32Array.from({ length: count }, (_, i) => EDGES[i % EDGES.length]);
    const cotangents = Float32Array.from({ length: count }, (_, i) => 1 + i);
    const out = await session.run({ x: float32(shape, values), cotangent: float32(shape, cotangents) });
    const dx = out.dx.data as Float32Array;
    for (let i = 0; i < count; i++) {
      assert.equal(dx[i], values[i] > 0 ? cotangents[i] : 0, `x = ${values[i]}: gradient ${dx[i]}`);
    }
  } finally {
    await session.release();
  }
}

describe('ReLU gradient mask', () => {
  it('passes the gradient exactly where the output is positive, image-shaped in a blocked-layout graph (the Conv + Clip form)', async () => {
    await checkReluGradient([2, 3, 4, 4], true);
  });

  it('does the same in the HardSigmoid form: image-shaped in a training graph, and [batch, features] anywhere', async () => {
    await checkReluGradient([2, 3, 4, 4], false);
    await checkReluGradient([2, 24], true);
  });
});
