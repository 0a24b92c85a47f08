/**
 * Training-mode BatchNormalization rewritten into multi-threaded ops (batch-norm-lowering.ts): the same outputs as
 * ONNX Runtime's own kernel and a float64 reference, statistics of a Concat assembled from its inputs' statistics
 * (each input's computed once), and nodes it cannot rewrite left alone.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lowerTrainingNorms } from '../../../src/train/step/batch-norm-lowering.js';
import { type Graph, GraphBuilder, type HostTensor, type Value, createModel, float32 } from '../../../src/onnx/index.js';
import { runOnce } from '../../helpers/session.js';

const BATCH = 3;
const SIZE = 5;

function values(count: number, seed: number, offset: number): Float32Array {
  // Per-channel offsets well above the spread, where a one-pass E[x^2] - mean^2 would lose digits.
  return Float32Array.from({ length: count }, (_, i) => Math.sin(i * 1.7 + seed) + offset * Math.cos(Math.floor(i / (SIZE * SIZE)) + seed));
}

/** a (4 ch) and b (8 ch) concatenated and normalised by two layers, as DenseNet does, and a normalised on its own. */
function denseGraph(): { graph: Graph; feeds: Record<string, HostTensor> } {
  const b = new GraphBuilder('dense');
  const a = b.input('a', 'float32', ['batch', 4, SIZE, SIZE]);
  const c = b.input('c', 'float32', ['batch', 8, SIZE, SIZE]);
  const cat = b.op('Concat', [a, c], { axis: 1 }, { name: 'cat' });
  const feeds: Record<string, HostTensor> = {
    a: float32([BATCH, 4, SIZE, SIZE], values(BATCH * 4 * SIZE * SIZE, 1, 20)),
    c: float32([BATCH, 8, SIZE, SIZE], values(BATCH * 8 * SIZE * SIZE, 2, 5)),
  };
  const norm = (name: string, x: Value, channels: number) => {
    const param = (suffix: string, f: (i: number) => number) => {
      feeds[`${name}.${suffix}`] = float32([channels], Array.from({ length: channels }, (_, i) => f(i)));
      return b.input(`${name}.${suffix}`, 'float32', [channels]);
    };
    const inputs = [param('weight', (i) => 1 + 0.1 * i), param('bias', (i) => 0.05 * i - 0.2), param('running_mean', () => 0), param('running_var', () => 1)];
    const [y, mean, variance] = b.node('BatchNormalization', [x, ...inputs], { momentum: 0, training_mode: 1, epsilon: 1e-5 }, { name, outputs: [`${name}.y`, `${name}.batch_mean`, `${name}.batch_var`] });
    b.output(b.op('Relu', [y], {}, { name: `${name}.relu` }));
    b.output(mean);
    b.output(variance);
  };
  norm('layer1.norm', cat, 12);
  norm('layer2.norm', cat, 12);
  norm('block.norm', a, 4);
  return { graph: b.build(), feeds };
}

/** Per-channel batch mean and biased variance in float64. */
function reference(x: Float32Array, channels: number): { mean: number[]; variance: number[] } {
  const plane = SIZE * SIZE;
  const at = (n: number, c: number, k: number) => x[(n * channels + c) * plane + k];
  const mean: number[] = [];
  const variance: number[] = [];
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let n = 0; n < BATCH; n++) for (let k = 0; k < plane; k++) sum += at(n, c, k);
    const m = sum / (BATCH * plane);
    let squares = 0;
    for (let n = 0; n < BATCH; n++) for (let k = 0; k < plane; k++) squares += (at(n, c, k) - m) ** 2;
    mean.push(m);
    variance.push(squares / (BATCH * plane));
  }
  return { mean, variance };
}

function closeTo(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const scale = Math.max(1, Math.abs(expected[i]));
    assert.ok(Math.abs(actual[i] - expected[i]) <= tolerance * scale, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

describe('training-mode BatchNormalization lowering', () => {
  it('gives ONNX Runtime kernel outputs, and float64 statistics, for a Concat input and a plain one', async () => {
    const { graph, feeds } = denseGraph();
    const [kernel, lowered] = [await runOnce(createModel(graph), feeds, 2), await runOnce(createModel(lowerTrainingNorms(graph)), feeds, 2)];
    for (const name of Object.keys(kernel)) closeTo(lowered[name].data as Float32Array, kernel[name].data as Float32Array, 2e-6, name);

    const a = feeds.a.data as Float32Array;
    const c = feeds.c.data as Float32Array;
    const cat = reference(Float32Array.from({ length: BATCH * 12 * SIZE * SIZE }, (_, i) => {
      const n = Math.floor(i / (12 * SIZE * SIZE));
      const ch = Math.floor(i / (SIZE * SIZE)) % 12;
      const k = i % (SIZE * SIZE);
      return ch < 4 ? a[(n * 4 + ch) * SIZE * SIZE + k] : c[(n * 8 + ch - 4) * SIZE * SIZE + k];
    }), 12);
    for (const layer of ['layer1.norm', 'layer2.norm']) {
      closeTo(lowered[`${layer}.batch_mean`].data as Float32Array, cat.mean, 1e-6, `${layer} mean`);
      closeTo(lowered[`${layer}.batch_var`].data as Float32Array, cat.variance, 1e-6, `${layer} variance`);
    }
    closeTo(lowered['block.norm.batch_var'].data as Float32Array, reference(a, 4).variance, 1e-6, 'block.norm variance');
  });

  it('computes each tensor statistics once, however many normalisations read it', () => {
    const lowered = lowerTrainingNorms(denseGraph().graph);
    const ops = lowered.nodes.map((n) => n.opType);
    assert.equal(ops.filter((op) => op === 'BatchNormalization').length, 0);
    // One sum of squares per distinct input (a and c), none for the concatenation itself.
    assert.equal(ops.filter((op) => op === 'ReduceSumSquare').length, 2);
    assert.equal(ops.filter((op) => op === 'Conv').length, 3);
  });

  it('leaves inference-mode normalisations and non-image inputs as they are', () => {
    const b = new GraphBuilder('other');
    const x = b.input('x', 'float32', ['batch', 6]);
    const p = (name: string) => b.input(name, 'float32', [6]);
    const [y] = b.node('BatchNormalization', [x, p('g'), p('b'), p('m'), p('v')], { momentum: 0, training_mode: 1 }, { outputs: 3 });
    const image = b.input('image', 'float32', ['batch', 6, 2, 2]);
    const z = b.op('BatchNormalization', [image, p('g2'), p('b2'), p('m2'), p('v2')]);
    b.output(y);
    b.output(z);
    const graph = b.build();
    assert.deepEqual(lowerTrainingNorms(graph).nodes, graph.nodes);
  });
});
