/**
 * k x k convolutions and depthwise correlations with computed weights, rewritten into ONNX Runtime's blocked layout
 * (blocked-convolutions.ts): the probe finds this CPU's block size, the rewrite gives the plain Convs' results
 * (padded, strided, dilated, with a bias), and convolutions it cannot serve, or would slow down, are left alone.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { BLOCKED_DOMAIN, blockConvolutions, withBlockedDomain } from '../../../src/train/step/blocked-convolutions.js';
import { GraphBuilder, type HostTensor, createModel, float32 } from '../../../src/onnx/index.js';
import { probeBlockSize } from '../../../src/train/step/blocked-layout.js';
import { runOnce } from '../../helpers/session.js';

const BATCH = 2;
const SIZE = 9;

function values(count: number, seed: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => Math.sin(i * 0.61 + seed) + 0.3 * Math.cos(seed * (1 + (i % 5))));
}

/** Convolutions with weights fed as inputs (as a training step's are), and one with constant weights. */
function graph() {
  const b = new GraphBuilder('convs');
  const x = b.input('x', 'float32', ['batch', 32, SIZE, SIZE]);
  const weight = (name: string, dims: number[]) => b.input(name, 'float32', dims);
  const padded = b.op('Conv', [x, weight('w_padded', [32, 32, 3, 3]), weight('bias', [32])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'padded' });
  const strided = b.op('Conv', [padded, weight('w_strided', [64, 32, 3, 3])], { kernel_shape: [3, 3], strides: [2, 2], pads: [0, 1, 1, 0] }, { name: 'strided' });
  const pointwise = b.op('Conv', [x, weight('w_pointwise', [32, 32, 1, 1])], { kernel_shape: [1, 1] }, { name: 'pointwise' });
  const grouped = b.op('Conv', [x, weight('w_grouped', [32, 8, 3, 3])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 4 }, { name: 'grouped' });
  const narrow = b.op('Conv', [x, weight('w_narrow', [20, 32, 3, 3])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'narrow' });
  const constant = b.op('Conv', [x, b.constant(float32([32, 32, 3, 3], values(32 * 32 * 9, 9)), 'w_constant')], { kernel_shape: [3, 3] }, { name: 'constant' });
  // 64 channels on a 2 x 2 output: more than 8 per pixel.
  const small = b.input('x_small', 'float32', ['batch', 64, 2, 2]);
  const wide = b.op('Conv', [small, weight('w_wide', [64, 64, 3, 3])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'wide' });
  // Depthwise: correlations (kernel larger than the output and than 3 x 3, as a depthwise weight gradient's, here
  // one dilated) are rewritten; a forward 3 x 3 depthwise convolution is not.
  const correlation = b.op('Conv', [x, weight('w_correlation', [32, 1, 7, 7])], { kernel_shape: [7, 7], pads: [1, 1, 1, 1], group: 32 }, { name: 'correlation' });
  const dilatedCorrelation = b.op('Conv', [x, weight('w_dilated', [32, 1, 5, 5])], { kernel_shape: [5, 5], pads: [1, 1, 1, 1], dilations: [2, 2], group: 32 }, { name: 'dilated_correlation' });
  const depthwise = b.op('Conv', [x, weight('w_depthwise', [32, 1, 3, 3])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 32 }, { name: 'depthwise' });
  const outputs = { strided, pointwise, grouped, narrow, constant, wide, correlation, dilatedCorrelation, depthwise };
  for (const [name, v] of Object.entries(outputs)) b.output(v, `y_${name}`);
  return b.build();
}

describe('blocked-layout convolutions', () => {
  it("probe finds this CPU's block size", async () => {
    const flags = readFileSync('/proc/cpuinfo', 'utf8');
    const expected = /\bavx512f\b/.test(flags) ? 16 : /\bavx2\b/.test(flags) ? 8 : undefined;
    const found = await probeBlockSize();
    if (expected) assert.equal(found, expected);
    else assert.ok(found === undefined || found === 8 || found === 16, `block size ${found}`);
  });

  it('give the plain convolutions results, and leave alone those they cannot serve', async (t) => {
    const blockSize = await probeBlockSize();
    if (!blockSize) return t.skip('no blocked layout in this ONNX Runtime');
    const plain = graph();
    const blocked = blockConvolutions(plain, blockSize);
    const rewritten = blocked.nodes.filter((n) => n.domain === BLOCKED_DOMAIN && n.opType === 'Conv').map((n) => n.name);
    assert.deepEqual(rewritten, ['padded.blocked', 'strided.blocked', 'correlation.blocked', 'dilated_correlation.blocked']);
    for (const name of ['pointwise', 'grouped', 'narrow', 'constant', 'wide', 'depthwise']) assert.ok(blocked.nodes.some((n) => n.name === name && !n.domain), name);

    const feeds: Record<string, HostTensor> = {};
    plain.inputs.forEach((input, k) => {
      const dims = input.type.shape.map((d) => (d === 'batch' ? BATCH : d)) as number[];
      feeds[input.name] = float32(dims, values(dims.reduce((a, d) => a * d, 1), 2 + k));
    });
    const expected = await runOnce(createModel(plain), feeds);
    const got = await runOnce(withBlockedDomain(createModel(blocked)), feeds);
    for (const [name, want] of Object.entries(expected)) {
      const have = got[name].data as Float32Array;
      assert.deepEqual(got[name].dims, want.dims, name);
      const scale = Math.max(...(want.data as Float32Array).map(Math.abs));
      (want.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(have[i] - v) <= 1e-5 * scale, `${name}[${i}]: ${have[i]} vs ${v}`));
    }
  });

  it('import the blocked domain only into models that use it', () => {
    const model = createModel(graph());
    assert.equal(withBlockedDomain(model), model);
    const blocked = withBlockedDomain(createModel(blockConvolutions(graph(), 8)));
    assert.deepEqual(blocked.opsetImports.map((o) => o.domain), ['', BLOCKED_DOMAIN]);
  });
});
