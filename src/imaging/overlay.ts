/**
 * Drawing a heatmap over a gray X-ray so both stay readable: the map is scaled over its own range (min..max, so a
 * map whose weakest value is well above zero still starts at the bottom of the scale), levels below a cut-off leave
 * the film exactly as it is, and the rest is coloured and blended with opacity proportional to its level; an
 * optional contour follows a level of the same scale. Output is RGB. Pure.
 */
import { fitWithin } from './budget.js';
import { type ColormapName, colormapTable } from './colormap.js';
import { type Geometry, heatmapToSource } from './geometry.js';
import type { DecodedImage } from './image.js';
import { resizeGray } from './resample.js';

/** Default long side of a drawn overlay: 2048 px (14 overlays of a 4096 px image would be 700 MB of RGB). */
export const MAX_OVERLAY_SIDE = 2048;

/**
 * Default cut-off: the lowest 30% of a map's range is not drawn. A Grad-CAM map upsampled from 7 x 7 has no exact
 * zeros, so without a cut-off the whole film is tinted; with the default model on the six NIH films with boxes in
 * nih-cxr14-subset, a cut-off at 20% still drew 57-87% of the film for Grad-CAM and 73-91% for Grad-CAM++, at
 * 30% 17-72% and 58-80%, while the strongest regions keep their tails.
 */
export const DEFAULT_CUTOFF = 0.3;

export interface OverlayOptions {
  colormap?: ColormapName;
  /** Blend strength of the strongest evidence, 0..1; default 0.5. */
  opacity?: number;
  /** Levels below this fraction of the map's range (0..1) leave the film's pixels unchanged; default DEFAULT_CUTOFF. */
  cutoff?: number;
  /** Draw a white contour where the map crosses this fraction of its range (0 = its minimum, 1 = its maximum). */
  contour?: number;
}

/** The map's range, NaN ignored; [0, 0] when it has no finite value. */
function mapRange(map: Float32Array): [min: number, max: number] {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return min <= max ? [min, max] : [0, 0];
}

/**
 * The map scaled over its own range: its minimum becomes 0 and its maximum 1 (a flat map is all 0, nothing to
 * show). The levels the overlay, the viewer's layer, the cut-off and the contour all use.
 */
export function normalizeMap(map: Float32Array): Float32Array {
  const [min, max] = mapRange(map);
  const out = new Float32Array(map.length);
  if (max > min) {
    const scale = 1 / (max - min);
    for (let i = 0; i < map.length; i++) out[i] = map[i] > min ? (map[i] - min) * scale : 0;
  }
  return out;
}

function checkFraction(name: string, value: number): void {
  if (!(value >= 0 && value <= 1)) throw new Error(`${name} must be between 0 and 1, got ${value}`);
}

/**
 * RGB pixels of `image` with `map` (same width x height, any scale) drawn over it: the map normalised as
 * normalizeMap does, its level rounded to the colour map's 256 steps (as the viewer's layer is), the gray in 8
 * bits. Below the cut-off a pixel is exactly the film's 8-bit gray.
 */
export function overlayHeatmap(image: Pick<DecodedImage, 'width' | 'height' | 'pixels' | 'maxValue'>, map: Float32Array, options: OverlayOptions = {}): Uint8Array {
  const { width, height, pixels, maxValue } = image;
  if (map.length !== width * height) throw new Error(`heatmap has ${map.length} values for a ${width}x${height} image`);
  const opacity = options.opacity ?? 0.5;
  const cutoff = options.cutoff ?? DEFAULT_CUTOFF;
  checkFraction('opacity', opacity);
  checkFraction('the cut-off', cutoff);
  if (options.contour !== undefined) checkFraction('the contour level', options.contour);
  const table = colormapTable(options.colormap ?? 'turbo');
  const levels = normalizeMap(map);
  // Each output channel as a table over (colour level, 8-bit gray): a pixel is then three lookups (a 1024 px
  // overlay is a million pixels, and the server renders 14 per image). Level 0 is the bare film.
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
  for (let i = 0, o = 0; i < levels.length; i++, o += 3) {
    const level = levels[i];
    const entry = ((level >= cutoff && level > 0 ? (level * 255 + 0.5) | 0 : 0) << 8) | (pixels[i] * grayScale);
    rgb[o] = red[entry];
    rgb[o + 1] = green[entry];
    rgb[o + 2] = blue[entry];
  }
  if (options.contour !== undefined) drawContour(rgb, levels, width, height, options.contour);
  return rgb;
}

/** White on the pixels inside the region where the normalised map reaches `level` that touch its outside. */
function drawContour(rgb: Uint8Array, levels: Float32Array, width: number, height: number, level: number): void {
  const inside = (x: number, y: number) => levels[y * width + x] >= level;
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
