/** Requests the autodiff cannot serve fail with messages that name the op, node or tensor. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildGradientGraph } from '../../src/explain/gradient-graph.js';
import { addGradients } from '../../src/autodiff/gradients.js';
import { buildTrainingGraph } from '../../src/train/step/graph.js';
import { buildModel } from '../../src/models/zoo/index.js';
import { GraphBuilder } from '../../src/onnx/index.js';

const model = buildModel('alexnet', { height: 64, width: 64, labels: ['a', 'b', 'c'] });

describe('autodiff errors', () => {
  it('an op without a gradient rule fails naming the op and the node', () => {
    const b = new GraphBuilder('g');
    const x = b.input('x', 'float32', [2, 3]);
    const y = b.op('Floor', [x], {}, { name: 'my.floor' });
    assert.throws(() => addGradients(b, { seeds: new Map([[y.name, b.input('dy', 'float32', [2, 3])]]), sources: ['x'] }), /Floor node "my\.floor": no gradient rule for the op "Floor"/);
  });

  it('an op whose rule cannot take several cotangents at once says so, naming the node', () => {
    const b = new GraphBuilder('g');
    const x = b.input('x', 'float32', ['batch', 3]);
    const y = b.op('Sigmoid', [x], {}, { name: 'my.sigmoid' });
    const seed = b.input('seed', 'float32', ['batch', 3]);
    assert.throws(() => addGradients(b, { seeds: new Map([[y.name, seed]]), sources: ['x'], replicas: 2 }), /Sigmoid node "my\.sigmoid": the gradient rule of "Sigmoid" does not support several cotangents/);
  });

  it('unknown tensors in a gradient request are named', () => {
    const b = new GraphBuilder('g');
    const x = b.input('x', 'float32', [2]);
    assert.throws(() => addGradients(b, { seeds: new Map([['nope', x]]), sources: ['x'] }), /no value named "nope"/);
  });

  it('a rule that cannot handle its node says why, naming the node', () => {
    const b = new GraphBuilder('g');
    const x = b.input('x', 'float32', [1, 1, 5, 5]);
    const y = b.op('AveragePool', [x], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }, { name: 'pool' });
    assert.throws(() => addGradients(b, { seeds: new Map([[y.name, y]]), sources: ['x'] }), /AveragePool node "pool": gradient: ceil_mode is not supported/);
  });

  it('slices and lookups whose positions are not constants or not known say so, naming the node', () => {
    const b = new GraphBuilder('g');
    const x = b.input('x', 'float32', [4, 6]);
    const axes = b.input('axes', 'int64', [1]);
    const sliced = b.op('Slice', [x, b.ints([1]), b.ints([3]), axes], {}, { name: 'crop' });
    assert.throws(() => addGradients(b, { seeds: new Map([[sliced.name, sliced]]), sources: ['x'] }), /Slice node "crop": gradient: axes and steps must be constants/);
    const indices = b.input('indices', 'int64', ['n']);
    const rows = b.op('Gather', [x, indices], { axis: 0 }, { name: 'lookup' });
    assert.throws(() => addGradients(b, { seeds: new Map([[rows.name, rows]]), sources: ['x'] }), /Gather node "lookup": gradient: the indices need a known shape/);
  });

  it('gradient graphs: unknown tensors, classes out of range, empty requests', () => {
    assert.throws(() => buildGradientGraph(model, { sources: ['nope'], classes: [0] }), /no tensor named "nope"/);
    assert.throws(() => buildGradientGraph(model, { sources: ['image'], classes: [3] }), /class 3 is not one of the 3 labels/);
    assert.throws(() => buildGradientGraph(model, { sources: ['image'], classes: [] }), /at least one class/);
    assert.throws(() => buildGradientGraph(model, { sources: [], classes: [0] }), /at least one source/);
    assert.throws(() => buildGradientGraph(model, { sources: ['image'], classes: [0], multiClass: 'loop' as never }), /multiClass must be/);
  });

  it('training graphs: invalid loss and optimizer settings, and non-cxr models', () => {
    assert.throws(() => buildTrainingGraph(model, { loss: { kind: 'focal', gamma: -2 }, optimizer: { kind: 'adamw' } }), /loss "focal": gamma must be >= 0/);
    assert.throws(() => buildTrainingGraph(model, { loss: { kind: 'bce' }, optimizer: { kind: 'adam' } as never }), /unknown optimizer/);
    assert.throws(() => buildTrainingGraph({ ...model, metadata: {} }, { loss: { kind: 'bce' }, optimizer: { kind: 'sgd' } }), /not a cxr-lens model/);
  });
});
