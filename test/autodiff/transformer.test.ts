/**
 * Transformer graphs differentiated end to end against PyTorch autograd (float64): exact GELU as the ONNX exporter
 * writes it, and a torchvision Swin block (padding, cyclic shift as Slice + Concat, shift mask, relative position
 * bias lookup, softmax attention, GELU MLP) with patch merging (strided slices), written here as ONNX ops the way
 * torchvision computes it. Fixtures: scripts/fixtures/make_autodiff_transformer.py.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { addGradients } from '../../src/autodiff/gradients.js';
import { GraphBuilder, type HostTensor, type Value, createModel, float32, int64 } from '../../src/onnx/index.js';
import { fixturePath, readFixture } from '../helpers/fixtures.js';
import { runOnce } from '../helpers/session.js';
import { type InputKind, generated, relativeError } from './generated.js';

interface TensorSpec {
  name: string;
  shape: number[];
  seed: number;
  kind: InputKind;
  scale: number;
}

interface TransformerCase {
  name: string;
  tensors: TensorSpec[];
  constants: Record<string, number[]>;
  output: { shape: number[]; cotangent_seed: number };
  expected: Record<string, { offset: number; length: number }>;
}

const fixture: { cases: TransformerCase[] } = JSON.parse(readFileSync(fixturePath('autodiff', 'transformer.json'), 'utf8'));
const blobBytes = readFixture('autodiff', 'transformer.bin.br');
const blob = new Float32Array(blobBytes.buffer, blobBytes.byteOffset, blobBytes.byteLength / 4);
const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

// The Swin case's geometry (make_autodiff_transformer.py): a 6 x 6 map of 8 channels, 2 heads, windows of 4 shifted by 2.
const [SIZE, DIM, HEADS, WINDOW, SHIFT] = [6, 8, 2, 4, 2];
const PADDED = SIZE + ((WINDOW - (SIZE % WINDOW)) % WINDOW);
const [WINDOWS, TOKENS, HEAD_DIM] = [(PADDED / WINDOW) ** 2, WINDOW * WINDOW, DIM / HEADS];

function gelu(b: GraphBuilder, x: Value): Value {
  const erf = b.op('Erf', [b.op('Div', [x, b.scalar(Math.SQRT2)])]);
  return b.op('Mul', [b.op('Mul', [x, b.op('Add', [erf, b.scalar(1)])]), b.scalar(0.5)]);
}

/** torch.nn.functional.linear: x W^T + bias. */
function linear(b: GraphBuilder, x: Value, weight: Value, bias?: Value): Value {
  const product = b.op('MatMul', [x, b.op('Transpose', [weight], { perm: [1, 0] })]);
  return bias ? b.op('Add', [product, bias]) : product;
}

const layerNorm = (b: GraphBuilder, x: Value, t: Record<string, Value>, prefix: string) =>
  b.op('LayerNormalization', [x, t[`${prefix}.weight`], t[`${prefix}.bias`]], { axis: -1, epsilon: 1e-5 });

const reshape = (b: GraphBuilder, x: Value, shape: number[]) => b.op('Reshape', [x, b.ints(shape)]);
const transpose = (b: GraphBuilder, x: Value, perm: number[]) => b.op('Transpose', [x], { perm });

/** torch.roll along one axis of known size: the last `shift` entries move to the front (Slice + Concat, as exported). */
function roll(b: GraphBuilder, x: Value, shift: number, axis: number, size: number): Value {
  const s = ((shift % size) + size) % size;
  const part = (start: number, end: number) => b.op('Slice', [x, b.ints([start]), b.ints([end]), b.ints([axis])]);
  return b.op('Concat', [part(size - s, size), part(0, size - s)], { axis });
}

/** torchvision's SwinTransformerBlock (shifted_window_attention) on [batch, SIZE, SIZE, DIM]. */
function swinBlock(b: GraphBuilder, x: Value, t: Record<string, Value>, constants: Record<string, number[]>): Value {
  const pad = PADDED - SIZE;
  let h = b.op('Pad', [layerNorm(b, x, t, 'block.norm1'), b.ints([0, 0, 0, 0, 0, pad, pad, 0])]);
  h = roll(b, roll(b, h, -SHIFT, 1, PADDED), -SHIFT, 2, PADDED);
  const per = PADDED / WINDOW;
  const windows = reshape(b, transpose(b, reshape(b, h, [-1, per, WINDOW, per, WINDOW, DIM]), [0, 1, 3, 2, 4, 5]), [-1, TOKENS, DIM]);
  const qkv = transpose(b, reshape(b, linear(b, windows, t['block.attn.qkv.weight'], t['block.attn.qkv.bias']), [-1, TOKENS, 3, HEADS, HEAD_DIM]), [2, 0, 3, 1, 4]);
  const [q, k, v] = [0, 1, 2].map((i) => b.op('Gather', [qkv, b.constant(int64([], [i]))], { axis: 0 }));
  let attention = b.op('MatMul', [b.op('Mul', [q, b.scalar(HEAD_DIM ** -0.5)]), transpose(b, k, [0, 1, 3, 2])]);
  const index = b.constant(int64([TOKENS * TOKENS], constants['block.attn.relative_position_index']));
  const table = b.op('Gather', [t['block.attn.relative_position_bias_table'], index], { axis: 0 });
  const bias = b.op('Unsqueeze', [transpose(b, reshape(b, table, [TOKENS, TOKENS, -1]), [2, 0, 1]), b.ints([0])]);
  attention = b.op('Add', [attention, bias]);
  const mask = b.constant(float32([1, WINDOWS, 1, TOKENS, TOKENS], constants.attention_mask));
  attention = reshape(b, b.op('Add', [reshape(b, attention, [-1, WINDOWS, HEADS, TOKENS, TOKENS]), mask]), [-1, HEADS, TOKENS, TOKENS]);
  attention = b.op('Softmax', [attention], { axis: -1 });
  let o = reshape(b, transpose(b, b.op('MatMul', [attention, v]), [0, 2, 1, 3]), [-1, TOKENS, DIM]);
  o = linear(b, o, t['block.attn.proj.weight'], t['block.attn.proj.bias']);
  o = reshape(b, transpose(b, reshape(b, o, [-1, per, per, WINDOW, WINDOW, DIM]), [0, 1, 3, 2, 4, 5]), [-1, PADDED, PADDED, DIM]);
  o = roll(b, roll(b, o, SHIFT, 1, PADDED), SHIFT, 2, PADDED);
  o = b.op('Slice', [o, b.ints([0, 0]), b.ints([SIZE, SIZE]), b.ints([1, 2])]);
  const attended = b.op('Add', [x, o]);
  const hidden = gelu(b, linear(b, layerNorm(b, attended, t, 'block.norm2'), t['block.mlp.0.weight'], t['block.mlp.0.bias']));
  return b.op('Add', [attended, linear(b, hidden, t['block.mlp.3.weight'], t['block.mlp.3.bias'])]);
}

/** torchvision's PatchMerging on an even map: the four interleaved quarters side by side, LayerNorm, reduction. */
function patchMerging(b: GraphBuilder, x: Value, t: Record<string, Value>): Value {
  return linear(b, layerNorm(b, mergedQuarters(b, x), t, 'merge.norm'), t['merge.reduction.weight']);
}

function mergedQuarters(b: GraphBuilder, x: Value): Value {
  const quarter = (row: number, col: number) => b.op('Slice', [x, b.ints([row, col]), b.ints([SIZE, SIZE]), b.ints([1, 2]), b.ints([2, 2])]);
  return b.op('Concat', [quarter(0, 0), quarter(1, 0), quarter(0, 1), quarter(1, 1)], { axis: -1 });
}

const BUILDERS: Record<string, (b: GraphBuilder, t: Record<string, Value>, constants: Record<string, number[]>) => Value> = {
  'exact GELU (Div, Erf, Add, Mul, Mul)': (b, t) => gelu(b, t.x),
  'Swin block (window 4, shift 2, padded 6 x 6) and patch merging': (b, t, constants) => patchMerging(b, swinBlock(b, t.x, t, constants), t),
};

/**
 * Each of the ~30 float32 ops in series adds a few 2^-24 relative to the magnitudes it combines (sums of at most 32
 * terms, no cancellation past LayerNorm's centring of order-1 data): 30 * 3 * 2^-24 ~ 5e-6 of the largest magnitude
 * bounds it whatever the summation order (AVX2 or AVX-512 kernels); measured ~3e-7. A wrong rule is off by order 1.
 */
const TOLERANCE = 5e-6;

describe('transformer graphs differentiated end to end, against PyTorch autograd (float64)', () => {
  for (const c of fixture.cases) {
    it(c.name, async (t) => {
      const build = BUILDERS[c.name];
      assert.ok(build, `a graph for the fixture case "${c.name}"`);
      const b = new GraphBuilder('transformer');
      const feeds: Record<string, HostTensor> = {};
      const values: Record<string, Value> = {};
      for (const spec of c.tensors) {
        const feedName = spec.name.replaceAll('.', '_');
        feeds[feedName] = float32(spec.shape, generated(count(spec.shape), spec.seed, spec.kind).map((v) => v * spec.scale));
        // The data input declares its batch unknown, as model graphs do.
        values[spec.name] = b.input(feedName, 'float32', spec.name === 'x' && spec.shape.length === 4 ? ['batch', ...spec.shape.slice(1)] : spec.shape);
      }
      const y = build(b, values, c.constants);
      b.output(y, 'output');
      feeds.cotangent = float32(c.output.shape, generated(count(c.output.shape), c.output.cotangent_seed));
      const cotangent = b.input('cotangent', 'float32', y.type.shape);
      const grads = addGradients(b, { seeds: new Map([[y.name, cotangent]]), sources: c.tensors.map((s) => values[s.name].name) });
      for (const spec of c.tensors) {
        const g = grads.get(values[spec.name].name);
        assert.ok(g, `a gradient for ${spec.name}`);
        b.output(g, `grad.${spec.name}`);
      }
      const out = await runOnce(createModel(b.build()), feeds);
      for (const [key, where] of Object.entries(c.expected)) {
        const want = blob.subarray(where.offset, where.offset + where.length);
        assert.equal(out[key].data.length, want.length, `${key} size`);
        const error = relativeError(out[key].data as Float32Array, want);
        t.diagnostic(`${key}: relative error ${error.toExponential(2)}`);
        assert.ok(error < TOLERANCE, `${key}: relative error ${error}`);
      }
    });
  }
});

/**
 * Explanations take several classes' gradients in one backward pass (replicas stacked along the batch axis). The
 * rules that claim to support it must give each replica what a backward pass of its cotangent alone gives: here
 * through window attention laid out batch first (LayerNormalization, Pad, roll, Split, MatMul of two activations,
 * Softmax), GELU (Div, Erf, Mul of two activations) and patch merging (strided Slice, Concat).
 */
describe('transformer ops with several cotangents in one backward pass', () => {
  const batch = 2;
  const x = float32([batch, SIZE, SIZE, DIM], generated(batch * SIZE * SIZE * DIM, 11));
  const cotangents = [21, 22].map((seed) => generated(batch * 3 * 3 * 4 * DIM, seed));

  async function inputGradient(replicas: number, cotangent: Float32Array): Promise<Float32Array> {
    const b = new GraphBuilder('replicas');
    const input = b.input('x', 'float32', ['batch', SIZE, SIZE, DIM]);
    const norm = (v: Value, channels: number, seed: number) => {
      const weight = b.constant(float32([channels], generated(channels, seed, 'positive')));
      const bias = b.constant(float32([channels], generated(channels, seed + 1)));
      return b.op('LayerNormalization', [v, weight, bias], { axis: -1, epsilon: 1e-5 });
    };
    const pad = PADDED - SIZE;
    const per = PADDED / WINDOW;
    let h = b.op('Pad', [norm(input, DIM, 31), b.ints([0, 0, 0, 0, 0, pad, pad, 0])]);
    h = roll(b, roll(b, h, -SHIFT, 1, PADDED), -SHIFT, 2, PADDED);
    h = reshape(b, transpose(b, reshape(b, h, [0, per, WINDOW, per, WINDOW, DIM]), [0, 1, 3, 2, 4, 5]), [0, WINDOWS, TOKENS, DIM]);
    const qkvWeight = b.constant(float32([DIM, 3 * DIM], generated(3 * DIM * DIM, 51).map((v) => v / 4)));
    const [q, k, v] = b.node('Split', [b.op('MatMul', [h, qkvWeight])], { axis: -1 }, { outputs: 3 });
    const heads = (t: Value, perm: number[]) => transpose(b, reshape(b, t, [0, 0, TOKENS, HEADS, HEAD_DIM]), perm);
    const scores = b.op('MatMul', [b.op('Mul', [heads(q, [0, 1, 3, 2, 4]), b.scalar(HEAD_DIM ** -0.5)]), heads(k, [0, 1, 3, 4, 2])]);
    let o = b.op('MatMul', [b.op('Softmax', [scores], { axis: -1 }), heads(v, [0, 1, 3, 2, 4])]);
    o = reshape(b, transpose(b, o, [0, 1, 3, 2, 4]), [0, 0, TOKENS, DIM]);
    o = reshape(b, transpose(b, reshape(b, o, [0, per, per, WINDOW, WINDOW, DIM]), [0, 1, 3, 2, 4, 5]), [0, PADDED, PADDED, DIM]);
    o = roll(b, roll(b, o, SHIFT, 1, PADDED), SHIFT, 2, PADDED);
    o = gelu(b, b.op('Slice', [o, b.ints([0, 0]), b.ints([SIZE, SIZE]), b.ints([1, 2])]));
    const y = norm(mergedQuarters(b, o), 4 * DIM, 41);
    b.output(y, 'y');
    const seed = b.input('cotangent', 'float32', ['stacked', 3, 3, 4 * DIM]);
    const g = addGradients(b, { seeds: new Map([[y.name, seed]]), sources: ['x'], replicas }).get('x');
    assert.ok(g);
    b.output(g, 'dx');
    const out = await runOnce(createModel(b.build()), { x, cotangent: float32([replicas * batch, 3, 3, 4 * DIM], cotangent) });
    assert.deepEqual(out.dx.dims, [replicas * batch, SIZE, SIZE, DIM]);
    return out.dx.data as Float32Array;
  }

  it('each replica of the stacked backward pass equals its own backward pass', async () => {
    const stacked = new Float32Array(cotangents[0].length * 2);
    stacked.set(cotangents[0]);
    stacked.set(cotangents[1], cotangents[0].length);
    const together = await inputGradient(2, stacked);
    const size = together.length / 2;
    for (const [r, cotangent] of cotangents.entries()) {
      const alone = await inputGradient(1, cotangent);
      // The same float32 ops on the same values; only ONNX Runtime's summation order may differ between the two graphs.
      assert.ok(relativeError(together.subarray(r * size, (r + 1) * size), alone) < 1e-6, `replica ${r}`);
    }
    assert.ok(relativeError(together.subarray(0, size), together.subarray(size)) > 0.1, 'the two cotangents give different gradients');
  });
});
