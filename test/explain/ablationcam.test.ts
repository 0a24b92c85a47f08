/**
 * Ablation-CAM equals pytorch-grad-cam's definition (scripts/fixtures/make_scored_cam_parity.py, float64) on the zoo
 * MobileNetV2, running the network after the layer (its own session); a layer with a connection around it is
 * refused by name. Real-film bounds with the default model: readable.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildHeadGraph, layerNames } from '../../src/explain/index.js';
import { relativeError } from '../helpers/numeric.js';
import { parityExplainer, reference } from './scored-cam-fixture.js';

describe('Ablation-CAM', () => {
  it('equals the PyTorch reference for two findings from one run of the head per channel', async (t) => {
    const { explainer, explain } = await parityExplainer();
    try {
      const cases = reference.cases.filter((c) => c.method === 'ablationcam');
      const explanation = await explain({ method: 'ablationcam', findings: cases.map((c) => explainer.labels[c.class]) });
      cases.forEach((c, k) => {
        const error = relativeError(explanation.findings[k].map.data, c.map);
        t.diagnostic(`class ${c.class}: ${error.toExponential(2)} (PyTorch float32 ${c.torch_float32_error.toExponential(2)})`);
        assert.ok(error <= Math.max(1e-4, 2 * c.torch_float32_error), `class ${c.class}: ${error}`);
        assert.ok(c.map.some((v) => v > 0));
      });
      assert.ok(explainer.openSessions().includes(`head:${reference.layer}`));
    } finally {
      await explainer.close();
    }
  });

  it('the head graph cuts at a block\'s output, and refuses a cut inside a residual block, which its skip connection bypasses', async () => {
    const { explainer } = await parityExplainer();
    try {
      const names = layerNames(explainer.model);
      assert.ok(names.includes('features.3.conv.3') && names.includes('features.3.add'), names.join(', '));
      assert.throws(() => buildHeadGraph(explainer.model, 'features.3.conv.3'), /the network after layer "features.3.conv.3" also reads "features.2.conv.3", computed before it/);
      const head = buildHeadGraph(explainer.model, 'features.3.add');
      assert.equal(head.input, 'features.3.add');
      assert.ok(head.model.graph.nodes.every((n) => !n.name.startsWith('features.3.conv')), 'nothing before the cut');
    } finally {
      await explainer.close();
    }
  });
});
