/**
 * Maps as the field draws them, so that a person can read a picture of them (issue 21): the raw maps stay what
 * each method defines (parity tests, localisation and the raw API use them); this is what rendering applies first.
 * - CAM methods: unchanged. Their maps are already rectified and as coarse as the layer, and bilinear
 *   upsampling makes them smooth.
 * - Gradient and SmoothGrad (|gradient|, max over channels): the values are heavy-tailed, so a few pixels take
 *   the top of the scale and everything else is nearly black; they are clipped at their 99th percentile (Smilkov et
 *   al. 2017 clip at the 99th percentile for their figures), then smoothed with a Gaussian at the model's
 *   receptive-field scale (below), which turns pixel speckle into regions, and finally floored at their median:
 *   the film has gradient almost everywhere, so without a floor the smoothed map tints ~75% of it (measured on
 *   NIH films with the default model) and says nothing about where; half the film is below the median by
 *   construction, and it is drawn as the bottom of the scale (transparent).
 * - Integrated Gradients: the positive part (evidence for the finding; the signed map cancels in the picture),
 *   then clipped and smoothed as the gradients are.
 * - Occlusion: the positive part (score drops); its patches already set its scale.
 * - Guided backpropagation, Guided Grad-CAM and Grad-CAM x IG: pixel-level too, clipped, smoothed and floored as
 *   the gradients (the hybrids are not negative). FullGrad is unchanged: it already sums upsampled layer maps.
 * The smoothing scale: sigma = a quarter of the feature stride, the input pixels per cell of the model's last
 * feature map (32 for the zoo's 224 px models: sigma 8 px). That is finer than a CAM cell, so gradient maps keep
 * the detail that is their reason to exist, while the speckle and the stride's checkerboard (period <= stride)
 * merge. Pure.
 */
import type { GridMap } from './types.js';

/** Share of values kept below the clipping level of gradient maps. */
const CLIP_PERCENTILE = 0.99;

/** Share of values raised to the floor of smoothed gradient maps. */
const FLOOR_PERCENTILE = 0.5;

/** The smoothing's sigma as a fraction of the feature stride (see above). */
const SMOOTHING_PER_STRIDE = 0.25;

type Processing = { positivePart: boolean; clip: boolean; smooth: boolean; floor: boolean };

const PROCESSING: Record<string, Processing> = {
  gradient: { positivePart: false, clip: true, smooth: true, floor: true },
  smoothgrad: { positivePart: false, clip: true, smooth: true, floor: true },
  'integrated-gradients': { positivePart: true, clip: true, smooth: true, floor: true },
  occlusion: { positivePart: true, clip: false, smooth: false, floor: false },
  // Pixel-level maps like the gradient's; the hybrids are already zero where their Grad-CAM is.
  'guided-backprop': { positivePart: false, clip: true, smooth: true, floor: true },
  'guided-gradcam': { positivePart: false, clip: true, smooth: true, floor: true },
  'gradcam-ig': { positivePart: false, clip: true, smooth: true, floor: true },
};

export interface ReadableOptions {
  /** Input pixels per cell of the model's last feature map; without it gradient maps are not smoothed. */
  featureStride?: number;
}

/**
 * The map of `method` post-processed for display (see the module comment); maps of methods needing none (the CAM
 * family) are returned as they are.
 */
export function readableMap(map: GridMap, method: string, options: ReadableOptions = {}): GridMap {
  const steps = PROCESSING[method];
  if (!steps) return map;
  let data: Float32Array = steps.positivePart ? map.data.map((v) => (v > 0 ? v : 0)) : Float32Array.from(map.data);
  if (steps.clip) data = clipAbove(data, percentile(data, CLIP_PERCENTILE));
  if (steps.smooth && options.featureStride !== undefined) {
    if (!(options.featureStride > 0)) throw new Error(`feature stride must be positive, got ${options.featureStride}`);
    data = gaussianBlur(data, map.width, map.height, SMOOTHING_PER_STRIDE * options.featureStride);
  }
  if (steps.floor) data = clipBelow(data, percentile(data, FLOOR_PERCENTILE));
  return { width: map.width, height: map.height, data };
}

/** The value below which a share `q` of the (finite) values lie: the sorted values' entry at floor(q (n - 1)). */
export function percentile(values: Float32Array, q: number): number {
  const sorted = Float32Array.from(values.filter(Number.isFinite)).sort();
  return sorted.length === 0 ? 0 : sorted[Math.floor(q * (sorted.length - 1))];
}

function clipAbove(data: Float32Array, level: number): Float32Array {
  for (let i = 0; i < data.length; i++) if (data[i] > level) data[i] = level;
  return data;
}

function clipBelow(data: Float32Array, level: number): Float32Array {
  for (let i = 0; i < data.length; i++) if (data[i] < level) data[i] = level;
  return data;
}

/** A separable Gaussian blur (kernel to 3 sigma), edges extended by their nearest value so borders do not darken. */
export function gaussianBlur(data: Float32Array, width: number, height: number, sigma: number): Float32Array {
  if (!(sigma > 0)) return Float32Array.from(data);
  const radius = Math.ceil(3 * sigma);
  const kernel = new Float64Array(2 * radius + 1);
  let total = 0;
  for (let k = -radius; k <= radius; k++) total += kernel[k + radius] = Math.exp(-(k * k) / (2 * sigma * sigma));
  for (let k = 0; k < kernel.length; k++) kernel[k] /= total;
  const pass = (src: Float32Array, count: number, length: number, stride: number, step: number): Float32Array => {
    const out = new Float32Array(src.length);
    for (let line = 0; line < count; line++) {
      const base = line * stride;
      for (let i = 0; i < length; i++) {
        let sum = 0;
        for (let k = -radius; k <= radius; k++) {
          const j = Math.min(length - 1, Math.max(0, i + k));
          sum += kernel[k + radius] * src[base + j * step];
        }
        out[base + i * step] = sum;
      }
    }
    return out;
  };
  return pass(pass(data, height, width, width, 1), width, height, 1, width);
}
