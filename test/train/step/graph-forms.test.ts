/**
 * The forms a DenseNet-121 training step takes after ONNX Runtime's own graph optimisation, where the step's speed
 * depends on them: 3x3 convolutions run in ORT's blocked layout, each affine BatchNorm gradient term is one Conv that
 * also adds the tensor's other gradient terms (ORT fuses the Add only when it knows both shapes), ReLU masks are one
 * HardSigmoid, and the optimizer's new state is written straight to the graph outputs (an Identity there copies
 * every moment each step).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { buildTrainingGraph } from '../../../src/train/step/graph.js';
import { buildModel } from '../../../src/models/zoo/index.js';
import { type Graph, decodeModel, encodeModel } from '../../../src/onnx/index.js';
import { probeBlockSize } from '../../../src/train/step/blocked-layout.js';
import { trainingSessionOptions } from '../../../src/train/step/session.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-training-forms-'));
let optimized: Graph;
let blockSize: number | undefined;

before(async () => {
  const model = buildModel('densenet121', { height: 128, width: 128 });
  blockSize = await probeBlockSize();
  const graph = buildTrainingGraph(model, { loss: { kind: 'bce' }, optimizer: { kind: 'adamw' }, blockSize });
  const file = join(dir, 'optimized.onnx');
  const session = await ort.InferenceSession.create(encodeModel(graph.model), { ...trainingSessionOptions(1), optimizedModelFilePath: file });
  await session.release();
  optimized = decodeModel(readFileSync(file)).graph;
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('DenseNet-121 training step as ONNX Runtime runs it', () => {
  it('runs each dense layer 3x3 convolution, forward and input gradient, in the blocked layout', (t) => {
    if (!blockSize) return t.skip('no blocked layout in this ONNX Runtime');
    const blocked = optimized.nodes.filter((n) => n.opType === 'Conv' && n.domain === 'com.microsoft.nchwc' && n.name.endsWith('.blocked'));
    assert.equal(blocked.filter((n) => n.name.endsWith('.conv2.blocked')).length, 58, 'forward');
    assert.equal(blocked.filter((n) => /\.conv2\.grad\.Conv_\d+\.blocked$/.test(n.name)).length, 58, 'input gradient');
    assert.equal(blocked.length, 116);
  });

  it('applies each affine gradient term in one Conv that also adds the other terms', () => {
    const affine = optimized.nodes.filter((n) => n.name.endsWith('.grad.affine'));
    assert.equal(affine.length, 121, 'one per normalised tensor');
    const unfused = affine.filter((n) => n.opType !== 'FusedConv' || n.inputs.length !== 4).map((n) => `${n.name} (${n.opType}, ${n.inputs.length} inputs)`);
    assert.deepEqual(unfused, []);
  });

  it('masks ReLU gradients with one HardSigmoid each', () => {
    const reluGradients = optimized.nodes.filter((n) => /(^|\.)relu\d*\.grad\./.test(n.name));
    assert.equal(reluGradients.filter((n) => n.opType === 'HardSigmoid').length, 121);
    assert.deepEqual(reluGradients.filter((n) => n.opType === 'Cast' || n.opType === 'Greater').map((n) => n.name), []);
  });

  it('writes the new parameters and AdamW moments straight to the outputs', () => {
    const updated = ['params.next', 'adam.exp_avg.next', 'adam.exp_avg_sq.next'];
    for (const name of updated) assert.ok(optimized.outputs.some((o) => o.name === name), name);
    const producers = optimized.nodes.filter((n) => n.outputs.some((o) => updated.includes(o)));
    assert.equal(producers.length, updated.length);
    assert.deepEqual(producers.filter((n) => n.opType === 'Identity').map((n) => n.name), [], 'computed there, not copied');
  });
});
