import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HostTensor } from '../../../src/onnx/tensor.js';
import {
  isBookkeepingKey,
  readPytorchCheckpoint,
  readPytorchCheckpointWithReport,
} from '../../../src/models/import/pytorch/index.js';
import { type ExpectedTensor, expected, fixture } from './fixtures.js';

const FLOAT_DTYPES = new Set(['float16', 'bfloat16', 'float32', 'float64']);

/** The same checksums the generator computed with PyTorch, over our C-order values. */
function checksums(tensor: HostTensor) {
  let sum = 0;
  let sumOfSquares = 0;
  let weightedSum = 0;
  const values = Array.from(tensor.data as ArrayLike<number | bigint>, Number);
  values.forEach((value, i) => {
    sum += value;
    sumOfSquares += value * value;
    weightedSum += value * ((i % 97) + 1);
  });
  return { sum, sumOfSquares, weightedSum, first: values.slice(0, 6), last: values.length ? values.at(-1) : null };
}

function assertClose(actual: number, wanted: number, what: string): void {
  const tolerance = 1e-9 * Math.max(1, Math.abs(wanted)) + 1e-9;
  assert.ok(Math.abs(actual - wanted) <= tolerance, `${what}: got ${actual}, PyTorch says ${wanted}`);
}

function assertTensorMatches(name: string, tensor: HostTensor | undefined, want: ExpectedTensor): void {
  assert.ok(tensor, `tensor ${name} is missing`);
  assert.deepEqual(tensor.dims, want.shape, `${name} shape`);
  assert.equal(tensor.dtype, FLOAT_DTYPES.has(want.dtype) ? 'float32' : want.dtype, `${name} dtype`);
  assert.equal(tensor.data.length, want.shape.reduce((a, b) => a * b, 1), `${name} element count`);
  const got = checksums(tensor);
  assertClose(got.sum, want.sum, `${name} sum`);
  assertClose(got.sumOfSquares, want.sumOfSquares, `${name} sum of squares`);
  assertClose(got.weightedSum, want.weightedSum, `${name} order-weighted sum`);
  assert.deepEqual(got.first, want.first, `${name} first values`);
  assert.equal(got.last, want.last, `${name} last value`);
}

const READABLE = [
  'densenet_tiny.pth',
  'densenet_tiny_legacy.pth.tar',
  'densenet_tiny_deflated.pth',
  'chexnet_style.pth.tar',
  'wrapped_model.pth',
  'wrapped_model_state_dict.pth',
  'dict_of_dicts.pth',
  'odd_layouts.pth',
  'odd_layouts_legacy.pt',
  'protocol4.pth',
];

describe('readPytorchCheckpoint on checkpoints written by PyTorch 1.13', () => {
  for (const name of READABLE) {
    it(`decodes every tensor of ${name} as PyTorch does`, () => {
      const want = expected(name);
      const { stateDict, report } = readPytorchCheckpointWithReport(fixture(name), name);
      assert.deepEqual([...stateDict.keys()], Object.keys(want.tensors), 'names, in order');
      for (const [tensorName, wanted] of Object.entries(want.tensors)) {
        assertTensorMatches(tensorName, stateDict.get(tensorName), wanted);
      }
      assert.equal(report.format, want.format);
      assert.deepEqual(report.entryPath, want.entryPath);
      assert.deepEqual(report.ignoredEntries, want.ignoredEntries);
      assert.equal(report.renamedKeys.length, want.renamedKeys);
      const bookkeeping = Object.keys(want.tensors).filter((key) => key.endsWith('.num_batches_tracked'));
      assert.deepEqual(report.bookkeeping, bookkeeping);
      const converted = Object.entries(want.tensors)
        .filter(([, tensor]) => FLOAT_DTYPES.has(tensor.dtype) && tensor.dtype !== 'float32')
        .map(([key, tensor]) => ({ name: key, from: tensor.dtype }));
      assert.deepEqual(report.convertedToFloat32, converted);
    });
  }

  it('returns the same tensors from the zip, legacy and deflated files of one model', () => {
    const zip = readPytorchCheckpoint(fixture('densenet_tiny.pth'), 'zip');
    for (const other of ['densenet_tiny_legacy.pth.tar', 'densenet_tiny_deflated.pth']) {
      const stateDict = readPytorchCheckpoint(fixture(other), other);
      assert.deepEqual([...stateDict.keys()], [...zip.keys()]);
      for (const [key, tensor] of zip) assert.deepEqual(stateDict.get(key), tensor, `${other}: ${key}`);
    }
  });

  it('reads the CheXNet-style checkpoint under torchvision names, and keeps raw names when asked', () => {
    const name = 'chexnet_style.pth.tar';
    const { stateDict, report } = readPytorchCheckpointWithReport(fixture(name), name);
    assert.ok(stateDict.has('features.denseblock1.denselayer1.norm1.weight'));
    assert.ok(stateDict.has('features.denseblock2.denselayer1.conv2.weight'));
    assert.ok(stateDict.has('classifier.bias'));
    assert.deepEqual(report.renamedKeys[0], { from: 'module.features.conv0.weight', to: 'features.conv0.weight' });
    const raw = readPytorchCheckpoint(fixture(name), name, { normalizeKeys: false });
    assert.ok(raw.has('module.features.denseblock1.denselayer1.norm.1.weight'));
    assert.deepEqual(
      raw.get('module.features.denseblock1.denselayer1.conv.2.weight'),
      stateDict.get('features.denseblock1.denselayer1.conv2.weight'),
    );
  });

  it('keeps num_batches_tracked as int64 and marks it as bookkeeping', () => {
    const { stateDict, report } = readPytorchCheckpointWithReport(fixture('densenet_tiny.pth'), 'densenet_tiny.pth');
    const counter = stateDict.get('features.norm0.num_batches_tracked');
    assert.equal(counter?.dtype, 'int64');
    assert.deepEqual(counter?.dims, []);
    assert.equal(counter?.data[0], 7n);
    assert.deepEqual(report.bookkeeping, [...stateDict.keys()].filter((key) => key.endsWith('num_batches_tracked')));
    assert.ok(report.bookkeeping.includes('features.denseblock2.denselayer1.norm2.num_batches_tracked'));
    assert.ok(!isBookkeepingKey('features.norm0.running_var'));
  });

  it('returns independent, C-contiguous copies of tensors that share one storage', () => {
    for (const name of ['odd_layouts.pth', 'odd_layouts_legacy.pt']) {
      const stateDict = readPytorchCheckpoint(fixture(name), name);
      const head = stateDict.get('shared_head') as HostTensor<'float32'>;
      const overlapping = stateDict.get('overlapping') as HostTensor<'float32'>;
      // shared_head is elements 2..13 of the storage, overlapping row 0 is elements 3..6.
      assert.equal(head.data[1], overlapping.data[0]);
      head.data[1] = 12345;
      assert.notEqual(overlapping.data[0], 12345, `${name}: tensors must not alias each other`);
      const expanded = stateDict.get('expanded') as HostTensor<'float32'>;
      assert.deepEqual(Array.from(expanded.data.subarray(0, 3)), Array.from(expanded.data.subarray(9, 12)));
    }
  });

  it('reads input at any byte offset, such as a Node Buffer inside a larger allocation', () => {
    for (const name of ['odd_layouts_legacy.pt', 'odd_layouts.pth']) {
      const bytes = fixture(name);
      const shifted = Buffer.alloc(bytes.length + 3);
      shifted.set(bytes, 3);
      const input = shifted.subarray(3);
      const stateDict = readPytorchCheckpoint(input, name);
      assert.deepEqual(stateDict, readPytorchCheckpoint(bytes, name));
      assert.deepEqual(input, bytes, 'the input is left as it was');
    }
  });

  it('picks the entry given by the caller', () => {
    const stateDict = readPytorchCheckpoint(fixture('dict_of_dicts.pth'), 'dict_of_dicts.pth', { entry: 'head' });
    assert.deepEqual([...stateDict.keys()], ['weight', 'bias']);
    assert.deepEqual(stateDict.get('weight')?.dims, [2, 3]);
  });

  it("reads a whole pickled model's parameters and buffers in state_dict() order, zip and legacy format", () => {
    // whole_module.pth is the tiny DenseNet after one training step: same names and shapes, other values.
    const { stateDict, report } = readPytorchCheckpointWithReport(fixture('whole_module.pth'), 'whole_module.pth');
    assert.equal(report.moduleClass, 'torchvision.models.densenet.DenseNet');
    const want = expected('densenet_tiny.pth').tensors;
    assert.deepEqual([...stateDict.keys()], Object.keys(want));
    for (const [name, tensor] of stateDict) assert.deepEqual(tensor.dims, want[name].shape, name);
    assert.equal(stateDict.get('features.norm0.num_batches_tracked')?.data[0], 8n, 'the training step counted');
    const linear = readPytorchCheckpointWithReport(fixture('whole_module_legacy.pt'), 'linear.pt');
    assert.equal(linear.report.moduleClass, 'torch.nn.modules.linear.Linear');
    assert.deepEqual([...linear.stateDict].map(([name, t]) => [name, t.dims]), [['weight', [2, 2]], ['bias', [2]]]);
  });
});
