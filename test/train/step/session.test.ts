/**
 * The training-step runner on a real architecture (mobilenet_v2 at 32 px, zoo parity weights): exact resume from a
 * saved state, export of the trained model, freezing by blocks, dropout, and clear errors for bad input.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { importWeights } from '../../../src/models/import/index.js';
import { type Model, float32 } from '../../../src/onnx/index.js';
import { OrtSession } from '../../../src/runtime/session.js';
import { TrainingSession, type TrainingSessionOptions } from '../../../src/train/step/session.js';
import { readFixture } from '../../helpers/fixtures.js';
import { generated } from '../../autodiff/generated.js';

const SIZE = 32;
const BATCH = 4;
const LABELS = 14;
let model: Model;
const images = float32([BATCH, 3, SIZE, SIZE], generated(BATCH * 3 * SIZE * SIZE, 17));
const targets = float32([BATCH, LABELS], Array.from({ length: BATCH * LABELS }, (_, i) => (i * 7) % 5 === 0 ? 1 : 0));
const options: TrainingSessionOptions = { loss: { kind: 'bce' }, optimizer: { kind: 'adamw' }, learningRate: 1e-3, dropout: false, threads: 2 };

before(() => {
  model = importWeights(readFixture('zoo', 'mobilenet_v2.pth.br'), 'mobilenet_v2.pth', { height: SIZE, width: SIZE }).model;
});

async function withSession<T>(opts: Partial<TrainingSessionOptions>, use: (s: TrainingSession) => Promise<T>): Promise<T> {
  const session = await TrainingSession.create(model, { ...options, ...opts });
  try {
    return await use(session);
  } finally {
    await session.release();
  }
}

describe('TrainingSession', () => {
  it('resumes exactly from a saved state (parameters, Adam moments, running statistics, step, learning rate)', async () => {
    const { saved, third, params } = await withSession({}, async (s) => {
      await s.step({ images, targets });
      s.setLearningRate(5e-4);
      await s.step({ images, targets });
      const state = s.state();
      const result = await s.step({ images, targets });
      return { saved: state, third: result.loss, params: s.state().params };
    });
    assert.equal(saved.step, 2);
    await withSession({ learningRate: 0.1 }, async (s) => {
      s.loadState(saved);
      assert.equal(s.stepCount, 2);
      assert.equal(s.learningRate, 5e-4);
      const result = await s.step({ images, targets });
      assert.equal(result.loss, third);
      assert.deepEqual(s.state().params, params);
    });
  });

  it('a session built for a batch size takes other sizes too, with the results of a session for any size', async () => {
    const small = 2;
    const smallImages = float32([small, 3, SIZE, SIZE], images.data.subarray(0, small * 3 * SIZE * SIZE));
    const smallTargets = float32([small, LABELS], targets.data.subarray(0, small * LABELS));
    await withSession({ outputGradients: true }, (any) =>
      withSession({ batchSize: BATCH, outputGradients: true }, async (sized) => {
        for (const [k, batch] of [{ images, targets }, { images: smallImages, targets: smallTargets }, { images, targets }].entries()) {
          // From the same state each time: chained steps would compound float32 noise (Adam's first steps are sign-like).
          sized.loadState(any.state());
          const [want, got] = [await any.step(batch), await sized.step(batch)];
          assert.ok(Math.abs(got.loss - want.loss) <= 1e-5 * Math.abs(want.loss), `step ${k + 1} loss ${got.loss} vs ${want.loss}`);
          const expected = want.gradients as Float32Array;
          const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          (got.gradients as Float32Array).forEach((g, i) => assert.ok(Math.abs(g - expected[i]) <= 1e-4 * scale, `step ${k + 1} gradient ${i}: ${g} vs ${expected[i]}`));
        }
      }),
    );
  });

  it('exports an inference model with the trained weights and running statistics', async () => {
    await withSession({}, async (s) => {
      for (let i = 0; i < 2; i++) await s.step({ images, targets });
      const exported = s.exportModel();
      const state = s.state();
      const weight = s.graph.params.find((p) => p.name === 'features.0.0.weight');
      const mean = s.graph.stats.find((p) => p.name === 'features.0.1.running_mean');
      assert.ok(weight && mean);
      assert.deepEqual(exported.graph.initializers.get(weight.name)?.data, state.params.subarray(weight.offset, weight.offset + weight.size));
      assert.deepEqual(exported.graph.initializers.get(mean.name)?.data, state.stats.subarray(mean.offset, mean.offset + mean.size));
      assert.notDeepEqual(exported.graph.initializers.get(mean.name)?.data, model.graph.initializers.get(mean.name)?.data);
      // The source model is untouched, and the export runs.
      assert.deepEqual(model.graph.initializers.get(weight.name)?.data, s.graph.initialParams.subarray(weight.offset, weight.offset + weight.size));
      const session = await OrtSession.create(exported, { threads: 1 });
      const out = await session.run({ image: images });
      await session.release();
      assert.deepEqual(out.logits.dims, [BATCH, LABELS]);
    });
  });

  it('trains only the head: no backward work in the backbone, backbone unchanged, loss falls', async () => {
    await withSession({ trainable: 'head', learningRate: 1e-2 }, async (s) => {
      assert.ok(s.graph.params.every((p) => p.name.startsWith('classifier.')), 'only classifier parameters are trained');
      assert.equal(s.graph.stats.length, 0, 'frozen BatchNorms keep their running statistics');
      const backward = s.graph.model.graph.nodes.filter((n) => n.name.includes('.grad') && n.name.startsWith('features.'));
      assert.deepEqual(backward.map((n) => n.name), []);
      const losses: number[] = [];
      for (let i = 0; i < 5; i++) losses.push((await s.step({ images, targets })).loss);
      assert.ok(losses[4] < losses[0], `loss ${losses.join(', ')}`);
      const exported = s.exportModel();
      assert.deepEqual(exported.graph.initializers.get('features.3.conv.1.0.weight')?.data, model.graph.initializers.get('features.3.conv.1.0.weight')?.data);
    });
  });

  it('trains the last blocks: their BatchNorms in training mode, gradients stop at the first trained block', async () => {
    await withSession({ trainable: { lastBlocks: 3 } }, async (s) => {
      const prefixes = new Set(s.graph.params.map((p) => p.name.split('.').slice(0, 2).join('.')));
      assert.deepEqual([...prefixes].sort(), ['classifier.1', 'features.17', 'features.18']);
      assert.ok(s.graph.stats.every((p) => /^features\.1[78]\./.test(p.name)));
      const nodes = s.graph.model.graph.nodes;
      assert.ok(nodes.some((n) => n.name.startsWith('features.17.') && n.name.includes('.grad')));
      assert.ok(!nodes.some((n) => /^features\.(1[0-6]|[0-9])\./.test(n.name) && n.name.includes('.grad')));
      const before = s.state().params;
      await s.step({ images, targets });
      assert.notDeepEqual(s.state().params, before);
    });
  });

  it('SGD with momentum and the focal loss train too', async () => {
    await withSession({ optimizer: { kind: 'sgd', momentum: 0.9 }, loss: { kind: 'focal' }, learningRate: 0.05, trainable: 'head' }, async (s) => {
      assert.deepEqual(s.graph.stateNames, ['sgd.momentum_buffer']);
      const losses: number[] = [];
      for (let i = 0; i < 4; i++) losses.push((await s.step({ images, targets })).loss);
      assert.ok(losses[3] < losses[0], `loss ${losses.join(', ')}`);
    });
  });

  it('masked labels do not count: a step with everything masked has loss 0 and changes only by weight decay', async () => {
    await withSession({ trainable: 'head' }, async (s) => {
      const before = s.state().params;
      const result = await s.step({ images, targets, mask: float32([BATCH, LABELS], new Float32Array(BATCH * LABELS)) });
      assert.equal(result.loss, 0);
      const after = s.state().params;
      // AdamW with a zero gradient: p * (1 - lr * wd) exactly, the moments stay 0.
      const factor = Math.fround(1 - Math.fround(1e-3 * 1e-2));
      assert.ok(after.every((v, i) => Math.abs(v - Math.fround(before[i] * factor)) <= 1e-7 * Math.abs(before[i])));
    });
  });

  it("weight decay on 'weights' spares BatchNorm parameters and biases", async () => {
    const zeroMask = float32([BATCH, LABELS], new Float32Array(BATCH * LABELS));
    await withSession({ trainable: { lastBlocks: 2 }, weightDecayOn: 'weights', optimizer: { kind: 'adamw', weightDecay: 0.5 }, learningRate: 0.1 }, async (s) => {
      const before = s.state().params;
      await s.step({ images, targets, mask: zeroMask });
      const after = s.state().params;
      for (const slot of s.graph.params) {
        const decayed = slot.name.endsWith('.weight') && slot.dims.length > 1;
        const factor = decayed ? Math.fround(1 - Math.fround(0.1 * 0.5)) : 1;
        for (let i = slot.offset; i < slot.offset + slot.size; i += 97) {
          assert.ok(Math.abs(after[i] - before[i] * factor) <= 1e-6 * Math.abs(before[i]), `${slot.name} (${decayed ? 'decayed' : 'not decayed'})`);
        }
      }
    });
  });

  it('with dropout on, each step draws a new mask; without, steps are deterministic', async () => {
    await withSession({ dropout: true, trainable: 'head', learningRate: 0, optimizer: { kind: 'sgd' } }, async (s) => {
      const a = await s.step({ images, targets });
      const b = await s.step({ images, targets });
      assert.notDeepEqual(a.logits.data, b.logits.data);
    });
    await withSession({ dropout: false, trainable: 'head', learningRate: 0, optimizer: { kind: 'sgd' } }, async (s) => {
      const a = await s.step({ images, targets });
      const b = await s.step({ images, targets });
      assert.deepEqual(a.logits.data, b.logits.data);
    });
  });

  it('dropout masks are drawn from (seed, step): another session with the seed repeats them, another seed does not', async () => {
    const settings = { dropout: true, trainable: 'head', learningRate: 0, optimizer: { kind: 'sgd' } } as const;
    const run = (seed: number) =>
      withSession({ ...settings, seed }, async (s) => {
        const first = await s.step({ images, targets });
        const second = await s.step({ images, targets });
        return [first.logits.data, second.logits.data];
      });
    const [a, b, c] = [await run(1), await run(1), await run(2)];
    assert.deepEqual(a, b);
    assert.notDeepEqual(a[0], c[0]);
    assert.notDeepEqual(a[0], a[1]);
  });

  it('rejects bad batches, states and settings with messages that name the problem', async () => {
    await assert.rejects(TrainingSession.create(model, { ...options, learningRate: -1 }), /learning rate must be a finite number >= 0/);
    await assert.rejects(TrainingSession.create(model, { ...options, trainable: { lastBlocks: 0 } }), /lastBlocks must be a whole number from 1 to \d+/);
    await assert.rejects(TrainingSession.create(model, { ...options, posWeight: [1, 2] }), /posWeight must be 14 non-negative numbers/);
    await assert.rejects(TrainingSession.create(model, { ...options, loss: { kind: 'focal' }, posWeight: Array(14).fill(1) }), /posWeight applies to the bce loss only/);
    await withSession({ trainable: 'head' }, async (s) => {
      await assert.rejects(s.step({ images: float32([BATCH, 3, 16, 16]), targets }), /batch images: expected float32 \[batch, 3, 32, 32\], got float32 \[4, 3, 16, 16\]/);
      await assert.rejects(s.step({ images, targets: float32([BATCH, 3]) }), /batch targets: expected float32 \[4, 14\]/);
      await assert.rejects(s.step({ images, targets, mask: float32([2, LABELS]) }), /batch mask: expected float32 \[4, 14\]/);
      const state = s.state();
      assert.throws(() => s.loadState({ ...state, params: new Float32Array(3) }), /training state: params has 3 values/);
      assert.throws(() => s.loadState({ ...state, paramNames: ['x'] }), /its parameters do not match this session/);
      assert.throws(() => s.loadState({ ...state, step: -1 }), /step must be a whole number/);
      assert.throws(() => s.setLearningRate(Number.NaN), /learning rate/);
    });
  });
});
