/**
 * Attention rollout and Chefer et al. on Swin-T against torchvision's swin_t on real NIH films at 64 px
 * (scripts/fixtures/make_swin_attention_parity.py: the attention probabilities and their gradients kept by hooks
 * where torchvision computes them, the same definitions rolled out forwards with dense matrices in float64), where
 * every stage pads its windows and stages 1-2 shift them; maps at 224 px on a real film that are not degenerate
 * (the fixture's pseudo-random weights: no trained Swin weights exist here). Also: CNNs are refused, and the window
 * bookkeeping.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Explainer } from '../../src/explain/index.js';
import { attentionBlocks } from '../../src/explain/graphs.js';
import { windowTokens } from '../../src/explain/window-attention.js';
import { decodeImageFile } from '../../src/imaging/index.js';
import { importWeights } from '../../src/models/import/index.js';
import { buildModel } from '../../src/models/zoo/index.js';
import { readFixture, sharedDataPath } from '../helpers/fixtures.js';
import { relativeError } from '../helpers/numeric.js';

interface AttentionCase {
  film: string;
  size: number;
  height: number;
  width: number;
  blocks: { height: number; width: number; window: [number, number]; shift: [number, number] }[];
  rollout: number[];
  chefer: number[][];
  torch_float32_error: { rollout: number; chefer: number };
}

const reference: { cases: AttentionCase[] } = JSON.parse(new TextDecoder().decode(readFixture('explain', 'swin-attention.json.br')));
const TOLERANCE = 1e-4;

describe('Swin-T attention methods match torchvision (hooks on its softmax) on real NIH films', () => {
  let explainer: Explainer;
  before(async () => {
    const { model } = importWeights(readFixture('zoo', 'swin_t.pth.br'), 'swin_t.pth', { height: reference.cases[0].size });
    explainer = await Explainer.create(model, { threads: 2 });
  });
  after(() => explainer.close());

  it("the blocks found in our graph have torchvision's grids, windows and effective shifts", () => {
    const blocks = attentionBlocks(explainer.model);
    assert.deepEqual(
      blocks.map((b) => ({ height: b.height, width: b.width, window: [b.windowSize, b.windowSize], shift: [...b.shift] })),
      reference.cases[0].blocks,
    );
    assert.ok(blocks.some((b) => b.shift[0] > 0) && blocks.some((b) => b.height % b.windowSize !== 0), 'shifted and padded blocks are both exercised');
  });

  for (const expected of reference.cases) {
    it(`${expected.film}: attention-rollout within ${TOLERANCE} of the map's maximum, the same map for every finding`, async (t) => {
      const explanation = await explainer.explain(await decodeImageFile(sharedDataPath(expected.film)), { method: 'attention-rollout' });
      assert.equal(explanation.findings.length, 14);
      const [first] = explanation.findings;
      assert.deepEqual([first.map.height, first.map.width], [expected.height, expected.width]);
      const error = relativeError(first.map.data, expected.rollout);
      t.diagnostic(`relative error ${error.toExponential(2)} (PyTorch float32: ${expected.torch_float32_error.rollout.toExponential(2)})`);
      assert.ok(error <= TOLERANCE, `rollout: ${error}`);
      for (const f of explanation.findings) assert.deepEqual(f.map.data, first.map.data);
    });

    it(`${expected.film}: chefer within ${TOLERANCE} of each map's maximum for all 14 findings`, async (t) => {
      const explanation = await explainer.explain(await decodeImageFile(sharedDataPath(expected.film)), { method: 'chefer' });
      const errors = explanation.findings.map((f, c) => relativeError(f.map.data, expected.chefer[c]));
      const worst = Math.max(...errors);
      t.diagnostic(`max relative error ${worst.toExponential(2)} (PyTorch float32: ${expected.torch_float32_error.chefer.toExponential(2)})`);
      assert.ok(worst <= TOLERANCE, `chefer: ${worst}`);
      // Finding-specific: the references differ between findings by far more than the tolerance.
      assert.ok(relativeError(expected.chefer[0], expected.chefer[1]) > 100 * TOLERANCE);
    });
  }

  it('the probability target scales each gradient by p(1 - p), which changes the map', async () => {
    const image = await decodeImageFile(sharedDataPath(reference.cases[0].film));
    const [logit, probability] = await Promise.all(['logit', 'probability'].map((target) => explainer.explain(image, { method: 'chefer', findings: ['Effusion'], target: target as 'logit' })));
    assert.ok(relativeError(probability.findings[0].map.data, logit.findings[0].map.data) > 1e-3);
  });
});

describe('Swin-T attention maps at 224 px on a real NIH film (torchvision geometry: 56/28/14/7, no padding)', () => {
  it('are finite, positive, vary over the film without a single hot spot, and chefer depends on the finding and the film', async () => {
    const { model } = importWeights(readFixture('zoo', 'swin_t.pth.br'), 'swin_t.pth', { height: 224 });
    const explainer = await Explainer.create(model, { threads: 2 });
    try {
      const [film, other] = await Promise.all(reference.cases.map((c) => decodeImageFile(sharedDataPath(c.film))));
      const findings = ['Effusion', 'Cardiomegaly'];
      for (const method of ['attention-rollout', 'chefer'] as const) {
        const explanation = await explainer.explain(film, { method, findings });
        for (const { map } of explanation.findings) {
          assert.deepEqual([map.height, map.width], [56, 56]);
          assert.ok(map.data.every((v) => Number.isFinite(v) && v > 0), `${method}: finite and positive`);
          const min = Math.min(...map.data);
          const above = map.data.map((v) => v - min);
          const mass = above.reduce((a, b) => a + b, 0);
          const top = [...above].sort((a, b) => b - a).slice(0, 31).reduce((a, b) => a + b, 0);
          assert.ok((Math.max(...map.data) - min) / Math.max(...map.data) > 0.05, `${method}: the map varies`);
          assert.ok(top < 0.5 * mass, `${method}: the top 1% of cells hold ${(top / mass).toFixed(2)} of the map above its minimum`);
        }
        const [first, second] = explanation.findings.map((f) => f.map.data);
        if (method === 'chefer') assert.ok(relativeError(first, second) > 1e-3, 'chefer: findings differ');
        else assert.deepEqual(first, second);
        const elsewhere = await explainer.explain(other, { method, findings: findings.slice(0, 1) });
        assert.ok(relativeError(elsewhere.findings[0].map.data, first) > 1e-3, `${method}: another film, another map`);
      }
    } finally {
      await explainer.close();
    }
  });
});

describe('attention methods on a CNN', () => {
  it('are refused, saying why and what to use', async () => {
    const explainer = await Explainer.create(buildModel('mobilenet_v2', { height: 64 }), { threads: 1 });
    try {
      const image = await decodeImageFile(sharedDataPath(reference.cases[0].film));
      for (const method of ['attention-rollout', 'chefer'] as const) {
        await assert.rejects(explainer.explain(image, { method, findings: ['Effusion'] }), /explain a transformer's attention, and this model has none .* use a CAM or gradient method/);
      }
    } finally {
      await explainer.close();
    }
  });
});

describe('windowTokens', () => {
  it('a padded, shifted grid: every grid token in exactly one window slot, the rest padding, in torch.roll order', () => {
    const geometry = { height: 9, width: 10, windowSize: 4, shift: [2, 2] as const };
    const tokens = windowTokens(geometry);
    assert.equal(tokens.length, 3 * 3 * 16);
    const real = [...tokens].filter((t) => t >= 0).sort((a, b) => a - b);
    assert.deepEqual(real, Array.from({ length: 90 }, (_, i) => i));
    // Rolled by -2: window 0's first slot holds grid (2, 2); the last window's last slot wraps to (1, 1).
    assert.equal(tokens[0], 2 * 10 + 2);
    assert.equal(tokens.at(-1), 1 * 10 + 1);
  });
});
