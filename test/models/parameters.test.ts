/**
 * Parameters by declaration: every zoo model declares each parameter with the role its op would give it (the
 * derivation foreign files still use agrees, architecture by architecture), a weight read by an op the derivation
 * does not know (a MatMul, as in a transformer's linear layers) is still a parameter when a layer declares it, and
 * training refuses a float initializer that is neither a declared parameter nor a constant.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { torchvisionInit } from '../../src/models/init.js';
import { Layers } from '../../src/models/layers.js';
import { assertParametersDeclared, declarationsMetadata, parameterInputs, parameterSlots, readDeclarations } from '../../src/models/parameters.js';
import { ARCHITECTURE_NAMES, buildModel } from '../../src/models/zoo/index.js';
import { GraphBuilder, createModel, float32 } from '../../src/onnx/index.js';
import { buildTrainingGraph } from '../../src/train/step/index.js';

describe('declared parameters', () => {
  for (const architecture of ARCHITECTURE_NAMES) {
    it(`${architecture}: declared roles agree with the roles its ops imply, and every float initializer is a parameter or a constant`, () => {
      const model = buildModel(architecture, { height: 64, metadata: true });
      const declared = readDeclarations(model);
      assert.ok(declared, 'the model declares its parameters');
      const derived = parameterInputs(model.graph).map((s) => `${s.name}:${s.role}`);
      const slots = parameterSlots(model).map((s) => `${s.name}:${s.role}`);
      // What Conv, Gemm and BatchNormalization read is declared with the role the op implies; other layers'
      // parameters (Swin's LayerNorms, bias tables and MatMul linears) are declared, unseen by the ops.
      assert.deepEqual(slots.filter((slot) => derived.includes(slot)), derived);
      assert.equal(Object.keys(declared.parameters).length, slots.length);
      assert.doesNotThrow(() => assertParametersDeclared(model));
    });
  }

  it('a MatMul weight is a parameter because its layer declares it (the op-based derivation misses it)', () => {
    const b = new GraphBuilder('matmul-linear');
    const layers = new Layers(b, torchvisionInit(0));
    const x = b.input('x', 'float32', ['batch', 3]);
    const weight = layers.param('fc.weight', [3, 4], 'linear.weight');
    const bias = layers.param('fc.bias', [4], 'linear.bias');
    b.output(b.op('Add', [b.op('MatMul', [x, weight]), bias]), 'y');
    const model = createModel(b.build(), declarationsMetadata({ parameters: layers.declared, constants: [] }));
    assert.deepEqual(parameterInputs(model.graph), []);
    assert.deepEqual(parameterSlots(model).map((s) => [s.name, s.role, s.node.opType]), [['fc.weight', 'linear.weight', 'MatMul'], ['fc.bias', 'linear.bias', 'Add']]);
  });

  it('training refuses a float initializer that is neither declared nor a constant, naming it', () => {
    const model = buildModel('alexnet', { height: 64 });
    model.graph.initializers.set('classifier.rogue', float32([1], [0.5]));
    assert.throws(() => assertParametersDeclared(model), /neither declared parameters nor constants \(classifier\.rogue\)/);
    assert.throws(() => buildTrainingGraph(model, { loss: { kind: 'bce' }, optimizer: { kind: 'adamw' } }), /classifier\.rogue/);
  });

  it('a file without declarations (from elsewhere) falls back to the roles its ops imply', () => {
    const model = buildModel('resnet50', { height: 64 });
    const bare = { ...model, metadata: Object.fromEntries(Object.entries(model.metadata).filter(([k]) => k !== 'cxr.parameters')) };
    assert.equal(readDeclarations(bare), undefined);
    assert.deepEqual(parameterSlots(bare).map((s) => s.name), parameterSlots(model).map((s) => s.name));
  });
});
