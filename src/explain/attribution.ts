/**
 * The base of methods that combine what the gradient runner computes into maps over the input (FullGrad, guided
 * backpropagation and the Grad-CAM hybrids), and the steps they share with pytorch-grad-cam: its scale_cam_image
 * ((m - min) / (max - min + 1e-7)), cv2.resize's bilinear upsampling, and Grad-CAM brought to the input's size.
 * Pure.
 */
import { GradCam } from './cam.js';
import type { InputGradientOptions } from './input-gradients.js';
import type { ExplanationTarget, GradientRunner, GridMap } from './types.js';
import { float32 } from '../onnx/tensor.js';

export type InputDims = readonly [channels: number, height: number, width: number];

export interface AttributionRequest {
  runner: GradientRunner;
  /** The preprocessed image [C, H, W]. */
  input: Float32Array;
  dims: InputDims;
  /** Label indices of the requested findings. */
  labels: readonly number[];
  target: ExplanationTarget;
  /** The CAM layer of the hybrids; default the runner's. */
  layer?: string;
  /** Input-gradient settings (batch size, Integrated Gradients' steps and baseline, the preprocessing). */
  gradients: InputGradientOptions;
}

export interface Attributions {
  /** The model's logits, indexed by label (at least the requested labels'). */
  logits: ArrayLike<number>;
  /** One map per requested label, over the input grid. */
  maps: GridMap[];
  /** The CAM layer read, for hybrids. */
  layer?: string;
}

/**
 * The runner's graphs a method runs, so that they can be built ahead (Explainer.prepare): the CAM graph, the
 * input-gradient graph plain or guided, the bias-gradient graph, the attention-gradient graph, the model itself.
 */
export type RunnerGraph = 'cam' | 'input' | 'guided' | 'bias' | 'attention' | 'model';

export abstract class AttributionMethod {
  abstract readonly name: string;
  abstract readonly graphs: readonly RunnerGraph[];

  abstract attribute(request: AttributionRequest): Promise<Attributions>;
}

/** pytorch-grad-cam's scale_cam_image without the resize: (m - min) / (max - min + 1e-7). */
export function scaledToUnitRange(values: ArrayLike<number>): Float64Array {
  const out = new Float64Array(values.length);
  addScaledToUnitRange(values, out);
  return out;
}

/** Adds scaledToUnitRange(values) into `sum`, with no array made (FullGrad sums thousands of channels). */
export function addScaledToUnitRange(values: ArrayLike<number>, sum: Float64Array): void {
  let min = Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] < min) min = values[i];
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] - min > max) max = values[i] - min;
  const range = 1e-7 + max;
  for (let i = 0; i < values.length; i++) sum[i] += (values[i] - min) / range;
}

/**
 * Bilinear resampling with pixel centres aligned (cv2.resize's INTER_LINEAR when enlarging, which pytorch-grad-cam
 * uses, equal to torch's interpolate(mode='bilinear', align_corners=False)): source coordinate (x + 0.5) w / W - 0.5,
 * clamped to the edge pixels.
 */
export function resizeBilinear(src: ArrayLike<number>, width: number, height: number, toWidth: number, toHeight: number): Float64Array {
  const axis = (from: number, to: number) =>
    Array.from({ length: to }, (_, i) => {
      const s = Math.min(Math.max((i + 0.5) * (from / to) - 0.5, 0), from - 1);
      const low = Math.floor(s);
      return { low, high: Math.min(low + 1, from - 1), t: s - low };
    });
  const xs = axis(width, toWidth);
  const ys = axis(height, toHeight);
  const out = new Float64Array(toWidth * toHeight);
  for (let y = 0; y < toHeight; y++) {
    const { low: y0, high: y1, t: ty } = ys[y];
    for (let x = 0; x < toWidth; x++) {
      const { low: x0, high: x1, t: tx } = xs[x];
      const top = src[y0 * width + x0] * (1 - tx) + src[y0 * width + x1] * tx;
      const bottom = src[y1 * width + x0] * (1 - tx) + src[y1 * width + x1] * tx;
      out[y * toWidth + x] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}

/**
 * Grad-CAM as pytorch-grad-cam hands it to its hybrids: per requested label, the rectified map scaled to [0, 1],
 * resized to the input and scaled again (compute_cam_per_layer, then aggregate_multi_layers), [H * W]. The target
 * only scales the gradient by p(1 - p) > 0, which the scaling removes.
 */
export async function gradCamOnInput(request: AttributionRequest): Promise<{ logits: Float32Array; layer: string; maps: Float64Array[] }> {
  const { runner, input, dims, labels } = request;
  const [, height, width] = dims;
  const layer = await runner.layerGradients(float32([1, ...dims], input), labels, request.layer);
  const gradCam = new GradCam();
  const maps = layer.gradients.map((gradient) => {
    const cam = gradCam.map(layer.activation, gradient, layer.dims);
    return scaledToUnitRange(resizeBilinear(scaledToUnitRange(cam.data), cam.width, cam.height, width, height));
  });
  return { logits: layer.logits, layer: layer.layer, maps };
}
