/**
 * The class activation map family, structured as pytorch-grad-cam (github.com/jacobgil/pytorch-grad-cam,
 * pytorch_grad_cam/base_cam.py and one file per method): a base turns a layer's activation A [C, h, w] and the
 * gradient G of a finding's score with respect to it into a map; each method only says how channels (or single
 * locations) are weighted. Every map ends with a ReLU, as pytorch-grad-cam's `compute_cam_per_layer` does; maps
 * stay at the layer's resolution and unnormalised (HiResCAM's sums to the logit minus the bias on a
 * global-average-pooled head), scaling and resizing are left to rendering. Pure.
 */
import type { GridMap } from './types.js';

export const CAM_METHODS = ['gradcam', 'gradcam++', 'hirescam', 'layercam', 'xgradcam'] as const;
export type CamMethodName = (typeof CAM_METHODS)[number];

type Dims = readonly [channels: number, height: number, width: number];

export abstract class BaseCam {
  abstract readonly name: CamMethodName;

  /** The map before the final ReLU: per location, the channels' activations weighted and summed. */
  protected abstract weightedSum(activation: Float32Array, gradient: Float32Array, dims: Dims): Float64Array;

  map(activation: Float32Array, gradient: Float32Array, dims: Dims): GridMap {
    const [channels, height, width] = dims;
    const size = channels * height * width;
    if (activation.length !== size || gradient.length !== size) {
      throw new Error(`${this.name}: activation (${activation.length}) and gradient (${gradient.length}) must both hold ${channels}x${height}x${width} values`);
    }
    const sum = this.weightedSum(activation, gradient, dims);
    return { width, height, data: Float32Array.from(sum, (v) => (v > 0 ? v : 0)) };
  }
}

/** Methods that give each channel one weight: map = ReLU(sum_c w_c A_c). */
abstract class ChannelWeightedCam extends BaseCam {
  protected abstract channelWeights(activation: Float32Array, gradient: Float32Array, dims: Dims): Float64Array;

  protected weightedSum(activation: Float32Array, gradient: Float32Array, dims: Dims): Float64Array {
    const [channels, height, width] = dims;
    const plane = height * width;
    const weights = this.channelWeights(activation, gradient, dims);
    const out = new Float64Array(plane);
    for (let c = 0; c < channels; c++) {
      const w = weights[c];
      if (w === 0) continue;
      const base = c * plane;
      for (let i = 0; i < plane; i++) out[i] += w * activation[base + i];
    }
    return out;
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

  protected weightedSum(activation: Float32Array, gradient: Float32Array, [channels, height, width]: Dims): Float64Array {
    const plane = height * width;
    const out = new Float64Array(plane);
    for (let c = 0; c < channels; c++) {
      const base = c * plane;
      for (let i = 0; i < plane; i++) out[i] += this.gradientWeight(gradient[base + i]) * activation[base + i];
    }
    return out;
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

const CAMS: Record<CamMethodName, BaseCam> = {
  gradcam: new GradCam(),
  'gradcam++': new GradCamPlusPlus(),
  hirescam: new HiResCam(),
  layercam: new LayerCam(),
  xgradcam: new XGradCam(),
};

export function isCamMethod(method: string): method is CamMethodName {
  return (CAM_METHODS as readonly string[]).includes(method);
}

export function camMethod(name: CamMethodName): BaseCam {
  return CAMS[name];
}
