/**
 * Eigen-CAM: the first principal component's projection equals numpy's SVD (pytorch-grad-cam's definition) on the
 * zoo MobileNetV2, up to the component's sign, which we fix towards the layer's activity; every finding gets the
 * same map (real-film bounds with the default model: readable.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EigenCam, firstComponentProjection } from '../../src/explain/index.js';
import { float32 } from '../../src/onnx/tensor.js';
import { parityInput, relativeError } from '../helpers/numeric.js';
import { parityExplainer, reference } from './scored-cam-fixture.js';

describe('Eigen-CAM', () => {
  it('equals pytorch-grad-cam\'s projection (numpy SVD) up to sign to 1e-5, the same map for every finding', async (t) => {
    const { explainer, explain } = await parityExplainer();
    try {
      const cases = reference.cases.filter((c) => c.method === 'eigencam');
      const labels = cases.map((c) => explainer.labels[c.class]);
      const explanation = await explain({ method: 'eigencam', findings: labels });
      assert.equal(explanation.layer, reference.layer);
      const input = float32([1, 3, reference.size, reference.size], parityInput(3 * reference.size * reference.size));
      const layer = await explainer.runner({ metadata: {} }).layerGradients(input, [cases[0].class]);
      const projection = firstComponentProjection(layer.activation, layer.dims);
      for (const c of cases) {
        const error = Math.min(relativeError(projection, c.map), relativeError(projection.map((v) => -v), c.map));
        t.diagnostic(`class ${c.class}: ${error.toExponential(2)} (PyTorch float32 ${c.torch_float32_error.toExponential(2)})`);
        assert.ok(error < 1e-5, `projection error ${error}`);
      }
      const [first, second] = explanation.findings;
      assert.deepEqual(first.map.data, second.map.data, 'class-agnostic');
      assert.deepEqual(first.map.data, Float32Array.from(projection, (v) => (v > 0 ? v : 0)), 'the map is the projection after the ReLU');
      assert.ok(first.map.data.some((v) => v > 0) && first.map.data.some((v) => v === 0));
    } finally {
      await explainer.close();
    }
  });

  it('finds a planted component and orients it towards where the layer fires', () => {
    const [channels, height, width] = [6, 4, 5];
    const plane = height * width;
    const pattern = Float64Array.from({ length: plane }, (_, i) => (i % width === 1 && i > width ? 3 : 0.2));
    const activation = new Float32Array(channels * plane);
    for (let c = 0; c < channels; c++) for (let i = 0; i < plane; i++) activation[c * plane + i] = (c + 1) * pattern[i] + 0.01 * Math.sin(7 * c + i);
    const map = new EigenCam().map(activation, new Float32Array(activation.length), [channels, height, width]);
    for (let i = 0; i < plane; i++) assert.equal(map.data[i] > 0, pattern[i] === 3, `location ${i}`);
  });

});
