/**
 * Sums over the batch axis rewritten for speed (batch-sums.ts): the same sums as the plain ReduceSums (to float32
 * rounding, against a float64 reference), with a known or a symbolic batch size, and other reductions left alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rewriteBatchSums } from '../../../src/train/step/batch-sums.js';
import { type Graph, GraphBuilder, type HostTensor, createModel, float32 } from '../../../src/onnx/index.js';
import { runOnce } from '../../helpers/session.js';

const BATCH = 5;

function values(count: number, seed: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => Math.sin(i * 0.73 + seed) + 0.5);
}

/** A weight gradient's batch sum ([N, 6, 7] over N), BatchNorm's sums ([N, 4, 3, 5] over 0, 2, 3), and two others. */
function graph(batch: number | 'batch'): Graph {
  const b = new GraphBuilder('sums');
  const products = b.input('products', 'float32', [batch, 6, 7]);
  const image = b.input('image', 'float32', [batch, 4, 3, 5]);
  b.output(b.op('ReduceSum', [products, b.ints([0])], { keepdims: 0 }, { name: 'over_batch' }), 'over_batch');
  b.output(b.op('ReduceSum', [image, b.ints([0, 2, 3])], { keepdims: 0 }, { name: 'per_channel' }), 'per_channel');
  b.output(b.op('ReduceSum', [products, b.ints([0])], { keepdims: 1 }, { name: 'kept' }), 'kept');
  b.output(b.op('ReduceSum', [image, b.ints([2, 3])], { keepdims: 0 }, { name: 'planes' }), 'planes');
  return b.build({ valueTypes: true });
}

const feeds: Record<string, HostTensor> = {
  products: float32([BATCH, 6, 7], values(BATCH * 42, 1)),
  image: float32([BATCH, 4, 3, 5], values(BATCH * 60, 2)),
};

/** float64 sums of `input` over `axes`, the kept axes in order. */
function reference(input: HostTensor, axes: number[]): Float64Array {
  const dims = input.dims;
  const kept = dims.map((_, i) => i).filter((i) => !axes.includes(i));
  const out = new Float64Array(kept.reduce((a, i) => a * dims[i], 1));
  const index = new Array(dims.length).fill(0);
  for (let flat = 0; flat < input.data.length; flat++) {
    let rest = flat;
    for (let d = dims.length - 1; d >= 0; d--) {
      index[d] = rest % dims[d];
      rest = Math.floor(rest / dims[d]);
    }
    const at = kept.reduce((a, i) => a * dims[i] + index[i], 0);
    out[at] += Number(input.data[flat]);
  }
  return out;
}

describe('batch sums', () => {
  for (const batch of [BATCH, 'batch'] as const) {
    it(`rewrites the batch and per-channel sums, and gives the same sums (batch size ${batch === 'batch' ? 'symbolic' : 'known'})`, async () => {
      const plain = graph(batch);
      const rewritten = rewriteBatchSums(plain);
      const reductions = (g: Graph) => g.nodes.filter((n) => n.opType === 'ReduceSum').map((n) => n.name);
      assert.deepEqual(reductions(rewritten), ['per_channel.per_sample', 'per_channel.over_batch', 'kept', 'planes']);
      assert.ok(rewritten.nodes.some((n) => n.opType === 'MatMul' && n.name === 'over_batch.batch_sum'));

      const got = await runOnce(createModel(rewritten), feeds);
      const want = await runOnce(createModel(plain), feeds);
      const expected = { over_batch: reference(feeds.products, [0]), per_channel: reference(feeds.image, [0, 2, 3]) };
      for (const [name, exact] of Object.entries(expected)) {
        assert.deepEqual(got[name].dims, want[name].dims, name);
        (got[name].data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - exact[i]) <= 1e-6 * Math.abs(exact[i]), `${name}[${i}]: ${v} vs ${exact[i]}`));
      }
      for (const name of ['kept', 'planes']) assert.deepEqual(got[name], want[name], name);
    });
  }
});
