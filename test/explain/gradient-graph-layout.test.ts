/**
 * The gradient graph's layout for several classes: by default the forward pass runs once and only the backward is
 * stacked per class, and models with a second input (patient metadata) are differentiable. Results must not depend
 * on the layout: several classes in one run equal one run per class, and equal the tiled graph (forward repeated).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildGradientGraph } from '../../src/explain/gradient-graph.js';
import { METADATA_FEATURES } from '../../src/models/patient-metadata.js';
import { buildModel } from '../../src/models/zoo/index.js';
import { type HostTensor, type Model, float32 } from '../../src/onnx/index.js';
import { runOnce } from '../helpers/session.js';
import { generated } from '../autodiff/generated.js';

const SIZE = 64;
const BATCH = 2;
const model = buildModel('mobilenet_v2', { height: SIZE, width: SIZE, metadata: true });
const feeds = {
  image: float32([BATCH, 3, SIZE, SIZE], generated(BATCH * 3 * SIZE * SIZE, 11)),
  metadata: float32([BATCH, METADATA_FEATURES.length], generated(BATCH * METADATA_FEATURES.length, 12)),
};

const run = (graphModel: Model): Promise<Record<string, HostTensor>> => runOnce(graphModel, feeds, 2);

function maxRelativeError(ours: ArrayLike<number>, reference: ArrayLike<number>): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < reference.length; i++) scale = Math.max(scale, Math.abs(reference[i]));
  for (let i = 0; i < reference.length; i++) worst = Math.max(worst, Math.abs(ours[i] - reference[i]));
  return worst / scale;
}

describe('gradient graph layout', () => {
  const classes = [0, 3, 13];

  it('runs the forward pass once by default; the tiled layout repeats it on every input', () => {
    const { model: graph } = buildGradientGraph(model, { sources: ['image', 'features'], classes });
    const stem = graph.graph.nodes.find((n) => n.name === 'features.0.0');
    assert.deepEqual(stem?.inputs[0], 'image', 'the first convolution runs on the batch as given');
    assert.equal(graph.graph.nodes.filter((n) => n.opType === 'Tile').length, 0);
    const tiled = buildGradientGraph(model, { sources: ['image', 'features'], classes, multiClass: 'tile' }).model;
    assert.deepEqual(tiled.graph.nodes.find((n) => n.name === 'features.0.0')?.inputs[0], 'image.replicated');
    assert.deepEqual(tiled.graph.nodes.filter((n) => n.opType === 'Tile').map((n) => n.inputs[0]).sort(), ['image', 'metadata']);
  });

  it('several classes in one run equal one run per class and the tiled graph, metadata input included', async () => {
    const plain = await run(model);
    const together = await run(buildGradientGraph(model, { sources: ['features'], classes }).model);
    const full = await run(buildGradientGraph(model, { sources: ['features'], classes, multiClass: 'tile' }).model);
    assert.deepEqual(together['features.grad'].dims, [classes.length, BATCH, 1280, 2, 2]);
    assert.deepEqual(together.features.dims, [BATCH, 1280, 2, 2]);
    assert.ok(maxRelativeError(together.logits.data as Float32Array, plain.logits.data as Float32Array) < 1e-6, 'logits');
    assert.ok(maxRelativeError(together.features.data as Float32Array, plain.features.data as Float32Array) < 1e-6, 'feature map');
    assert.ok(maxRelativeError(together['features.grad'].data as Float32Array, full['features.grad'].data as Float32Array) < 1e-5, 'same as tiled');
    const perClass = (together['features.grad'].data as Float32Array).length / classes.length;
    for (const [k, c] of classes.entries()) {
      const single = await run(buildGradientGraph(model, { sources: ['features'], classes: [c] }).model);
      const ours = (together['features.grad'].data as Float32Array).subarray(k * perClass, (k + 1) * perClass);
      assert.ok(maxRelativeError(ours, single['features.grad'].data as Float32Array) < 1e-6, `class ${c}`);
    }
  });
});
