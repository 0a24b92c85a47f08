/**
 * Training-mode BatchNorm's input gradient is per-channel affine in its input (AffineGradient). Through a Concat the
 * affine part is split per input and applied once per input, summed over every normalisation that reads it, as
 * DenseNet's layers all normalise the earlier feature maps. Checked against the same normalisations of separately
 * fed copies of the concatenations, whose gradients are applied directly.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addGradients } from '../../src/autodiff/gradients.js';
import { GraphBuilder, type Value, createModel, float32 } from '../../src/onnx/index.js';
import { runOnce } from '../helpers/session.js';

const BATCH = 3;
const PLANE = 5 * 5;
const CHANNELS = { a: 4, c: 8, d: 16 };

function values(count: number, seed: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => Math.sin(i * 0.37 + seed) * 2 + Math.cos(seed * (1 + (i % 7))));
}

/** Two training-mode BatchNorms, over [a, c] and over [a, c, d], fed either as Concats or as given tensors. */
function graph(concatenated: boolean) {
  const b = new GraphBuilder(concatenated ? 'concat' : 'separate');
  const spatial = (channels: number): (number | string)[] => ['batch', channels, 5, 5];
  const norm = (name: string, x: Value, channels: number) => {
    const param = (suffix: string, fill: (i: number) => number) => b.constant(float32([channels], Array.from({ length: channels }, (_, i) => fill(i))), `${name}.${suffix}`);
    const [y] = b.node('BatchNormalization', [x, param('weight', (i) => 1 + 0.05 * i), param('bias', (i) => 0.1 - 0.02 * i), param('mean', () => 0), param('var', () => 1)], { momentum: 0, training_mode: 1 }, { name, outputs: 3 });
    return y;
  };
  let first: Value;
  let second: Value;
  const sources: string[] = [];
  if (concatenated) {
    const [a, c, d] = (['a', 'c', 'd'] as const).map((n) => b.input(n, 'float32', spatial(CHANNELS[n])));
    first = b.op('Concat', [a, c], { axis: 1 });
    second = b.op('Concat', [a, c, d], { axis: 1 });
    sources.push('a', 'c', 'd');
  } else {
    first = b.input('first', 'float32', spatial(CHANNELS.a + CHANNELS.c));
    second = b.input('second', 'float32', spatial(CHANNELS.a + CHANNELS.c + CHANNELS.d));
    sources.push('first', 'second');
  }
  const y1 = norm('norm1', first, CHANNELS.a + CHANNELS.c);
  const y2 = norm('norm2', second, CHANNELS.a + CHANNELS.c + CHANNELS.d);
  const seeds = new Map([y1, y2].map((y, k) => [y.name, b.input(`cotangent${k}`, 'float32', spatial(y.type.shape[1] as number))]));
  const grads = addGradients(b, { seeds, sources });
  for (const s of sources) b.output(grads.get(s)!, `grad.${s}`);
  return b.build();
}

/** Channels [from, from + count) of an NCHW batch. */
function channelSlice(data: Float32Array, channels: number, from: number, count: number): Float32Array {
  const out = new Float32Array(BATCH * count * PLANE);
  for (let n = 0; n < BATCH; n++) out.set(data.subarray((n * channels + from) * PLANE, (n * channels + from + count) * PLANE), n * count * PLANE);
  return out;
}

function concat(parts: Float32Array[], counts: number[]): Float32Array {
  const total = counts.reduce((s, c) => s + c, 0);
  const out = new Float32Array(BATCH * total * PLANE);
  for (let n = 0; n < BATCH; n++) {
    let offset = 0;
    parts.forEach((p, k) => {
      out.set(p.subarray(n * counts[k] * PLANE, (n + 1) * counts[k] * PLANE), (n * total + offset) * PLANE);
      offset += counts[k];
    });
  }
  return out;
}

describe('affine gradient terms through a Concat', () => {
  it('match the gradients of separately fed concatenations, applied once per input', async () => {
    const { a: na, c: nc, d: nd } = CHANNELS;
    const a = values(BATCH * na * PLANE, 1);
    const c = values(BATCH * nc * PLANE, 2);
    const d = values(BATCH * nd * PLANE, 3);
    const cotangents = { cotangent0: float32([BATCH, na + nc, 5, 5], values(BATCH * (na + nc) * PLANE, 4)), cotangent1: float32([BATCH, na + nc + nd, 5, 5], values(BATCH * (na + nc + nd) * PLANE, 5)) };
    const shared = graph(true);
    const affineConvs = shared.nodes.filter((n) => n.opType === 'Conv' && n.name.endsWith('.grad.affine'));
    assert.deepEqual(affineConvs.map((n) => n.inputs[0]).sort(), ['a', 'c', 'd'], 'one affine Conv per input, none per normalisation');

    const got = await runOnce(createModel(shared), { a: float32([BATCH, na, 5, 5], a), c: float32([BATCH, nc, 5, 5], c), d: float32([BATCH, nd, 5, 5], d), ...cotangents });
    const reference = await runOnce(createModel(graph(false)), {
      first: float32([BATCH, na + nc, 5, 5], concat([a, c], [na, nc])),
      second: float32([BATCH, na + nc + nd, 5, 5], concat([a, c, d], [na, nc, nd])),
      ...cotangents,
    });
    const first = reference['grad.first'].data as Float32Array;
    const second = reference['grad.second'].data as Float32Array;
    const expected = {
      a: channelSlice(first, na + nc, 0, na).map((v, i) => v + channelSlice(second, na + nc + nd, 0, na)[i]),
      c: channelSlice(first, na + nc, na, nc).map((v, i) => v + channelSlice(second, na + nc + nd, na, nc)[i]),
      d: channelSlice(second, na + nc + nd, na + nc, nd),
    };
    for (const [name, want] of Object.entries(expected)) {
      const have = got[`grad.${name}`].data as Float32Array;
      const scale = Math.max(...want.map(Math.abs));
      assert.ok(scale > 1e-3, `${name}: a non-trivial gradient`);
      have.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-5 * scale, `${name}[${i}]: ${v} vs ${want[i]}`));
    }
  });
});
