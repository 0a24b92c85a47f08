/**
 * FullGrad (Srinivas & Fleuret, NeurIPS 2019), as pytorch-grad-cam's fullgrad_cam.py computes it: |input gradient x
 * input| per input channel, plus, for every layer that adds a bias (Conv and BatchNorm, graphs.ts biasLayers),
 * |bias x gradient at the layer's output| per channel; each channel scaled to [0, 1] on its own
 * (scale_accross_batch_and_channels), the layer's channels summed, resized bilinearly to the input and everything
 * summed. The map is left before pytorch-grad-cam's final scaling to [0, 1], as the other CAMs are. Pure.
 */
import { AttributionMethod, type AttributionRequest, type Attributions, type InputDims, addScaledToUnitRange, resizeBilinear } from './attribution.js';
import { float32 } from '../onnx/tensor.js';

/** One layer's bias [c] and the gradient of the score at its output [c, h, w]. */
export interface BiasTerm {
  bias: ArrayLike<number>;
  dims: readonly [number, number, number];
  gradient: ArrayLike<number>;
}

export class FullGrad extends AttributionMethod {
  readonly name = 'fullgrad';
  readonly graphs = ['bias'] as const;

  async attribute({ runner, input, dims, labels, target, gradients }: AttributionRequest): Promise<Attributions> {
    if (!runner.biasGradients) throw new Error('fullgrad needs gradients at every bias layer, which this runner cannot compute');
    // Rows hold the gradient at every layer: fewer per run than the input-gradient methods.
    const batchSize = gradients.batchSize ?? 4;
    const size = dims[0] * dims[1] * dims[2];
    const logits = new Float32Array(runner.labels.length);
    const maps = [];
    for (let first = 0; first < labels.length; first += batchSize) {
      const rows = labels.slice(first, first + batchSize);
      const batch = float32([rows.length, ...dims]);
      rows.forEach((_, r) => batch.data.set(input, r * size));
      const result = await runner.biasGradients(batch, rows);
      for (const [r, label] of rows.entries()) {
        logits[label] = result.logits[r];
        const p = 1 / (1 + Math.exp(-result.logits[r]));
        const scale = target === 'probability' ? p * (1 - p) : 1;
        const layers = result.layers.map(({ bias, dims: layerDims, gradients: g }) => {
          const layerSize = layerDims[0] * layerDims[1] * layerDims[2];
          return { bias, dims: layerDims, gradient: g.subarray(r * layerSize, (r + 1) * layerSize) };
        });
        const inputGradient = result.input.subarray(r * size, (r + 1) * size);
        maps.push({ width: dims[2], height: dims[1], data: fullGradMap(input, inputGradient, layers, dims, scale) });
      }
    }
    return { logits, maps };
  }
}

/**
 * The FullGrad map [H * W] from the input, its gradient (both [C, H, W]) and every bias layer's term; `scale`
 * multiplies every gradient (p(1 - p) to explain the probability instead of the logit).
 */
export function fullGradMap(input: ArrayLike<number>, inputGradient: ArrayLike<number>, layers: readonly BiasTerm[], [channels, height, width]: InputDims, scale = 1): Float32Array {
  const plane = height * width;
  const sum = new Float64Array(plane);
  const product = new Float64Array(plane);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < plane; i++) product[i] = Math.abs(inputGradient[c * plane + i] * scale * input[c * plane + i]);
    addScaledToUnitRange(product, sum);
  }
  for (const { bias, dims: [layerChannels, h, w], gradient } of layers) {
    const layerPlane = h * w;
    const layerSum = new Float64Array(layerPlane);
    const term = new Float64Array(layerPlane);
    for (let c = 0; c < layerChannels; c++) {
      const weight = bias[c] * scale;
      for (let i = 0; i < layerPlane; i++) term[i] = Math.abs(weight * gradient[c * layerPlane + i]);
      addScaledToUnitRange(term, layerSum);
    }
    const resized = h === height && w === width ? layerSum : resizeBilinear(layerSum, w, h, width, height);
    for (let i = 0; i < plane; i++) sum[i] += resized[i];
  }
  return Float32Array.from(sum);
}
