/**
 * Swin-T files written by torch.onnx.export (scripts/fixtures/make_swin_onnx_export.py: opset 14 defaults, a dynamic
 * batch, opset 17, constant folding off) import with no options and give torchvision's float64 logits on real NIH
 * films to 1e-4 relative, as close as PyTorch's own float32 run within a small factor (the error analysis of
 * swin.test.ts). Files that are not such an export, or that hold what the import cannot map, are refused by name.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { decodeImageFile } from '../../src/imaging/index.js';
import { preprocess } from '../../src/imaging/preprocess.js';
import { importWeights } from '../../src/models/import/index.js';
import { readModelInfo } from '../../src/models/metadata.js';
import { type Model, decodeModel, encodeModel, float32 } from '../../src/onnx/index.js';
import { OrtSession } from '../../src/runtime/session.js';
import { fixturePath, readFixture, sharedDataPath } from '../helpers/fixtures.js';
import { relativeError } from '../helpers/numeric.js';

interface ExportReference {
  size: number;
  films: string[];
  exports: { file: string; options: Record<string, unknown> }[];
  logits: number[][];
  torch_float32_error: number;
}

const reference: ExportReference = JSON.parse(readFileSync(fixturePath('zoo', 'swin_t.export.json'), 'utf8'));
const DEFAULT_EXPORT = 'swin_t.export.onnx.br';

/** The default export, changed by `edit`, as the bytes of a file. */
function editedExport(edit: (model: Model) => void): Uint8Array {
  const model = decodeModel(readFixture('zoo', DEFAULT_EXPORT), { name: 'swin_t.onnx' });
  edit(model);
  return encodeModel(model);
}

/** The name of the first initializer of the given shape. */
function initializerOfShape(model: Model, dims: number[]): string {
  const found = [...model.graph.initializers].find(([, t]) => t.dims.join() === dims.join());
  assert.ok(found, `the export has an initializer of [${dims}]`);
  return found[0];
}

describe('swin_t exported by torch.onnx.export: imported by structure, torchvision parity on real NIH films', () => {
  const expected = Float32Array.from(reference.logits.flat());
  for (const { file, options } of reference.exports) {
    it(`${file} (${JSON.stringify(options)}): imports with no options, logits match to 1e-4`, async (t) => {
      const result = importWeights(readFixture('zoo', file), file.replace(/\.br$/, ''));
      assert.equal(result.architecture, 'swin_t');
      assert.equal(result.method, 'structure');
      assert.deepEqual([result.report.missing, result.report.unexpected, result.report.mismatched, result.report.adapted], [[], [], [], []]);
      if (options.do_constant_folding === false) assert.deepEqual(result.notes, []);
      else {
        assert.match(result.notes.join('\n'), /^51 weights renamed by the exporter .*onnx::MatMul_\d+ .*features\.1\.0\.attn\.qkv\.weight/m);
        assert.match(result.notes.join('\n'), /^12 relative position bias tables recovered exactly/m);
      }
      const spec = readModelInfo(result.model).preprocessing;
      assert.equal(spec.height, reference.size);
      const pixels = reference.size * reference.size * 3;
      const batch = float32([reference.films.length, 3, reference.size, reference.size]);
      for (const [i, film] of reference.films.entries()) batch.data.set(preprocess(await decodeImageFile(sharedDataPath(film)), spec).tensor.data, i * pixels);
      const session = await OrtSession.create(result.model, { threads: 2 });
      try {
        const logits = (await session.run({ image: batch })).logits;
        assert.deepEqual(logits.dims, [reference.films.length, 14]);
        const error = relativeError(logits.data as Float32Array, expected);
        t.diagnostic(`logits relative error ${error.toExponential(2)} (PyTorch float32: ${reference.torch_float32_error.toExponential(2)})`);
        assert.ok(error < 1e-4, `logits relative error ${error}`);
        assert.ok(error < 10 * reference.torch_float32_error + 1e-6, `logits ${error} vs PyTorch float32 ${reference.torch_float32_error}`);
      } finally {
        await session.release();
      }
    });
  }
});

it("a tensor the exporter stored once for equal parameters (an untrained model's LayerNorms) goes to each that reads it", () => {
  const bytes = editedExport((model) => {
    const mul = model.graph.nodes.find((n) => n.inputs.includes('features.1.0.norm2.weight'));
    assert.ok(mul);
    mul.inputs = mul.inputs.map((name) => (name === 'features.1.0.norm2.weight' ? 'features.1.0.norm1.weight' : name));
    model.graph.initializers.delete('features.1.0.norm2.weight');
  });
  const { model } = importWeights(bytes, 'swin_t.onnx');
  const [norm1, norm2] = ['features.1.0.norm1.weight', 'features.1.0.norm2.weight'].map((name) => Array.from((model.graph.initializers.get(name)?.data ?? []) as ArrayLike<number>));
  assert.equal(norm2.length, 96);
  assert.deepEqual(norm2, norm1);
});

describe('swin_t exports the import cannot map are refused, naming what', () => {
  it('a folded attention bias that is not one table gathered by the relative position index', () => {
    const bytes = editedExport((model) => {
      const bias = model.graph.initializers.get(initializerOfShape(model, [1, 6, 49, 49]));
      (bias?.data as Float32Array)[1] += 0.5;
    });
    assert.throws(() => importWeights(bytes, 'swin_t.onnx'), /swin_t\.onnx: the attention bias added by Add node ".*features\.3\.0\/attn.*" is not one table gathered by Swin's relative position index/);
  });

  it('a LayerNorm epsilon other than torchvision\'s', () => {
    const bytes = editedExport((model) => {
      const add = model.graph.nodes.find((n) => n.name === '/features/features.0/features.0.2/Add');
      const epsilon = model.graph.nodes.find((n) => n.outputs[0] === add?.inputs[1]);
      assert.equal(epsilon?.opType, 'Constant');
      if (epsilon?.attributes.value.kind === 'tensor') epsilon.attributes.value.value = float32([], [1e-6]);
    });
    assert.throws(() => importWeights(bytes, 'swin_t.onnx'), /LayerNorm Div node "\/features\/features\.0\/features\.0\.2\/Div" has epsilon 1e-6 where the model's "features\.0\.2" has 1e-5/);
  });

  it('a learned tensor no known layer reads (a layer scale after the patch embedding)', () => {
    const bytes = editedExport((model) => {
      const index = model.graph.nodes.findIndex((n) => n.name === '/features/features.0/features.0.2/Add_1');
      const norm = model.graph.nodes[index];
      model.graph.initializers.set('layer_scale', float32([96], new Float32Array(96).fill(0.1)));
      const scaled = `${norm.outputs[0]}_scaled`;
      for (const n of model.graph.nodes) n.inputs = n.inputs.map((name) => (name === norm.outputs[0] ? scaled : name));
      model.graph.nodes.splice(index + 1, 0, { name: 'layer_scale', opType: 'Mul', inputs: [norm.outputs[0], 'layer_scale'], outputs: [scaled], attributes: {} });
    });
    assert.throws(() => importWeights(bytes, 'swin_t.onnx'), /swin_t\.onnx: 1 float tensor\(s\) are read by no layer a Swin import knows \(layer_scale, \[96\]\)/);
  });

  it('layers whose kept names say they are in another order than the model reads them', () => {
    const [first, second] = ['features.1.0.norm1.weight', 'features.1.0.norm2.weight'];
    const bytes = editedExport((model) => {
      const swap = (name: string) => (name === first ? second : name === second ? first : name);
      for (const n of model.graph.nodes) n.inputs = n.inputs.map(swap);
      model.graph.initializers = new Map([...model.graph.initializers].map(([name, t]) => [swap(name), t]));
    });
    assert.throws(() => importWeights(bytes, 'swin_t.onnx'), /swin_t\.onnx: the layers do not line up: the file's "features\.1\.0\.norm2\.weight" was paired with the model's "features\.1\.0\.norm1\.weight"/);
  });

  it('a window-attention graph of another depth: no architecture recognised, and named swin_t it does not line up', () => {
    // The last block's bias comes from outside the file: 11 attention biases where Swin-T has 12.
    const bytes = editedExport((model) => {
      const name = initializerOfShape(model, [1, 24, 49, 49]);
      model.graph.initializers.delete(name);
      model.graph.inputs.push({ name, type: { dtype: 'float32', shape: [1, 24, 49, 49] } });
    });
    assert.throws(() => importWeights(bytes, 'swin_t.onnx'), /swin_t\.onnx: cannot tell which architecture these weights belong to/);
    assert.throws(() => importWeights(bytes, 'swin_t.onnx', { architecture: 'swin_t' }), /swin_t\.onnx: the file has 11 position bias layers where the model has 12/);
  });
});
