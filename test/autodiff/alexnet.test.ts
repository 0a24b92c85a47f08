/**
 * AlexNet, the zoo architecture the PyTorch parity fixtures leave out (its adaptive pooling is a MatMul, its head
 * has dropout): the explanation gradient against central finite differences, and a few training steps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildGradientGraph } from '../../src/explain/gradient-graph.js';
import { buildModel } from '../../src/models/zoo/index.js';
import { float32 } from '../../src/onnx/index.js';
import { OrtSession } from '../../src/runtime/session.js';
import { TrainingSession } from '../../src/train/step/session.js';
import { generated } from './generated.js';

const SIZE = 64;
const model = buildModel('alexnet', { height: SIZE, width: SIZE });
const count = 2 * 3 * SIZE * SIZE;
const image = generated(count, 5);

describe('alexnet', () => {
  for (const multiClass of ['backward', 'tile'] as const)
  it(`input gradient of two classes (${multiClass}) matches central finite differences of the logits`, async () => {
    const classes = [1, 9];
    const graph = buildGradientGraph(model, { sources: ['image'], classes, multiClass });
    const session = await OrtSession.create(graph.model, { threads: 2 });
    const plain = await OrtSession.create(model, { threads: 2 });
    try {
      const out = await session.run({ image: float32([2, 3, SIZE, SIZE], image) });
      const grad = out['image.grad'].data as Float32Array;
      assert.deepEqual(out['image.grad'].dims, [2, 2, 3, SIZE, SIZE]);
      const direction = generated(count, 6);
      // Small enough that few ReLU/max-pool switches are crossed, large enough for float32 logits.
      const h = 3e-4;
      const shifted = async (sign: number) =>
        (await plain.run({ image: float32([2, 3, SIZE, SIZE], image.map((v, i) => v + sign * h * direction[i])) })).logits.data as Float32Array;
      const [up, down] = [await shifted(1), await shifted(-1)];
      classes.forEach((c, k) => {
        let numeric = 0;
        let analytic = 0;
        for (let n = 0; n < 2; n++) numeric += (up[n * 14 + c] - down[n * 14 + c]) / (2 * h);
        for (let i = 0; i < count; i++) analytic += grad[k * count + i] * direction[i];
        assert.ok(Math.abs(numeric - analytic) <= 2e-2 * Math.abs(analytic), `class ${c}: finite differences ${numeric}, gradient ${analytic}`);
      });
    } finally {
      await session.release();
      await plain.release();
    }
  });

  it('trains with dropout on', async () => {
    const session = await TrainingSession.create(model, { loss: { kind: 'asymmetric' }, optimizer: { kind: 'sgd', momentum: 0.9, nesterov: true }, learningRate: 1e-3, threads: 2 });
    try {
      const targets = float32([2, 14], Array.from({ length: 28 }, (_, i) => (i % 4 === 0 ? 1 : 0)));
      const first = await session.step({ images: float32([2, 3, SIZE, SIZE], image), targets });
      const second = await session.step({ images: float32([2, 3, SIZE, SIZE], image), targets });
      assert.ok(Number.isFinite(first.loss) && Number.isFinite(second.loss));
      assert.notDeepEqual(session.state().params, session.graph.initialParams);
    } finally {
      await session.release();
    }
  });
});
