/**
 * Training-mode dropout, checked exactly on a model small enough to read the mask back: image [n, 3, 1, 1] ->
 * flatten -> dropout(p) -> identity linear layer, so each logit is feature * mask / (1 - p) + bias.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { imagenetPreprocessing } from '../../src/imaging/spec.js';
import { modelInfoToMetadata } from '../../src/models/metadata.js';
import { GraphBuilder, createModel, float32 } from '../../src/onnx/index.js';
import { TrainingSession } from '../../src/train/step/session.js';
import { generated } from './generated.js';

const P = 0.3;
const N = 400;

function tinyModel() {
  const b = new GraphBuilder('tiny');
  const image = b.input('image', 'float32', ['batch', 3, 1, 1]);
  const flat = b.op('Flatten', [image], { axis: 1 }, { name: 'flatten' });
  const dropped = b.op('Dropout', [flat, b.scalar(P)], {}, { name: 'classifier.0' });
  const weight = b.initializer('classifier.1.weight', float32([3, 3], [1, 0, 0, 0, 1, 0, 0, 0, 1]));
  const bias = b.initializer('classifier.1.bias', float32([3], [0.5, -0.25, 0]));
  const logits = b.op('Gemm', [dropped, weight, bias], { transB: 1 }, { name: 'classifier.1' });
  b.output(logits, 'logits');
  b.output(flat, 'features');
  const info = { architecture: 'tiny', labels: ['a', 'b', 'c'], preprocessing: imagenetPreprocessing(1, 1, 3), io: { input: 'image', logits: 'logits', features: 'features' }, blocks: ['classifier'], weights: 'test' };
  return createModel(b.build(), modelInfoToMetadata(info));
}

describe('training-mode dropout', () => {
  it('keeps each entry with probability 1 - p, scales kept ones by 1 / (1 - p), and the gradient uses the same mask', async () => {
    const session = await TrainingSession.create(tinyModel(), { loss: { kind: 'bce' }, optimizer: { kind: 'sgd' }, learningRate: 0, outputGradients: true, threads: 1 });
    try {
      const features = generated(N * 3, 99).map((v) => v + (v >= 0 ? 0.5 : -0.5));
      const targets = float32([N, 3], Array.from({ length: N * 3 }, (_, i) => (i % 2 === 0 ? 1 : 0)));
      const result = await session.step({ images: float32([N, 3, 1, 1], features), targets });
      const logits = result.logits.data as Float32Array;
      const bias = [0.5, -0.25, 0];
      let dropped = 0;
      const hidden = new Float64Array(N * 3);
      for (let i = 0; i < N * 3; i++) {
        hidden[i] = logits[i] - bias[i % 3];
        const ratio = hidden[i] / features[i];
        if (Math.abs(ratio) < 1e-6) dropped++;
        else assert.ok(Math.abs(ratio - 1 / (1 - P)) < 1e-5, `entry ${i}: kept values are scaled by 1 / (1 - p), found ${ratio}`);
      }
      const fraction = dropped / (N * 3);
      assert.ok(Math.abs(fraction - P) < 0.05, `dropped fraction ${fraction}`);
      // d loss / d W[k, j] = sum over samples of dlogit[n, k] * hidden[n, j], dlogit = (sigmoid(z) - y) / (N * 3).
      const gradients = result.gradients as Float32Array;
      const slot = session.graph.params.find((p) => p.name === 'classifier.1.weight');
      assert.ok(slot);
      for (let k = 0; k < 3; k++) {
        for (let j = 0; j < 3; j++) {
          let want = 0;
          for (let n = 0; n < N; n++) want += ((1 / (1 + Math.exp(-logits[n * 3 + k])) - targets.data[n * 3 + k]) / (N * 3)) * hidden[n * 3 + j];
          assert.ok(Math.abs(gradients[slot.offset + k * 3 + j] - want) < 1e-5, `dW[${k}, ${j}] ${gradients[slot.offset + k * 3 + j]} vs ${want}`);
        }
      }
    } finally {
      await session.release();
    }
  });
});
