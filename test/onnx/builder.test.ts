/** The graph builder and its shape inference: right shapes, and errors that name the node. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import { GraphBuilder, createModel, decodeModel, encodeModel, float32, int64, supportedOps } from '../../src/onnx/index.js';
import { OrtSession } from '../../src/runtime/session.js';

describe('shape inference agrees with ONNX Runtime', () => {
  const cases: { name: string; build: (b: GraphBuilder) => void }[] = [
    {
      name: 'strided, padded and grouped convolutions',
      build: (b) => {
        const x = b.input('x', 'float32', [2, 4, 17, 13]);
        b.output(b.op('Conv', [x, b.constant(float32([8, 4, 3, 3]))], { strides: [2, 2], pads: [1, 1, 1, 1] }), 'a');
        b.output(b.op('Conv', [x, b.constant(float32([4, 1, 3, 3]))], { group: 4, strides: [2, 1], pads: [0, 1, 2, 0], dilations: [2, 1] }), 'b');
        b.output(b.op('Conv', [x, b.constant(float32([6, 4, 7, 7]))], { auto_pad: 'SAME_UPPER', strides: [3, 3] }), 'c');
      },
    },
    {
      name: 'pooling with ceil mode and padding',
      build: (b) => {
        const x = b.input('x', 'float32', [1, 3, 14, 15]);
        b.output(b.op('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }), 'a');
        b.output(b.op('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }), 'b');
        b.output(b.op('AveragePool', [x], { kernel_shape: [2, 3], strides: [2, 3], ceil_mode: 1 }), 'c');
        b.output(b.op('GlobalAveragePool', [x]), 'd');
      },
    },
    {
      name: 'transposed convolution, reshapes, slices, pads, reductions and broadcasting',
      build: (b) => {
        const x = b.input('x', 'float32', [2, 6, 5, 7]);
        b.output(b.op('ConvTranspose', [x, b.constant(float32([6, 3, 3, 3]))], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 0] }), 'a');
        b.output(b.op('Reshape', [x, b.ints([0, -1, 7])]), 'b');
        b.output(b.op('Slice', [x, b.ints([1, -4]), b.ints([5, 100]), b.ints([1, 3]), b.ints([2, 2])]), 'c');
        b.output(b.op('Pad', [x, b.ints([0, 0, 1, 2, 0, 0, 3, 4])]), 'd');
        b.output(b.op('ReduceSum', [x, b.ints([1, 3])], { keepdims: 0 }), 'e');
        b.output(b.op('Add', [x, b.constant(float32([6, 1, 1]))]), 'f');
        b.output(b.op('Transpose', [x], { perm: [0, 2, 3, 1] }), 'g');
        b.output(b.op('Flatten', [x], { axis: 2 }), 'h');
        b.output(b.op('MatMul', [x, b.constant(float32([7, 4]))]), 'i');
      },
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const b = new GraphBuilder('t');
      c.build(b);
      const graph = b.build();
      const session = await OrtSession.create(createModel(graph), { threads: 1 });
      const input = graph.inputs[0];
      const dims = input.type.shape as number[];
      const outputs = await session.run({ [input.name]: float32(dims, new Float32Array(dims.reduce((p, d) => p * d, 1))) });
      for (const out of graph.outputs) assert.deepEqual(outputs[out.name].dims, out.type.shape, `output ${out.name}`);
      await session.release();
    });
  }
});

describe('builder errors name the node', () => {
  it('a convolution whose weight expects other channels', () => {
    const b = new GraphBuilder('t');
    const x = b.input('x', 'float32', ['batch', 3, 8, 8]);
    assert.throws(
      () => b.op('Conv', [x, b.constant(float32([4, 1, 3, 3]))], {}, { name: 'stem.conv' }),
      /Conv node "stem\.conv": input has 3 channels but the weight \[4, 1, 3, 3\] with group 1 expects 1/,
    );
  });

  it('shapes that cannot broadcast, a bad concatenation, an impossible reshape', () => {
    const b = new GraphBuilder('t');
    const x = b.input('x', 'float32', [2, 3, 4]);
    assert.throws(() => b.op('Add', [x, b.constant(float32([5]))], {}, { name: 'sum' }), /Add node "sum": shapes \[2, 3, 4\] and \[5\] cannot be broadcast/);
    assert.throws(() => b.op('Concat', [x, b.constant(float32([2, 4, 4]))], { axis: 2 }, { name: 'cat' }), /Concat node "cat": input 1 \[2, 4, 4\] does not match/);
    assert.throws(() => b.op('Reshape', [x, b.ints([5, -1])], {}, { name: 'r' }), /Reshape node "r": cannot reshape \[2, 3, 4\] \(24 values\) to \[5, -1\]/);
  });

  it('an op without a shape rule, an unknown attribute, a wrongly typed attribute', () => {
    const b = new GraphBuilder('t');
    const x = b.input('x', 'float32', [1, 2]);
    assert.throws(() => b.op('Foo', [x], {}, { name: 'mystery' }), /Foo node "mystery": the op "Foo" is not supported by cxr-lens/);
    assert.throws(() => b.op('Relu', [x], { alpha: 1 }, { name: 'act' }), /Relu node "act": unknown attribute "alpha"/);
    assert.throws(() => b.op('Conv', [x, x], { strides: 2 }, { name: 'c' }), /Conv node "c": attribute "strides" expects ints, got 2/);
    assert.ok(supportedOps().includes('Conv'));
  });

  it('inputs that do not exist, and names used twice', () => {
    const b = new GraphBuilder('t');
    const x = b.input('x', 'float32', [1, 2]);
    assert.throws(() => b.op('Relu', [{ name: 'ghost', type: x.type }], {}, { name: 'r' }), /Relu node "r": its input "ghost" does not exist/);
    b.op('Relu', [x], {}, { name: 'r1' });
    assert.throws(() => b.op('Relu', [x], {}, { name: 'r1' }), /a node named "r1" already exists/);
    assert.throws(() => b.input('x', 'float32', [1]), /a value named "x" already exists/);
  });

  it('folds shape arithmetic so PyTorch-style flatten patterns keep static shapes', () => {
    const b = new GraphBuilder('t');
    const x = b.input('x', 'float32', [2, 8, 3, 3]);
    const batch = b.op('Gather', [b.op('Shape', [x]), b.constant(int64([], [0]))], { axis: 0 });
    const target = b.op('Concat', [b.op('Unsqueeze', [batch, b.ints([0])]), b.ints([-1])], { axis: 0 });
    assert.deepEqual(b.op('Reshape', [x, target]).type.shape, [2, 72]);
  });
});

describe('intermediate value types', () => {
  it('are recorded on request, symbolic dimensions by name and unknown ones as unknown, and ONNX Runtime accepts them', async () => {
    const b = new GraphBuilder('t');
    const x = b.input('x', 'float32', ['batch', 4]);
    const doubled = b.op('Add', [x, x]);
    const flat = b.op('Reshape', [doubled, b.ints([-1])]);
    b.output(b.op('Relu', [flat]), 'y');
    assert.deepEqual(b.build().valueInfo, [], 'not recorded unless asked for');
    const graph = b.build({ valueTypes: true });
    const types = new Map(graph.valueInfo.map((v) => [v.name, v.type.shape]));
    assert.deepEqual(types.get(doubled.name), ['batch', 4]);
    assert.deepEqual(types.get(flat.name), ['?']);
    assert.ok(!types.has('y'), 'graph outputs are declared as outputs, not again as values');
    // Written out, an unknown dimension must not become a name ("?") that would make all unknown sizes equal.
    const bytes = encodeModel(createModel(graph));
    const written = onnxProto.onnx.ModelProto.decode(bytes).graph?.valueInfo?.find((v) => v.name === flat.name);
    const dim = written?.type?.tensorType?.shape?.dim?.[0];
    assert.ok(dim && !dim.dimParam && !dim.dimValue, `written as ${JSON.stringify(dim)}`);
    assert.deepEqual(decodeModel(bytes).graph.valueInfo.find((v) => v.name === flat.name)?.type.shape, ['?']);
    const session = await OrtSession.create(createModel(graph), { threads: 1 });
    try {
      const out = await session.run({ x: float32([3, 4], Array.from({ length: 12 }, (_, i) => i - 6)) });
      assert.deepEqual(Array.from(out.y.data as Float32Array), Array.from({ length: 12 }, (_, i) => Math.max(0, 2 * (i - 6))));
    } finally {
      await session.release();
    }
  });
});
