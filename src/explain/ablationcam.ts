/**
 * Ablation-CAM (Desai and Ramaswamy, WACV 2020), as pytorch-grad-cam's ablation_cam.py and ablation_layer.py define
 * it: each channel of the layer in turn is ablated and the rest of the network run on; a channel's weight is the
 * finding's relative logit drop, (y - y_k) / y. Ablated means set to 0 when the layer's minimum is 0 (a rectified
 * layer, the paper's choice), else to that minimum minus 1e7 (pytorch-grad-cam's choice for layers with negative
 * values; its value then also drifts with the position in its batch, a side effect of editing the batch in place,
 * which we do not copy). One run of the head per channel, shared by every finding asked for.
 */
import { float32 } from '../onnx/tensor.js';
import { type CamForward, type Dims, ModelScoredCam } from './cam.js';

export class AblationCam extends ModelScoredCam {
  readonly name = 'ablationcam';

  protected async channelWeights(activation: Float32Array, [channels, height, width]: Dims, forward: CamForward): Promise<Float64Array[]> {
    const plane = height * width;
    let min = Infinity;
    for (const v of activation) if (v < min) min = v;
    const ablated = min === 0 ? 0 : min - 1e7;
    const weights = forward.labels.map(() => new Float64Array(channels));
    for (let first = 0; first < channels; first += forward.batchSize) {
      const count = Math.min(forward.batchSize, channels - first);
      const batch = float32([count, channels, height, width]);
      for (let r = 0; r < count; r++) {
        batch.data.set(activation, r * activation.length);
        batch.data.fill(ablated, r * activation.length + (first + r) * plane, r * activation.length + (first + r + 1) * plane);
      }
      const logits = await forward.head(batch);
      forward.labels.forEach((label, k) => {
        const original = forward.score(forward.logits[label]);
        for (let r = 0; r < count; r++) weights[k][first + r] = (original - forward.score(logits[r * forward.labelCount + label])) / original;
      });
    }
    return weights;
  }
}
