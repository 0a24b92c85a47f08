/**
 * Channels-last activations (a transformer stage's [batch, height, width, channels]) read through their declared
 * layout: Grad-CAM, LayerCAM and Ablation-CAM on an NHWC copy of a layer give the maps they give on the NCHW layer
 * itself, on a real NIH film; without the declaration the same request gives other, wrong maps (H read as C).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Explainer, layerNames } from '../../src/explain/index.js';
import { decodeImageFile } from '../../src/imaging/index.js';
import { torchvisionInit } from '../../src/models/init.js';
import { Layers } from '../../src/models/layers.js';
import { layoutsMetadata } from '../../src/models/layouts.js';
import { modelInfoToMetadata } from '../../src/models/metadata.js';
import { GraphBuilder, createModel } from '../../src/onnx/index.js';
import { sharedDataPath } from '../helpers/fixtures.js';

/** conv (6 channels, 8 x 8 cells) -> `act`; `act_nhwc` is the same values channels last, and the head reads it back. */
function modelWithChannelsLastLayer(declare: boolean) {
  const b = new GraphBuilder('channels-last');
  const layers = new Layers(b, torchvisionInit(3));
  const image = b.input('image', 'float32', ['batch', 3, 32, 32]);
  const act = layers.relu(layers.conv2d('conv', image, { out: 6, kernel: 3, stride: 4, padding: 1, bias: true }), 'act');
  const nhwc = b.op('Transpose', [act], { perm: [0, 2, 3, 1] }, { name: 'act_nhwc' });
  const back = b.op('Transpose', [nhwc], { perm: [0, 3, 1, 2] }, { name: 'act_back' });
  // A spatially varying head, so that maps differ between cells (global pooling alone would give flat gradients).
  const logits = layers.linear('fc', b.op('Flatten', [back], { axis: 1 }, { name: 'flatten' }), 2);
  b.output(logits, 'logits');
  b.output(act, 'features');
  const metadata = modelInfoToMetadata({
    architecture: 'test-channels-last',
    labels: ['A', 'B'],
    preprocessing: { height: 32, width: 32, channels: 3, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], resize: 'stretch' },
    io: { input: 'image', logits: 'logits', features: 'features' },
    blocks: ['conv', 'fc'],
    weights: 'seeded',
  });
  return createModel(b.build(), { ...metadata, ...(declare ? layoutsMetadata({ [nhwc.name]: 'NHWC' }) : {}) });
}

describe('activation layouts', () => {
  it('CAM maps of a declared NHWC layer equal those of the NCHW layer it copies; undeclared, they do not', async () => {
    const image = await decodeImageFile(sharedDataPath('nih-cxr14-subset', 'images', '00000075_000.png'));
    const declared = await Explainer.create(modelWithChannelsLastLayer(true), { threads: 1 });
    const undeclared = await Explainer.create(modelWithChannelsLastLayer(false), { threads: 1 });
    try {
      const nhwcName = 'act_nhwc';
      assert.ok(layerNames(modelWithChannelsLastLayer(true)).includes(nhwcName), 'the NHWC activation is a layer CAM methods may read');
      for (const method of ['gradcam', 'layercam', 'ablationcam'] as const) {
        const reference = await declared.explain(image, { method, layer: 'act' });
        const viaLayout = await declared.explain(image, { method, layer: nhwcName });
        const misread = await undeclared.explain(image, { method, layer: nhwcName });
        reference.findings.forEach((f, k) => {
          const got = viaLayout.findings[k].map;
          assert.deepEqual([got.height, got.width], [f.map.height, f.map.width]);
          const scale = Math.max(...f.map.data.map(Math.abs), 1e-12);
          const error = Math.max(...f.map.data.map((v, i) => Math.abs(v - got.data[i])));
          assert.ok(error <= 1e-5 * scale, `${method} ${f.finding}: differs by ${error} (scale ${scale})`);
          const wrong = misread.findings[k].map;
          const same = wrong.height === f.map.height && wrong.width === f.map.width && f.map.data.every((v, i) => Math.abs(v - wrong.data[i]) <= 1e-5 * scale);
          assert.ok(!same, `${method} ${f.finding}: without the declaration the map should be misread`);
        });
      }
    } finally {
      await declared.close();
      await undeclared.close();
    }
  });
});
