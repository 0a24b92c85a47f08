/**
 * The class activation map family, structured as pytorch-grad-cam (github.com/jacobgil/pytorch-grad-cam,
 * pytorch_grad_cam/base_cam.py and one file per method): a base turns a layer's activation A [C, h, w] and the
 * gradient G of a finding's score with respect to it into a map; each method only says how channels (or single
 * locations) are weighted. Every map ends with a ReLU, as pytorch-grad-cam's `compute_cam_per_layer` does; maps
 * stay at the layer's resolution and unnormalised (HiResCAM's sums to the logit minus the bias on a
 * global-average-pooled head), scaling and resizing are left to rendering. Pure.
 */
import type { HostTensor } from '../onnx/tensor.js';
import type { GridMap } from './types.js';

export type Dims = readonly [channels: number, height: number, width: number];

export interface CamOptions {
  /**
   * Reduce the weighted activations to their first principal component instead of summing the channels
   * (pytorch-grad-cam's eigen_smooth): less noise, at the price of what the sum means (HiResCAM's exactness).
   */
  eigenSmooth?: boolean;
}

export abstract class BaseCam {
  abstract readonly name: string;

  /** Per channel and location [C, h, w], what the map adds up: w_c A_c, or f(G) A for elementwise methods. */
  protected abstract weighted(activation: Float32Array, gradient: Float32Array, dims: Dims): Float64Array;

  map(activation: Float32Array, gradient: Float32Array, dims: Dims, options: CamOptions = {}): GridMap {
    const [channels, height, width] = dims;
    const size = channels * height * width;
    if (activation.length !== size || gradient.length !== size) {
      throw new Error(`${this.name}: activation (${activation.length}) and gradient (${gradient.length}) must both hold ${channels}x${height}x${width} values`);
    }
    return reduceChannels(this.weighted(activation, gradient, dims), dims, options);
  }
}

/** The final steps of every CAM: the channels summed (or, eigen-smoothed, projected), then ReLU (compute_cam_per_layer). */
export function reduceChannels(weighted: Float64Array, dims: Dims, options: CamOptions = {}): GridMap {
  return rectified(options.eigenSmooth ? firstComponentProjection(weighted, dims) : sumChannels(weighted, dims), dims);
}

function sumChannels(weighted: Float64Array, [channels, height, width]: Dims): Float64Array {
  const plane = height * width;
  const out = new Float64Array(plane);
  for (let c = 0; c < channels; c++) for (let i = 0; i < plane; i++) out[i] += weighted[c * plane + i];
  return out;
}

/** w_c A_c for every channel c. */
export function channelWeighted(activation: Float32Array, weights: ArrayLike<number>, [channels, height, width]: Dims): Float64Array {
  const plane = height * width;
  const out = new Float64Array(activation.length);
  for (let c = 0; c < channels; c++) for (let i = 0; i < plane; i++) out[c * plane + i] = weights[c] * activation[c * plane + i];
  return out;
}

/**
 * pytorch-grad-cam's get_2d_projection: the [C, h, w] values as a (locations x channels) matrix, centred per
 * channel, projected on its first right singular vector v1. Computed as sqrt(lambda) u for the top eigenvector u
 * of X X^T (locations x locations), by power iteration applied as X (X^T u), so neither covariance is formed. A
 * component has no sign (LAPACK's SVD picks one); we take the one whose projection correlates positively with
 * the channel sum at each location, so that the ReLU keeps the side the plain map would show.
 */
export function firstComponentProjection(values: ArrayLike<number>, [channels, height, width]: Dims): Float64Array {
  const plane = height * width;
  const x = new Float64Array(channels * plane);
  const total = new Float64Array(plane);
  for (let c = 0; c < channels; c++) {
    let mean = 0;
    for (let i = 0; i < plane; i++) {
      const v = Number.isNaN(values[c * plane + i]) ? 0 : values[c * plane + i];
      mean += v;
      total[i] += v;
    }
    mean /= plane;
    for (let i = 0; i < plane; i++) x[c * plane + i] = (Number.isNaN(values[c * plane + i]) ? 0 : values[c * plane + i]) - mean;
  }
  // Start from the centred channel sum (near the component in practice, and deterministic), nudged off zero.
  const totalMean = total.reduce((a, b) => a + b, 0) / plane;
  let u = Float64Array.from(total, (v, i) => v - totalMean + (i === 0 ? 1e-3 : 0));
  let lambda = 0;
  const xtu = new Float64Array(channels);
  const norm = (v: Float64Array) => Math.sqrt(v.reduce((a, b) => a + b * b, 0));
  for (let iteration = 0; iteration < 10000; iteration++) {
    const length = norm(u);
    if (length === 0) return new Float64Array(plane);
    for (let i = 0; i < plane; i++) u[i] /= length;
    for (let c = 0; c < channels; c++) {
      let sum = 0;
      for (let i = 0; i < plane; i++) sum += x[c * plane + i] * u[i];
      xtu[c] = sum;
    }
    const next = new Float64Array(plane);
    for (let c = 0; c < channels; c++) for (let i = 0; i < plane; i++) next[i] += x[c * plane + i] * xtu[c];
    let rayleigh = 0;
    for (let i = 0; i < plane; i++) rayleigh += next[i] * u[i];
    const nextLength = norm(next) || 1;
    let moved = 0;
    for (let i = 0; i < plane; i++) moved = Math.max(moved, Math.abs(next[i] / nextLength - u[i]));
    u = next;
    const settled = Math.abs(rayleigh - lambda) <= 1e-13 * Math.abs(rayleigh) && moved < 1e-10;
    lambda = rayleigh;
    if (settled) break;
  }
  const scale = Math.sqrt(Math.max(lambda, 0)) / (norm(u) || 1);
  let agreement = 0;
  for (let i = 0; i < plane; i++) agreement += u[i] * total[i];
  const sign = agreement < 0 ? -1 : 1;
  return Float64Array.from(u, (v) => sign * scale * v);
}

/**
 * What CAM methods that run the model to weigh channels (Score-CAM, Ablation-CAM) are given: the image, forward
 * passes of the whole model and of the part after the layer, and the findings asked for.
 */
export interface CamForward {
  /** The preprocessed image [C, H, W]. */
  input: { dims: readonly [number, number, number]; data: Float32Array };
  /** Label indices of the requested findings, and how many labels the model has. */
  labels: readonly number[];
  labelCount: number;
  /** The logits of the unchanged image (the reference scores). */
  logits: Float32Array;
  /** The score a logit stands for: the logit itself, or the probability for probability targets. */
  score(logit: number): number;
  /** Rows per forward run. */
  batchSize: number;
  /** Logits [rows, labels] of preprocessed images [rows, C, H, W]. */
  model(batch: HostTensor<'float32'>): Promise<Float32Array>;
  /** Logits [rows, labels] of activations of the layer [rows, c, h, w] run through the rest of the network. */
  head(activations: HostTensor<'float32'>): Promise<Float32Array>;
}

/**
 * CAM methods whose channel weights come from running the model (no gradients): one weight vector per requested
 * finding, then map = ReLU(sum_c w_c A_c) as the gradient methods'.
 */
export abstract class ModelScoredCam {
  abstract readonly name: string;

  protected abstract channelWeights(activation: Float32Array, dims: Dims, forward: CamForward): Promise<Float64Array[]>;

  async maps(activation: Float32Array, dims: Dims, forward: CamForward, options: CamOptions = {}): Promise<GridMap[]> {
    if (activation.length !== dims[0] * dims[1] * dims[2]) throw new Error(`${this.name}: the activation (${activation.length}) must hold ${dims.join('x')} values`);
    const weights = await this.channelWeights(activation, dims, forward);
    return weights.map((w) => reduceChannels(channelWeighted(activation, w, dims), dims, options));
  }
}

/** The final step of every CAM (pytorch-grad-cam's compute_cam_per_layer): a ReLU, at the layer's resolution. */
export function rectified(sum: Float64Array, [, height, width]: Dims): GridMap {
  return { width, height, data: Float32Array.from(sum, (v) => (v > 0 ? v : 0)) };
}

/** Methods that give each channel one weight: map = ReLU(sum_c w_c A_c). */
abstract class ChannelWeightedCam extends BaseCam {
  protected abstract channelWeights(activation: Float32Array, gradient: Float32Array, dims: Dims): Float64Array;

  protected weighted(activation: Float32Array, gradient: Float32Array, dims: Dims): Float64Array {
    return channelWeighted(activation, this.channelWeights(activation, gradient, dims), dims);
  }
}

/** Grad-CAM (Selvaraju et al. 2017): w_c = the spatial mean of G_c (grad_cam.py). */
export class GradCam extends ChannelWeightedCam {
  readonly name = 'gradcam';

  protected channelWeights(_activation: Float32Array, gradient: Float32Array, [channels, height, width]: Dims): Float64Array {
    const plane = height * width;
    const weights = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      let sum = 0;
      for (let i = c * plane; i < (c + 1) * plane; i++) sum += gradient[i];
      weights[c] = sum / plane;
    }
    return weights;
  }
}

/**
 * Grad-CAM++ (Chattopadhay et al. 2018) in pytorch-grad-cam's closed form (grad_cam_plusplus.py), which assumes
 * an exponential score: alpha = G^2 / (2 G^2 + sum(A_c) G^3 + 1e-6) where G != 0 (else 0), w_c = sum(alpha ReLU(G)).
 */
export class GradCamPlusPlus extends ChannelWeightedCam {
  readonly name = 'gradcam++';

  protected channelWeights(activation: Float32Array, gradient: Float32Array, [channels, height, width]: Dims): Float64Array {
    const plane = height * width;
    const weights = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      let activationSum = 0;
      for (let i = c * plane; i < (c + 1) * plane; i++) activationSum += activation[i];
      let w = 0;
      for (let i = c * plane; i < (c + 1) * plane; i++) {
        const g = gradient[i];
        if (g <= 0) continue; // alpha is multiplied by ReLU(G): only positive gradients count
        const g2 = g * g;
        w += (g2 / (2 * g2 + activationSum * g2 * g + 1e-6)) * g;
      }
      weights[c] = w;
    }
    return weights;
  }
}

/** XGrad-CAM (Fu et al. 2020): w_c = sum(G_c A_c) / (sum(A_c) + 1e-7) (xgrad_cam.py). */
export class XGradCam extends ChannelWeightedCam {
  readonly name = 'xgradcam';

  protected channelWeights(activation: Float32Array, gradient: Float32Array, [channels, height, width]: Dims): Float64Array {
    const plane = height * width;
    const weights = new Float64Array(channels);
    for (let c = 0; c < channels; c++) {
      let activationSum = 0;
      let product = 0;
      for (let i = c * plane; i < (c + 1) * plane; i++) {
        activationSum += activation[i];
        product += gradient[i] * activation[i];
      }
      weights[c] = product / (activationSum + 1e-7);
    }
    return weights;
  }
}

/** Methods that weight every location of every channel separately: map = ReLU(sum_c f(G) A). */
abstract class ElementwiseCam extends BaseCam {
  protected abstract gradientWeight(g: number): number;

  protected weighted(activation: Float32Array, gradient: Float32Array): Float64Array {
    return Float64Array.from(activation, (a, i) => this.gradientWeight(gradient[i]) * a);
  }
}

/** HiResCAM (Draelos & Carin 2020): sum_c G A, the exact contribution of each location to the score (hirescam.py). */
export class HiResCam extends ElementwiseCam {
  readonly name = 'hirescam';

  protected gradientWeight(g: number): number {
    return g;
  }
}

/** LayerCAM (Jiang et al. 2021): sum_c ReLU(G) A (layer_cam.py). */
export class LayerCam extends ElementwiseCam {
  readonly name = 'layercam';

  protected gradientWeight(g: number): number {
    return g > 0 ? g : 0;
  }
}
