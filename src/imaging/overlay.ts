/**
 * Drawing a heatmap over a gray X-ray so both stay readable: the map is scaled to [0, 1], coloured, and blended
 * with opacity proportional to its value (weak evidence leaves the X-ray untouched), with an optional contour
 * where the map crosses a threshold. Output is RGBA. Pure.
 */
import { type ColormapName, colormapTable } from './colormap.js';
import type { DecodedImage } from './image.js';

export interface OverlayOptions {
  colormap?: ColormapName;
  /** Blend strength of the strongest evidence, 0..1; default 0.5. */
  opacity?: number;
  /** Draw a white contour where the normalised map crosses this level (0..1). */
  contour?: number;
}

/** Negative evidence is dropped and the rest divided by its maximum: the strongest region becomes 1. */
export function normalizeMap(map: Float32Array): Float32Array {
  let max = 0;
  for (let i = 0; i < map.length; i++) if (map[i] > max) max = map[i];
  const out = new Float32Array(map.length);
  if (max > 0) for (let i = 0; i < map.length; i++) out[i] = map[i] > 0 ? map[i] / max : 0;
  return out;
}

/** RGBA pixels of `image` with `map` (same width x height, any scale) drawn over it. */
export function overlayHeatmap(image: Pick<DecodedImage, 'width' | 'height' | 'pixels' | 'maxValue'>, map: Float32Array, options: OverlayOptions = {}): Uint8Array {
  const { width, height, pixels, maxValue } = image;
  if (map.length !== width * height) throw new Error(`heatmap has ${map.length} values for a ${width}x${height} image`);
  const opacity = options.opacity ?? 0.5;
  if (!(opacity >= 0 && opacity <= 1)) throw new Error(`opacity must be between 0 and 1, got ${opacity}`);
  const table = colormapTable(options.colormap ?? 'turbo');
  const levels = normalizeMap(map);
  const rgba = new Uint8Array(width * height * 4);
  const grayScale = 255 / maxValue;
  // One tight loop over typed arrays (a 1024 px overlay is a million pixels; the server renders 14 per image).
  for (let i = 0, o = 0; i < levels.length; i++, o += 4) {
    const gray = pixels[i] * grayScale;
    const t = levels[i];
    const alpha = opacity * t;
    const c = ((t * 255 + 0.5) | 0) * 3;
    rgba[o] = gray + (table[c] - gray) * alpha;
    rgba[o + 1] = gray + (table[c + 1] - gray) * alpha;
    rgba[o + 2] = gray + (table[c + 2] - gray) * alpha;
    rgba[o + 3] = 255;
  }
  if (options.contour !== undefined) drawContour(rgba, levels, width, height, options.contour);
  return rgba;
}

function drawContour(rgba: Uint8Array, levels: Float32Array, width: number, height: number, level: number): void {
  const inside = (x: number, y: number) => levels[y * width + x] >= level;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!inside(x, y)) continue;
      const edge = (x > 0 && !inside(x - 1, y)) || (x < width - 1 && !inside(x + 1, y)) || (y > 0 && !inside(x, y - 1)) || (y < height - 1 && !inside(x, y + 1));
      if (edge) rgba.fill(255, (y * width + x) * 4, (y * width + x) * 4 + 3);
    }
  }
}
