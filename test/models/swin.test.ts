/**
 * Swin-T against torchvision on real NIH films: a torch.save'd swin_t state dict (pseudo-random weights, see
 * scripts/fixtures/make_swin_parity.py) imported into the zoo's graph must give torchvision's float64 logits and
 * last feature map (channels last) to 1e-4 relative, at 64 px (padded windows, shifted with the mask) and 224 px.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { decodeImageFile } from '../../src/imaging/index.js';
import { preprocess } from '../../src/imaging/preprocess.js';
import { applyStateDict, importWeights } from '../../src/models/import/index.js';
import { readPytorchCheckpointWithReport } from '../../src/models/import/pytorch/index.js';
import { activationLayout } from '../../src/models/layouts.js';
import { readModelInfo } from '../../src/models/metadata.js';
import { parameterSlots, takesWeightDecay } from '../../src/models/parameters.js';
import { buildModel } from '../../src/models/zoo/index.js';
import { float32 } from '../../src/onnx/index.js';
import { OrtSession } from '../../src/runtime/session.js';
import { fixturePath, readFixture, sharedDataPath } from '../helpers/fixtures.js';
import { relativeError } from '../helpers/numeric.js';

interface SwinCase {
  size: number;
  films: string[];
  logits: number[];
  features: number[];
  torch_float32_error: { logits: number; features: number };
}

const reference: { cases: SwinCase[] } = JSON.parse(readFileSync(fixturePath('zoo', 'swin_t.json'), 'utf8'));
const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/** Each case's float64 answer: logits then features, case after case. */
function expected(): { logits: Float32Array; features: Float32Array }[] {
  const bytes = readFixture('zoo', 'swin_t.expected.bin');
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  let offset = 0;
  const take = (n: number) => all.subarray(offset, (offset += n));
  const answers = reference.cases.map((c) => ({ logits: take(count(c.logits)), features: take(count(c.features)) }));
  assert.equal(offset, all.length, 'the fixture holds exactly the cases listed');
  return answers;
}

describe('swin_t: torchvision parity on real NIH films', () => {
  const answers = expected();
  for (const [k, c] of reference.cases.entries()) {
    it(`${c.size} px, ${c.films.length} film(s): imported from a torch.save .pth, logits and the channels-last feature map match to 1e-4`, async (t) => {
      const result = importWeights(readFixture('zoo', 'swin_t.pth.br'), 'swin_t.pth', { height: c.size });
      assert.equal(result.architecture, 'swin_t', 'architecture detected from the weights');
      assert.deepEqual([result.report.missing, result.report.unexpected, result.report.mismatched], [[], [], []]);
      assert.equal(result.report.ignored.filter((name) => name.endsWith('.relative_position_index')).length, 12, "every block's fixed index checked, not loaded");
      const spec = readModelInfo(result.model).preprocessing;
      const batch = float32([c.films.length, 3, c.size, c.size]);
      for (const [i, film] of c.films.entries()) batch.data.set(preprocess(await decodeImageFile(sharedDataPath(film)), spec).tensor.data, i * 3 * c.size * c.size);
      const session = await OrtSession.create(result.model, { threads: 2 });
      try {
        const out = await session.run({ image: batch });
        assert.deepEqual(out.logits.dims, c.logits);
        assert.deepEqual(out.features.dims, c.features);
        const logitError = relativeError(out.logits.data as Float32Array, answers[k].logits);
        const featureError = relativeError(out.features.data as Float32Array, answers[k].features);
        t.diagnostic(`relative error: logits ${logitError.toExponential(2)}, features ${featureError.toExponential(2)} (PyTorch float32: ${c.torch_float32_error.logits.toExponential(2)}, ${c.torch_float32_error.features.toExponential(2)})`);
        assert.ok(logitError < 1e-4, `logits relative error ${logitError}`);
        assert.ok(featureError < 1e-4, `feature map relative error ${featureError}`);
        // As accurate as PyTorch's own float32 forward pass, within a small factor.
        assert.ok(logitError < 10 * c.torch_float32_error.logits + 1e-6, `logits ${logitError} vs PyTorch float32 ${c.torch_float32_error.logits}`);
        assert.ok(featureError < 10 * c.torch_float32_error.features + 1e-6, `features ${featureError} vs PyTorch float32 ${c.torch_float32_error.features}`);
      } finally {
        await session.release();
      }
    });
  }

  it("a relative_position_index that differs from the architecture's own is refused, naming it", () => {
    const { stateDict } = readPytorchCheckpointWithReport(readFixture('zoo', 'swin_t.pth.br'), 'swin_t.pth');
    const model = buildModel('swin_t', { height: 64 });
    assert.doesNotThrow(() => applyStateDict(model, stateDict, { source: 'swin_t.pth' }));
    const name = 'features.3.1.attn.relative_position_index';
    const index = stateDict.get(name);
    assert.equal(index?.dtype, 'int64');
    const swapped = new BigInt64Array(index.data as BigInt64Array);
    [swapped[0], swapped[1]] = [swapped[1], swapped[0]];
    stateDict.set(name, { ...index, data: swapped });
    assert.throws(() => applyStateDict(buildModel('swin_t', { height: 64 }), stateDict, { source: 'swin_t.pth' }), new RegExp(`"${name}" in the file differs`));
  });

  it('declares every parameter with its role: LayerNorm and the bias tables learned without weight decay; the feature map channels last', () => {
    const model = buildModel('swin_t');
    const slots = parameterSlots(model);
    const roles = new Map(slots.map((s) => [s.name, s.role]));
    assert.equal(roles.get('features.0.0.weight'), 'conv.weight');
    assert.equal(roles.get('features.1.0.attn.qkv.weight'), 'linear.weight');
    assert.equal(roles.get('features.2.reduction.weight'), 'linear.weight');
    assert.equal(roles.has('features.2.reduction.bias'), false, 'patch merging has no bias');
    assert.equal(roles.get('features.1.0.attn.relative_position_bias_table'), 'attn.relative_position_bias_table');
    assert.equal(roles.get('norm.weight'), 'ln.weight');
    assert.equal(roles.get('head.weight'), 'linear.weight');
    // torchvision's swin_t has 28,288,354 parameters with a 1000-class head; ours has 14 outputs.
    const total = slots.reduce((n, s) => n + (model.graph.initializers.get(s.name)?.data.length ?? 0), 0);
    assert.equal(total, 28_288_354 - 986 * (768 + 1));
    const decayed = slots.filter((s) => takesWeightDecay(s.role)).map((s) => s.name);
    assert.ok(decayed.every((name) => name.endsWith('.weight') && !/norm/.test(name)), 'only convolution and linear weights decay');
    assert.equal(activationLayout(model, 'features'), 'NHWC');
    assert.equal(activationLayout(model, 'features.7.1.add2'), 'NHWC');
  });
});
