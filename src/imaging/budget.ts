/**
 * The decode budget: how large an image may be before anything is allocated for its pixels, and the working
 * resolution every decoded image is brought down to. A small file can declare a huge image (a 592-byte RLE DICOM
 * declaring 16384 x 16384, a 261 kB PNG of 16384 x 16384 zeros, a 1.5 MB deflated DICOM inflating to 1.5 GiB, a
 * 512 x 512 DICOM wrapping a 30000 x 30000 JPEG), so every place where bytes expand checks the size it is about to
 * produce against this budget first:
 *
 * - PNG/JPEG: the header's size (png.ts's IHDR or sharp's metadata, no pixels decoded) against maxPixels and
 *   maxAspectRatio; larger than maxWorkingSide: shrunk while decoding by sharp (libjpeg's shrink-on-load, libvips'
 *   streaming resize), so the full resolution is never held.
 * - DICOM: Rows x Columns against maxPixels and maxAspectRatio; a deflated data set inflates to at most
 *   maxDecodedBytes (streamed, stopped on the first byte over); a compressed frame's own header (JPEG SOF, JPEG-LS
 *   SOF55, JPEG 2000 / HTJ2K SIZ, JPEG XL SizeHeader) must declare the same size as Rows x Columns, so the codec
 *   never allocates more than the checked header promised; then downscaled to maxWorkingSide.
 *
 * Pure (no Node-only imports): the browser's decodeDicom uses the same budget.
 */

export interface DecodeBudget {
  /** Most pixels (width x height, as declared by the file) decoded at all. */
  maxPixels: number;
  /** Most bytes one decoding step may produce (an inflated data set, a codec's output, a raw raster). */
  maxDecodedBytes: number;
  /** Longest side over shortest side; a 8 x 1,000,000 "image" is not a radiograph. */
  maxAspectRatio: number;
  /** Long side of the working resolution: larger images come out of decoding downscaled to this. */
  maxWorkingSide: number;
}

/**
 * 2^25 pixels (5792 x 5792; the largest flat-panel chest detectors are about 4300 x 4300 and long-length films
 * 3000 x 9000 fits), 128 MiB per decoding step (a 4096 x 4096 RGBA 16-bit raster, or a deflated data set with
 * 2^25 16-bit pixels and 64 MiB of other elements), aspect ratio 10, working resolution 4096 px on the long side
 * (models read 224-1024 px).
 */
export const DEFAULT_DECODE_BUDGET: Readonly<DecodeBudget> = Object.freeze({
  maxPixels: 2 ** 25,
  maxDecodedBytes: 2 ** 27,
  maxAspectRatio: 10,
  maxWorkingSide: 4096,
});

/**
 * Most bytes a deflated DICOM data set may inflate to: room for maxPixels 16-bit pixels plus 16 MiB of other
 * elements, and never more than maxDecodedBytes (80 MiB by default).
 */
export function inflateLimit(budget: DecodeBudget): number {
  return Math.min(budget.maxDecodedBytes, budget.maxPixels * 2 + 16 * 2 ** 20);
}

/** The image is larger than the decode budget allows: refused before its pixels were decoded. */
export class ImageTooLargeError extends Error {
  readonly code = 'CXR_IMAGE_TOO_LARGE';
}

/** The default budget with the caller's overrides, each checked. */
export function resolveBudget(overrides: Partial<DecodeBudget> = {}): DecodeBudget {
  const budget = { ...DEFAULT_DECODE_BUDGET, ...overrides };
  for (const [key, value] of Object.entries(budget)) {
    if (!(typeof value === 'number' && value >= 1 && Number.isFinite(value))) throw new Error(`decode budget: ${key} must be a number >= 1, got ${value}`);
  }
  return budget;
}

/** Throws ImageTooLargeError when a declared `width` x `height` is over the pixel or aspect-ratio budget. */
export function checkDeclaredSize(source: string, width: number, height: number, budget: DecodeBudget, what = 'image'): void {
  const pixels = width * height;
  if (pixels > budget.maxPixels) {
    throw new ImageTooLargeError(`${source}: ${what} is ${width}x${height}, more than ${budget.maxPixels} pixels (the decode budget); refused before decoding`);
  }
  const aspect = Math.max(width, height) / Math.max(1, Math.min(width, height));
  if (aspect > budget.maxAspectRatio) {
    throw new ImageTooLargeError(`${source}: ${what} is ${width}x${height}, aspect ratio ${aspect.toFixed(1)} above ${budget.maxAspectRatio}; not a radiograph`);
  }
}

/** The size an image is brought down to so that its long side is at most `maxSide` (itself when already within). */
export function fitWithin(width: number, height: number, maxSide: number): { width: number; height: number } {
  const scale = maxSide / Math.max(width, height);
  if (scale >= 1) return { width, height };
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}
