/** Reading and writing .onnx files: round trips, external data, checks, and malformed files. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import { buildModel } from '../../src/models/zoo/index.js';
import { GraphBuilder, checkGraph, createModel, decodeModel, encodeModel, readModelFile, writeModelFile } from '../../src/onnx/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'cxr-onnx-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('.onnx files', () => {
  it('round-trips a zoo model: nodes, attributes, weights and metadata survive', () => {
    const model = buildModel('mobilenet_v2', { height: 96 });
    const path = join(dir, 'm.onnx');
    writeModelFile(path, model);
    const back = readModelFile(path);
    assert.deepEqual(back.metadata, model.metadata);
    assert.deepEqual(back.graph.nodes, model.graph.nodes);
    assert.deepEqual(back.graph.inputs, model.graph.inputs);
    assert.equal(back.graph.initializers.size, model.graph.initializers.size);
    for (const [name, t] of model.graph.initializers) assert.deepEqual(back.graph.initializers.get(name), t, name);
    checkGraph(back.graph);
  });

  it('reads a third-party model (the quantised MobileNetV2, opset 12, int8 tensors)', () => {
    const model = readModelFile(sharedDataPath('weights', 'mobilenetv2-12-int8.onnx'));
    assert.equal(model.graph.nodes.filter((n) => n.opType === 'QLinearConv').length, 52);
    assert.equal(model.graph.initializers.get('475_quantized')?.dtype, 'int8');
  });

  it('resolves tensors stored in an external data file beside the model, and refuses paths outside it', () => {
    const { onnx } = onnxProto;
    const weights = new Float32Array([1, 2, 3, 4]);
    writeFileSync(join(dir, 'weights.bin'), new Uint8Array(weights.buffer));
    const proto = (location: string) =>
      onnx.ModelProto.encode({
        irVersion: 8,
        opsetImport: [{ domain: '', version: 17 }],
        graph: {
          name: 'g',
          node: [{ opType: 'Relu', input: ['w'], output: ['y'], name: 'relu' }],
          initializer: [{ name: 'w', dataType: 1, dims: [4], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: 'location', value: location }] }],
          output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } }],
        },
      }).finish();
    writeFileSync(join(dir, 'external.onnx'), proto('weights.bin'));
    assert.deepEqual(Array.from(readModelFile(join(dir, 'external.onnx')).graph.initializers.get('w')?.data as Float32Array), [1, 2, 3, 4]);
    writeFileSync(join(dir, 'escape.onnx'), proto('../../etc/passwd'));
    assert.throws(() => readModelFile(join(dir, 'escape.onnx')), /refuses external data location "\.\.\/\.\.\/etc\/passwd"/);
    assert.throws(() => decodeModel(readFileSync(join(dir, 'external.onnx')), { name: 'bytes.onnx' }), /tensor "w" is stored in the external file "weights\.bin"/);
  });

  it('names malformed files: empty, garbage, truncated, not a model, missing', () => {
    assert.throws(() => decodeModel(new Uint8Array(), { name: 'empty.onnx' }), /empty\.onnx: the file is empty/);
    const garbage = Uint8Array.from({ length: 256 }, (_, i) => (i * 151 + 7) & 255);
    assert.throws(() => decodeModel(garbage, { name: 'garbage.onnx' }), /garbage\.onnx: not (a readable ONNX model|an ONNX model)/);
    const bytes = encodeModel(buildModel('mobilenet_v2', { height: 64 }));
    assert.throws(() => decodeModel(bytes.subarray(0, bytes.length - 1000), { name: 'cut.onnx' }), /cut\.onnx: not a readable ONNX model \(protobuf decoding failed/);
    const png = readFileSync(sharedDataPath('nih-cxr14-subset', 'images-1024', '00000001_000.png'));
    assert.throws(() => decodeModel(png, { name: 'image.png' }), /image\.png: not (a readable ONNX model|an ONNX model)/);
    assert.throws(() => readModelFile(join(dir, 'nope.onnx')), /nope\.onnx: cannot read the model file \(ENOENT\)/);
  });
});

describe('graph checks', () => {
  const base = () => {
    const b = new GraphBuilder('g');
    const x = b.input('x', 'float32', [1, 4]);
    b.output(b.op('Relu', [b.op('Sigmoid', [x], {}, { name: 's' })], {}, { name: 'r' }));
    return b.build();
  };

  it('lists dangling inputs, duplicate names and outputs nothing produces', () => {
    const graph = base();
    graph.nodes[1].inputs[0] = 'missing';
    graph.nodes.push({ ...graph.nodes[0] });
    graph.outputs.push({ name: 'phantom', type: { dtype: 'float32', shape: [1] } });
    assert.throws(
      () => checkGraph(graph),
      (e: Error) =>
        e.message.includes('Relu node "r": input "missing" is not produced by any earlier node') &&
        e.message.includes('Sigmoid node "s": another node has the same name') &&
        e.message.includes('graph output "phantom" is not produced by any node'),
    );
  });

  it('finds nodes out of order, unsupported ops and outputs declared with the wrong shape', () => {
    const reordered = base();
    reordered.nodes.reverse();
    assert.throws(() => checkGraph(reordered), /Relu node "r": input "s" is not produced by any earlier node/);
    const unsupported = base();
    unsupported.nodes[0].opType = 'Hardmax2';
    assert.throws(() => checkGraph(unsupported), /Hardmax2 node "s": the op "Hardmax2" is not supported/);
    const wrong = base();
    wrong.outputs[0] = { ...wrong.outputs[0], type: { dtype: 'float32', shape: [1, 5] } };
    assert.throws(() => checkGraph(wrong), /graph output "r" is declared \[1, 5\] but computes \[1, 4\]/);
    const model = createModel(base());
    assert.equal(checkGraph(model.graph).get('r')?.shape.join(), '1,4');
  });
});

