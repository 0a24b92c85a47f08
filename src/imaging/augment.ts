/**
 * Deterministic training augmentation on model pixels (uint8, height x width): one affine warp (rotation, scale,
 * translation, optional horizontal flip) with bilinear sampling, then brightness/contrast. The output is again
 * uint8 model pixels, so training feeds it to the same `normalize` as inference. Pure TypeScript.
 */

import { mixSeed, seededRandom } from '../random.js';

/** A seeded source of uniform numbers (mulberry32, see src/random.ts). */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
}

export function createRng(seed: number): Rng {
  const next = seededRandom(seed >>> 0);
  return { next, uniform: (lo, hi) => lo + (hi - lo) * next() };
}

export { mixSeed };

export interface AugmentationSpec {
  /** Maximum absolute rotation in degrees (uniform in [-r, r]); positive turns clockwise on screen (y points down). */
  rotationDeg: number;
  /** Maximum absolute shift as a fraction of width/height (uniform per axis). */
  translate: number;
  /** Maximum relative zoom: scale uniform in [1 - s, 1 + s]. */
  scale: number;
  /** Probability of a horizontal flip (0 for chest X-rays unless laterality does not matter). */
  flipProbability: number;
  /** Maximum relative brightness change: multiply by a factor in [1 - b, 1 + b]. */
  brightness: number;
  /** Maximum relative contrast change: factor in [1 - c, 1 + c] around the image mean (as torchvision's ColorJitter). */
  contrast: number;
}

/** Mild defaults for chest radiographs: no flip (the heart is on the left), small geometric and intensity changes. */
export const DEFAULT_AUGMENTATION: AugmentationSpec = {
  rotationDeg: 7,
  translate: 0.05,
  scale: 0.07,
  flipProbability: 0,
  brightness: 0.1,
  contrast: 0.1,
};

/** The parameters one call drew, so tests and box-aware callers can reproduce the transform. */
export interface AppliedAugmentation {
  rotationDeg: number;
  translateX: number;
  translateY: number;
  scale: number;
  flip: boolean;
  brightness: number;
  contrast: number;
}

export function sampleAugmentation(spec: AugmentationSpec, rng: Rng): AppliedAugmentation {
  validateAugmentationSpec(spec);
  return {
    rotationDeg: rng.uniform(-spec.rotationDeg, spec.rotationDeg),
    translateX: rng.uniform(-spec.translate, spec.translate),
    translateY: rng.uniform(-spec.translate, spec.translate),
    scale: rng.uniform(1 - spec.scale, 1 + spec.scale),
    flip: rng.next() < spec.flipProbability,
    brightness: rng.uniform(1 - spec.brightness, 1 + spec.brightness),
    contrast: rng.uniform(1 - spec.contrast, 1 + spec.contrast),
  };
}

/** Augments model pixels with parameters drawn from `seed` (a number) or an existing Rng. */
export function augment(
  pixels: Uint8Array,
  width: number,
  height: number,
  spec: AugmentationSpec,
  seed: number | Rng,
): { pixels: Uint8Array; applied: AppliedAugmentation } {
  const rng = typeof seed === 'number' ? createRng(seed) : seed;
  const applied = sampleAugmentation(spec, rng);
  return { pixels: applyAugmentation(pixels, width, height, applied), applied };
}

/**
 * Applies drawn parameters: the forward transform, about the image centre, is flip, then scale and rotation, then
 * translation (in pixels: translateX * width). Each output pixel samples the source at the inverse-mapped point
 * with bilinear interpolation; points outside the image are black, like the letterbox padding.
 */
export function applyAugmentation(pixels: Uint8Array, width: number, height: number, a: AppliedAugmentation): Uint8Array {
  if (pixels.length !== width * height) throw new Error(`augment: ${pixels.length} pixels for ${width}x${height}`);
  const cx = width / 2;
  const cy = height / 2;
  const theta = (a.rotationDeg * Math.PI) / 180;
  const cos = Math.cos(theta) / a.scale;
  const sin = Math.sin(theta) / a.scale;
  const tx = a.translateX * width;
  const ty = a.translateY * height;
  const flip = a.flip ? -1 : 1;
  const warped = new Float32Array(width * height);
  let sum = 0;
  for (let y = 0; y < height; y++) {
    // Pixel centres; undo translation, then rotation and scale (inverse of R*S is S^-1 * R^T).
    const dy = y + 0.5 - cy - ty;
    for (let x = 0; x < width; x++) {
      const dx = x + 0.5 - cx - tx;
      const sx = flip * (cos * dx + sin * dy) + cx - 0.5;
      const sy = -sin * dx + cos * dy + cy - 0.5;
      const v = bilinear(pixels, width, height, sx, sy);
      warped[y * width + x] = v;
      sum += v;
    }
  }
  const mean = sum / (width * height);
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) {
    // Contrast about the mean, then brightness, both as ColorJitter does, clamped to the 8-bit range.
    const v = ((warped[i] - mean) * a.contrast + mean) * a.brightness;
    out[i] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
  }
  return out;
}

/** Bilinear sample at (x, y) in pixel-index coordinates; neighbours outside the image count as 0. */
function bilinear(src: Uint8Array, width: number, height: number, x: number, y: number): number {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const fx = x - x0;
  const fy = y - y0;
  const at = (xi: number, yi: number) => (xi >= 0 && yi >= 0 && xi < width && yi < height ? src[yi * width + xi] : 0);
  if (x0 < -1 || y0 < -1 || x0 >= width || y0 >= height) return 0;
  const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
  const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
  return top * (1 - fy) + bottom * fy;
}

export function validateAugmentationSpec(spec: AugmentationSpec): void {
  const check = (name: keyof AugmentationSpec, max: number) => {
    const v = spec[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) {
      throw new Error(`augmentation: "${name}" must be a number in [0, ${max}], got ${JSON.stringify(v)}`);
    }
  };
  check('rotationDeg', 180);
  check('translate', 1);
  check('scale', 0.9);
  check('flipProbability', 1);
  check('brightness', 1);
  check('contrast', 1);
}
