/**
 * configs/swin-t.yaml (SwinCheX's settings): it resolves to Swin-T with AdamW, warm-up + cosine, and weight decay on
 * weights only; and one real AdamW step on Swin-T (64 px, two real NIH films) decays exactly the convolution and
 * linear weights: LayerNorm weights and biases, linear biases and the relative position bias tables step as if the
 * weight decay were 0.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeImageFile } from '../../src/imaging/index.js';
import { preprocess } from '../../src/imaging/preprocess.js';
import { importWeights } from '../../src/models/import/index.js';
import { readModelInfo } from '../../src/models/metadata.js';
import { parameterSlots } from '../../src/models/parameters.js';
import { type Model, float32 } from '../../src/onnx/index.js';
import { readConfigFile, resolveConfig } from '../../src/train/config.js';
import { TrainingSession } from '../../src/train/step/session.js';
import { join } from 'node:path';
import { REPO_ROOT, readFixture, sharedDataPath } from '../helpers/fixtures.js';

const SIZE = 64;
const FILMS = ['nih-cxr14-subset/images/00000075_000.png', 'nih-cxr14-subset/images/00000100_000.png'];
const config = resolveConfig(readConfigFile(join(REPO_ROOT, 'configs', 'swin-t.yaml')), 'configs/swin-t.yaml');

describe('configs/swin-t.yaml', () => {
  it("follows SwinCheX's published optimiser (AdamW, lr 5e-4 x 32 / 512, weight decay 0.05 on weights, warm-up + cosine) at 224 px", () => {
    assert.equal(config.model.architecture, 'swin_t');
    assert.equal(config.model.size, 224);
    assert.equal(config.batchSize, 32);
    assert.deepEqual(config.optimizer, { kind: 'adamw', lr: (5e-4 * 32) / 512, weightDecay: 0.05, weightDecayOn: 'weights', beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    assert.deepEqual(config.schedule, { type: 'cosine', warmupEpochs: 2, minLr: (5e-6 * 32) / 512 });
  });
});

describe('Swin-T AdamW step under the recipe', () => {
  let model: Model;
  let images: ReturnType<typeof float32>;
  before(async () => {
    model = importWeights(readFixture('zoo', 'swin_t.pth.br'), 'swin_t.pth', { height: SIZE }).model;
    const spec = readModelInfo(model).preprocessing;
    images = float32([FILMS.length, 3, SIZE, SIZE]);
    for (const [i, film] of FILMS.entries()) images.data.set(preprocess(await decodeImageFile(sharedDataPath(film)), spec).tensor.data, i * 3 * SIZE * SIZE);
  });
  const sessions: TrainingSession[] = [];
  after(async () => {
    for (const s of sessions) await s.release();
  });

  /** The parameters after one step of the recipe's optimiser with this weight decay (a large lr so decay shows). */
  async function stepped(weightDecay: number): Promise<Model> {
    const { optimizer } = config;
    const session = await TrainingSession.create(model, {
      loss: { kind: 'bce' },
      optimizer: { ...optimizer, weightDecay },
      weightDecayOn: optimizer.weightDecayOn,
      learningRate: 1e-2,
      dropout: false,
      threads: 2,
    });
    sessions.push(session);
    const targets = float32([FILMS.length, 14], Array.from({ length: FILMS.length * 14 }, (_, i) => (i % 5 === 0 ? 1 : 0)));
    await session.step({ images, targets });
    return session.exportModel();
  }

  it('LayerNorm weights and biases, biases and the bias tables take no weight decay; conv and linear weights take lr x 0.05 x w', async () => {
    const [decayed, undecayed] = [await stepped(0.05), await stepped(0)];
    const slots = parameterSlots(model);
    const counts = new Map<string, number>();
    for (const { name, role } of slots) {
      const before = model.graph.initializers.get(name)!.data as Float32Array;
      const a = decayed.graph.initializers.get(name)!.data as Float32Array;
      const b = undecayed.graph.initializers.get(name)!.data as Float32Array;
      counts.set(role, (counts.get(role) ?? 0) + 1);
      if (role === 'conv.weight' || role === 'linear.weight') {
        // AdamW's decoupled decay: the two runs differ by lr * wd * w (the adaptive step is the same).
        let worst = 0;
        let scale = 0;
        for (let i = 0; i < before.length; i++) {
          worst = Math.max(worst, Math.abs(b[i] - a[i] - 1e-2 * 0.05 * before[i]));
          scale = Math.max(scale, 1e-2 * 0.05 * Math.abs(before[i]));
        }
        assert.ok(worst <= 1e-3 * scale + 1e-8, `${name} (${role}): decay off by ${worst} of ${scale}`);
      } else {
        assert.deepEqual(a, b, `${name} (${role}) took weight decay`);
      }
    }
    // Every kind is there: 12 blocks x (2 LayerNorms) + merges + final norm, and 12 bias tables.
    assert.equal(counts.get('attn.relative_position_bias_table'), 12);
    assert.ok((counts.get('ln.weight') ?? 0) >= 24 && counts.get('ln.bias') === counts.get('ln.weight'));
    assert.ok((counts.get('linear.weight') ?? 0) > 0 && (counts.get('linear.bias') ?? 0) > 0);
  });
});
