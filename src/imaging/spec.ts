/**
 * How a model wants its pixels. Stored in every cxr-lens model's metadata so that the same numeric pipeline
 * runs in training, inference and the browser, and a caller cannot feed wrongly scaled pixels.
 *
 * Pipeline, in this order:
 * 1. intensities are scaled to [0, 1] by the decoded image's own maximum (255 for 8-bit, 2^BitsStored - 1 for DICOM
 *    after windowing, ...), with MONOCHROME1 already inverted so that bone and air look as on a PNG;
 * 2. the image is resized to `height` x `width` with `resize` deciding what happens to the aspect ratio;
 * 3. gray is replicated to `channels` (1 or 3);
 * 4. each channel c becomes (x - mean[c]) / std[c].
 */
/** How an image's aspect ratio meets the model's input (PreprocessingSpec.resize). */
export const RESIZE_RULES = ['pad', 'crop', 'stretch'] as const;
export type ResizeRule = (typeof RESIZE_RULES)[number];

export interface PreprocessingSpec {
  height: number;
  width: number;
  channels: 1 | 3;
  /** Per-channel mean and std applied to [0, 1] intensities; length equals `channels`. */
  mean: number[];
  std: number[];
  /**
   * - `pad`: scale the longer side to fit, centre, fill the rest with black (nothing of the image is lost);
   * - `crop`: scale the shorter side to fit, centre-crop the longer one;
   * - `stretch`: scale each axis independently.
   */
  resize: ResizeRule;
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

/** ImageNet normalisation for 3 channels; for 1 channel the average of ImageNet's statistics. */
export function imagenetPreprocessing(height: number, width: number, channels: 1 | 3): PreprocessingSpec {
  const mean = channels === 3 ? [...IMAGENET_MEAN] : [average(IMAGENET_MEAN)];
  const std = channels === 3 ? [...IMAGENET_STD] : [average(IMAGENET_STD)];
  return { height, width, channels, mean, std, resize: 'pad' };
}

function average(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Throws a clear error when a spec (for example one read from a model file) is malformed. */
export function validatePreprocessingSpec(spec: unknown, source = 'preprocessing'): PreprocessingSpec {
  const fail = (why: string): never => {
    throw new Error(`${source}: ${why}`);
  };
  if (typeof spec !== 'object' || spec === null) fail('expected an object');
  const s = spec as Record<string, unknown>;
  for (const key of ['height', 'width'] as const) {
    const v = s[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  if (s.channels !== 1 && s.channels !== 3) fail(`"channels" must be 1 or 3, got ${JSON.stringify(s.channels)}`);
  for (const key of ['mean', 'std'] as const) {
    const v = s[key];
    if (!Array.isArray(v) || v.length !== s.channels || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      fail(`"${key}" must be ${String(s.channels)} finite numbers, got ${JSON.stringify(v)}`);
    }
  }
  if ((s.std as number[]).some((x) => x <= 0)) fail(`"std" must be positive, got ${JSON.stringify(s.std)}`);
  if (!(RESIZE_RULES as readonly unknown[]).includes(s.resize)) {
    fail(`"resize" must be one of ${RESIZE_RULES.map((r) => `"${r}"`).join(', ')}, got ${JSON.stringify(s.resize)}`);
  }
  return s as unknown as PreprocessingSpec;
}
