/** Shape rules the gradient graphs rely on. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder } from '../../src/onnx/index.js';

describe('shape rules used by gradient graphs', () => {
  it('Expand to a shape computed at run time keeps the rank and the sizes that cannot change', () => {
    const b = new GraphBuilder('t');
    const x = b.input('x', 'float32', ['batch', 14]);
    const row = b.input('row', 'float32', [3, 1, 14]);
    const expanded = b.op('Expand', [row, b.op('Shape', [x])]);
    assert.deepEqual(expanded.type.shape, [3, '?', 14]);
    const scalar = b.op('Expand', [b.scalar(1), b.op('Shape', [x])]);
    assert.deepEqual(scalar.type.shape, ['?', '?']);
  });
});
