/**
 * Score-CAM (Wang et al., CVPR Workshops 2020), as pytorch-grad-cam's score_cam.py defines it: each channel of the
 * layer, upsampled bilinearly to the input (corners aligned, as torch's UpsamplingBilinear2d) and scaled to
 * [0, 1], masks the image; the finding's logit for each masked image, softmaxed over the channels, weighs the
 * channels. One forward pass per channel (1280 for MobileNetV2's last layer), shared by every finding asked for.
 */
import { float32 } from '../onnx/tensor.js';
import { type CamForward, type Dims, ModelScoredCam } from './cam.js';

export class ScoreCam extends ModelScoredCam {
  readonly name = 'scorecam';

  protected async channelWeights(activation: Float32Array, [channels, height, width]: Dims, forward: CamForward): Promise<Float64Array[]> {
    const [inChannels, inHeight, inWidth] = forward.input.dims;
    const inPlane = inHeight * inWidth;
    const scores = forward.labels.map(() => new Float64Array(channels));
    for (let first = 0; first < channels; first += forward.batchSize) {
      const count = Math.min(forward.batchSize, channels - first);
      const batch = float32([count, inChannels, inHeight, inWidth]);
      for (let r = 0; r < count; r++) {
        const mask = upsampleAlignCorners(activation.subarray((first + r) * height * width, (first + r + 1) * height * width), width, height, inWidth, inHeight);
        let min = Infinity;
        let max = -Infinity;
        for (const v of mask) {
          if (v < min) min = v;
          if (v > max) max = v;
        }
        const scale = 1 / (max - min + 1e-8);
        for (let c = 0; c < inChannels; c++) {
          for (let i = 0; i < inPlane; i++) batch.data[(r * inChannels + c) * inPlane + i] = forward.input.data[c * inPlane + i] * (mask[i] - min) * scale;
        }
      }
      const logits = await forward.model(batch);
      forward.labels.forEach((label, k) => {
        for (let r = 0; r < count; r++) scores[k][first + r] = forward.score(logits[r * forward.labelCount + label]);
      });
    }
    return scores.map(softmax);
  }
}

function softmax(values: Float64Array): Float64Array {
  const max = Math.max(...values);
  const out = values.map((v) => Math.exp(v - max));
  const sum = out.reduce((a, b) => a + b, 0);
  return out.map((v) => v / sum);
}

/** Bilinear resize with the corners of both grids aligned (torch's UpsamplingBilinear2d, align_corners=True). */
export function upsampleAlignCorners(src: ArrayLike<number>, width: number, height: number, outWidth: number, outHeight: number): Float64Array {
  const out = new Float64Array(outWidth * outHeight);
  const sx = outWidth > 1 ? (width - 1) / (outWidth - 1) : 0;
  const sy = outHeight > 1 ? (height - 1) / (outHeight - 1) : 0;
  for (let y = 0; y < outHeight; y++) {
    const fy = y * sy;
    const y0 = Math.floor(fy);
    const y1 = Math.min(height - 1, y0 + 1);
    const wy = fy - y0;
    for (let x = 0; x < outWidth; x++) {
      const fx = x * sx;
      const x0 = Math.floor(fx);
      const x1 = Math.min(width - 1, x0 + 1);
      const wx = fx - x0;
      const top = src[y0 * width + x0] * (1 - wx) + src[y0 * width + x1] * wx;
      const bottom = src[y1 * width + x0] * (1 - wx) + src[y1 * width + x1] * wx;
      out[y * outWidth + x] = top * (1 - wy) + bottom * wy;
    }
  }
  return out;
}
