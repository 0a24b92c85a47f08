/**
 * The loss and optimizer graph pieces against PyTorch float64 (scripts/fixtures/make_autodiff_losses.py): BCE with
 * pos_weight, focal and asymmetric losses with a label mask (value and gradient), AdamW and SGD updates over 3 steps.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { addGradients } from '../../../src/autodiff/gradients.js';
import { type LossSpec, type Reduction, addLoss } from '../../../src/train/step/losses.js';
import { type OptimizerSpec, addOptimizerUpdate, optimizerStateNames } from '../../../src/train/step/optimizers.js';
import { GraphBuilder, type HostTensor, createModel, float32 } from '../../../src/onnx/index.js';
import { OrtSession } from '../../../src/runtime/session.js';
import { fixturePath } from '../../helpers/fixtures.js';
import { runOnce } from '../../helpers/session.js';
import { generated, relativeError } from '../../autodiff/generated.js';

interface Fixture {
  rows: number;
  labels: number;
  targets: number[];
  mask: number[];
  pos_weight: number[];
  logits_seed: number;
  logits_scale: number;
  losses: { name: string; spec: LossSpec; reduction: Reduction; loss: number; grad: number[] }[];
  params: number;
  params_seed: number;
  grads_seed: number;
  learning_rates: number[];
  optimizers: { name: string; spec: OptimizerSpec; after: number[][] }[];
}

const fx: Fixture = JSON.parse(readFileSync(fixturePath('autodiff', 'losses-optimizers.json'), 'utf8'));


describe('losses against PyTorch (value and gradient with respect to the logits)', () => {
  const shape = [fx.rows, fx.labels];
  const logits = generated(fx.rows * fx.labels, fx.logits_seed).map((v) => v * fx.logits_scale);
  for (const c of fx.losses) {
    it(c.name, async () => {
      const b = new GraphBuilder('loss');
      const x = b.input('logits', 'float32', ['batch', fx.labels]);
      const targets = b.input('targets', 'float32', ['batch', fx.labels]);
      const mask = b.input('mask', 'float32', ['batch', fx.labels]);
      const posWeight = c.spec.kind === 'bce' ? b.input('pos_weight', 'float32', [fx.labels]) : undefined;
      const { loss, detached } = addLoss(b, { logits: x, targets, mask, posWeight }, c.spec, c.reduction);
      const grads = addGradients(b, { seeds: new Map([[loss.name, b.scalar(1)]]), sources: ['logits'], detached });
      b.output(loss, 'loss');
      b.output(grads.get('logits') as never, 'grad');
      const feeds: Record<string, HostTensor> = { logits: float32(shape, logits), targets: float32(shape, fx.targets), mask: float32(shape, fx.mask) };
      if (posWeight) feeds.pos_weight = float32([fx.labels], fx.pos_weight);
      const out = await runOnce(createModel(b.build()), feeds);
      const value = (out.loss.data as Float32Array)[0];
      assert.ok(Math.abs(value - c.loss) <= 1e-6 * Math.abs(c.loss), `loss ${value} vs ${c.loss}`);
      const error = relativeError(out.grad.data as Float32Array, c.grad);
      assert.ok(error <= 1e-6, `gradient relative error ${error}`);
    });
  }

  it('rejects invalid settings with the loss named', () => {
    const b = new GraphBuilder('loss');
    const v = b.input('x', 'float32', [1, 2]);
    assert.throws(() => addLoss(b, { logits: v, targets: v, mask: v }, { kind: 'focal', gamma: -1 }), /loss "focal": gamma/);
    assert.throws(() => addLoss(b, { logits: v, targets: v, mask: v }, { kind: 'asymmetric', clip: 1 }), /loss "asymmetric": clip/);
    assert.throws(() => addLoss(b, { logits: v, targets: v, mask: v }, { kind: 'hinge' } as never), /unknown loss "hinge"/);
  });
});

describe('optimizer updates against torch.optim over 3 steps (learning rate changed at step 3)', () => {
  const p0 = generated(fx.params, fx.params_seed);
  for (const c of fx.optimizers) {
    it(c.name, async () => {
      const b = new GraphBuilder('optimizer');
      const params = b.input('params', 'float32', [fx.params]);
      const grads = b.input('grads', 'float32', [fx.params]);
      const names = optimizerStateNames(c.spec);
      const state = names.map((n) => b.input(n, 'float32', [fx.params]));
      const lr = b.input('lr', 'float32', []);
      const step = b.input('step', 'float32', []);
      const outputNames = { params: 'params.next', state: names.map((n) => `${n}.next`) };
      const updated = addOptimizerUpdate(b, { params, grads, state, learningRate: lr, step, names: outputNames }, c.spec);
      b.output(updated.params, 'params.next');
      updated.state.forEach((s, i) => b.output(s, `${names[i]}.next`));
      // Named outputs come straight from the update, with no Identity copies.
      assert.deepEqual(b.build().nodes.filter((n) => n.opType === 'Identity').map((n) => n.name), []);
      const session = await OrtSession.create(createModel(b.build()), { threads: 1 });
      try {
        let current: Record<string, HostTensor> = { params: float32([fx.params], p0) };
        for (const n of names) current[n] = float32([fx.params], new Float32Array(fx.params));
        for (let k = 0; k < 3; k++) {
          const out = await session.run({
            ...current,
            grads: float32([fx.params], generated(fx.params, fx.grads_seed + k)),
            lr: float32([], [fx.learning_rates[k]]),
            step: float32([], [k + 1]),
          });
          current = { params: out['params.next'], ...Object.fromEntries(names.map((n) => [n, out[`${n}.next`]])) };
          const error = relativeError(current.params.data as Float32Array, c.after[k]);
          assert.ok(error <= 1e-6, `step ${k + 1}: relative error ${error}`);
        }
      } finally {
        await session.release();
      }
    });
  }

  it('rejects invalid settings with the optimizer named', () => {
    const b = new GraphBuilder('optimizer');
    const v = b.input('x', 'float32', [2]);
    const inputs = { params: v, grads: v, state: [v, v], learningRate: v, step: v };
    assert.throws(() => addOptimizerUpdate(b, inputs, { kind: 'adamw', beta1: 1 }), /optimizer "adamw": beta1/);
    assert.throws(() => addOptimizerUpdate(b, inputs, { kind: 'sgd', nesterov: true }), /optimizer "sgd": Nesterov/);
    assert.throws(() => addOptimizerUpdate(b, inputs, { kind: 'sgd', weightDecay: -1 }), /weightDecay/);
  });
});
