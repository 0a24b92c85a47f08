/**
 * Every zoo architecture against torchvision: weights written by PyTorch (torch.save and torch.onnx.export, see
 * scripts/fixtures/make_zoo_parity.py) are imported into our graphs, which must reproduce torchvision's float64
 * logits and last feature map on the same input to 1e-4 relative.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { importWeights } from '../../src/models/import/index.js';
import { ARCHITECTURE_NAMES } from '../../src/models/zoo/index.js';
import { float32 } from '../../src/onnx/index.js';
import { OrtSession } from '../../src/runtime/session.js';
import { fixturePath, readFixture } from '../helpers/fixtures.js';
import { parityInput, relativeError } from '../helpers/numeric.js';

interface ParityInfo {
  input: number[];
  architectures: Record<string, { logits: number[]; features: number[]; torch_float32_error: { logits: number; features: number } }>;
}

const info: ParityInfo = JSON.parse(readFileSync(fixturePath('zoo', 'parity.json'), 'utf8'));
const [batch, channels, height, width] = info.input;
const input = float32(info.input, parityInput(batch * channels * height * width));

function expected(arch: string): { logits: Float32Array; features: Float32Array } {
  const bytes = readFixture('zoo', `${arch}.expected.bin`);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const logitCount = info.architectures[arch].logits.reduce((a, b) => a * b, 1);
  return { logits: all.subarray(0, logitCount), features: all.subarray(logitCount) };
}

async function runImported(file: string, arch: string) {
  const result = importWeights(readFixture('zoo', file), file, { height, width });
  assert.equal(result.architecture, arch, 'architecture detected from the weights');
  const session = await OrtSession.create(result.model, { threads: 2 });
  try {
    return { result, outputs: await session.run({ image: input }) };
  } finally {
    await session.release();
  }
}

describe('zoo parity with torchvision (64 px, batch 2, PyTorch-written weights)', () => {
  it('every zoo architecture has a parity fixture: here, or its own (Swin: swin_t.json, swin.test.ts)', () => {
    for (const arch of ARCHITECTURE_NAMES) assert.ok(arch in info.architectures || existsSync(fixturePath('zoo', `${arch}.json`)), arch);
  });

  // Swin's parity is in swin.test.ts: torch.onnx.export folds its MatMul weights under generated names.
  for (const arch of ARCHITECTURE_NAMES.filter((name) => name in info.architectures)) {
    for (const [format, file] of [
      ['torch.save .pth', `${arch}.pth.br`],
      ['torch.onnx.export .onnx', `${arch}.onnx.br`],
    ]) {
      it(`${arch} from a ${format}: every parameter maps by name; logits and feature map match to 1e-4`, async () => {
        const { result, outputs } = await runImported(file, arch);
        assert.equal(result.method, 'names');
        assert.deepEqual(result.report.missing, []);
        assert.deepEqual(result.report.unexpected, []);
        assert.deepEqual(result.report.mismatched, []);
        const want = expected(arch);
        const reference = info.architectures[arch];
        assert.deepEqual(outputs.logits.dims, reference.logits);
        assert.deepEqual(outputs.features.dims, reference.features);
        const logitError = relativeError(outputs.logits.data as Float32Array, want.logits);
        const featureError = relativeError(outputs.features.data as Float32Array, want.features);
        assert.ok(logitError < 1e-4, `logits relative error ${logitError}`);
        assert.ok(featureError < 1e-4, `feature map relative error ${featureError}`);
        // As accurate as PyTorch's own float32 forward pass, within a small factor.
        assert.ok(logitError < 10 * reference.torch_float32_error.logits + 1e-6, `logits ${logitError} vs PyTorch float32 ${reference.torch_float32_error.logits}`);
        assert.ok(featureError < 10 * reference.torch_float32_error.features + 1e-6, `features ${featureError} vs PyTorch float32 ${reference.torch_float32_error.features}`);
      });
    }
  }
});
