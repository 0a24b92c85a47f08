/**
 * Drawing a heatmap over a gray X-ray so both stay readable: the map is scaled to [0, 1], coloured, and blended
 * with opacity proportional to its value (weak evidence leaves the X-ray untouched), with an optional contour
 * where the map crosses a threshold. Output is RGB. Pure.
 */
import { fitWithin } from './budget.js';
import { type ColormapName, colormapTable } from './colormap.js';
import { type Geometry, heatmapToSource } from './geometry.js';
import type { DecodedImage } from './image.js';
import { resizeGray } from './resample.js';

/** Default long side of a drawn overlay: 2048 px (14 overlays of a 4096 px image would be 700 MB of RGB). */
export const MAX_OVERLAY_SIDE = 2048;

export interface OverlayOptions {
  colormap?: ColormapName;
  /** Blend strength of the strongest evidence, 0..1; default 0.5. */
  opacity?: number;
  /** Draw a white contour where the normalised map crosses this level (0..1). */
  contour?: number;
}

/** Negative evidence is dropped and the rest divided by its maximum: the strongest region becomes 1 (the viewer's layer). */
export function normalizeMap(map: Float32Array): Float32Array {
  let max = 0;
  for (let i = 0; i < map.length; i++) if (map[i] > max) max = map[i];
  const out = new Float32Array(map.length);
  if (max > 0) for (let i = 0; i < map.length; i++) out[i] = map[i] > 0 ? map[i] / max : 0;
  return out;
}

/**
 * RGB pixels of `image` with `map` (same width x height, any scale) drawn over it: the map normalised as
 * normalizeMap does, its level rounded to the colour map's 256 steps (as the viewer's layer is), the gray in 8 bits.
 */
export function overlayHeatmap(image: Pick<DecodedImage, 'width' | 'height' | 'pixels' | 'maxValue'>, map: Float32Array, options: OverlayOptions = {}): Uint8Array {
  const { width, height, pixels, maxValue } = image;
  if (map.length !== width * height) throw new Error(`heatmap has ${map.length} values for a ${width}x${height} image`);
  const opacity = options.opacity ?? 0.5;
  if (!(opacity >= 0 && opacity <= 1)) throw new Error(`opacity must be between 0 and 1, got ${opacity}`);
  const table = colormapTable(options.colormap ?? 'turbo');
  let max = 0;
  for (let i = 0; i < map.length; i++) if (map[i] > max) max = map[i];
  const toLevel = max > 0 ? 255 / max : 0;
  // Each output channel as a table over (colour level, 8-bit gray): a pixel is then three lookups (a 1024 px
  // overlay is a million pixels, and the server renders 14 per image).
  const channels = [0, 1, 2].map(() => new Uint8Array(256 * 256));
  for (let q = 0; q < 256; q++) {
    const alpha = (opacity * q) / 255;
    for (let gray = 0; gray < 256; gray++) {
      const kept = gray * (1 - alpha);
      for (let k = 0; k < 3; k++) channels[k][(q << 8) | gray] = kept + table[3 * q + k] * alpha;
    }
  }
  const [red, green, blue] = channels;
  const rgb = new Uint8Array(width * height * 3);
  const grayScale = 255 / maxValue;
  for (let i = 0, o = 0; i < map.length; i++, o += 3) {
    const v = map[i];
    const entry = ((v > 0 ? (v * toLevel + 0.5) | 0 : 0) << 8) | (pixels[i] * grayScale);
    rgb[o] = red[entry];
    rgb[o + 1] = green[entry];
    rgb[o + 2] = blue[entry];
  }
  if (options.contour !== undefined) drawContour(rgb, map, max, width, height, options.contour);
  return rgb;
}

/** White on the pixels inside the region where the normalised map reaches `level` that touch its outside. */
function drawContour(rgb: Uint8Array, map: Float32Array, max: number, width: number, height: number, level: number): void {
  const inside = (x: number, y: number) => {
    const v = map[y * width + x];
    return (v > 0 ? v / max : 0) >= level;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!inside(x, y)) continue;
      const edge = (x > 0 && !inside(x - 1, y)) || (x < width - 1 && !inside(x + 1, y)) || (y > 0 && !inside(x, y - 1)) || (y < height - 1 && !inside(x, y + 1));
      if (edge) rgb.fill(255, (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  }
}

export interface BoundedOverlayOptions extends OverlayOptions {
  /** Longest side of the drawn overlay in pixels; default MAX_OVERLAY_SIDE. Larger images are area-downscaled first. */
  maxSide?: number;
}

/**
 * A model-space map (`mapWidth` x `mapHeight` over the model input, mapped by `geometry`) drawn over `image`
 * at most `maxSide` px on the long side: the image is downscaled and the map resampled straight to that size,
 * so neither the map nor the RGB is ever held at a larger size. RGB pixels and their size.
 */
export function overlayModelMap(
  image: Pick<DecodedImage, 'width' | 'height' | 'pixels' | 'maxValue'>,
  map: Float32Array,
  mapWidth: number,
  mapHeight: number,
  geometry: Geometry,
  options: BoundedOverlayOptions = {},
): { rgb: Uint8Array; width: number; height: number } {
  const maxSide = options.maxSide ?? MAX_OVERLAY_SIDE;
  if (!(Number.isInteger(maxSide) && maxSide >= 1)) throw new Error(`overlay maxSide must be a positive whole number, got ${maxSide}`);
  const { width, height } = fitWithin(image.width, image.height, maxSide);
  const scaled = width === image.width && height === image.height;
  const pixels = scaled ? image.pixels : resizeGray(image.pixels, image.width, image.height, width, height);
  // The same mapping onto the smaller grid: source pixel x of the original is x * width / image.width here.
  const g: Geometry = scaled
    ? geometry
    : { ...geometry, sourceWidth: width, sourceHeight: height, scaleX: (geometry.scaleX * image.width) / width, scaleY: (geometry.scaleY * image.height) / height };
  const onSource = heatmapToSource(map, mapWidth, mapHeight, g);
  return { rgb: overlayHeatmap({ width, height, pixels, maxValue: image.maxValue }, onSource, options), width, height };
}
