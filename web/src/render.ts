/**
 * Pixels for the screen: the gray image through a window/level, and a finding's map as a coloured layer whose alpha
 * follows the map. The map is first made readable as the server's PNGs are (src/explain/readable.ts), and levels
 * below the cut-off are fully transparent. Drawing the layer with globalAlpha = opacity blends as imaging's
 * overlayHeatmap does (gray + (colour - gray) * opacity * level), so the screen, the report and the server's PNGs agree.
 */
import { type ColormapName, colormapTable, DEFAULT_CUTOFF, type DecodedImage, type Geometry, heatmapToSource, normalizeMap } from '../../src/imaging/browser.js';
import { readableMap } from '../../src/explain/readable.js';
import type { GridMap } from '../../src/explain/types.js';

/**
 * The feature stride readable maps smooth gradient methods at when the explanation does not say (the server's JSON
 * has no field for it): every CNN of the zoo but AlexNet (DenseNet-121, ResNet-50, MobileNetV2) reaches its last
 * feature map at 1/32 of its input.
 */
export const ZOO_FEATURE_STRIDE = 32;

export interface Window {
  /** Centre and width in the image's own units (0..maxValue). */
  center: number;
  width: number;
}

export function fullWindow(image: Pick<DecodedImage, 'maxValue'>): Window {
  return { center: image.maxValue / 2, width: image.maxValue };
}

function canvasOf(data: ImageData): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = data.width;
  canvas.height = data.height;
  canvas.getContext('2d')!.putImageData(data, 0, 0);
  return canvas;
}

/** The image through a linear window (values below centre - width/2 black, above centre + width/2 white). */
export function windowedCanvas(image: DecodedImage, window: Window): HTMLCanvasElement {
  const lut = new Uint8ClampedArray(image.maxValue + 1);
  const low = window.center - window.width / 2;
  for (let v = 0; v <= image.maxValue; v++) lut[v] = ((v - low) / window.width) * 255;
  const data = new ImageData(image.width, image.height);
  const out = data.data;
  const { pixels } = image;
  for (let i = 0, j = 0; i < pixels.length; i++, j += 4) {
    const g = lut[pixels[i]];
    out[j] = g;
    out[j + 1] = g;
    out[j + 2] = g;
    out[j + 3] = 255;
  }
  return canvasOf(data);
}

/**
 * A method's model-grid map, made readable, resampled onto the image (imaging's heatmapToSource) as colour with
 * alpha = level over the map's own range; transparent below the cut-off.
 */
export function heatmapCanvas(map: GridMap, geometry: Geometry, colormap: ColormapName, method: string, featureStride = ZOO_FEATURE_STRIDE): HTMLCanvasElement {
  const readable = readableMap(map, method, { featureStride });
  const levels = normalizeMap(heatmapToSource(readable.data, readable.width, readable.height, geometry));
  const table = colormapTable(colormap);
  const data = new ImageData(geometry.sourceWidth, geometry.sourceHeight);
  const out = data.data;
  for (let i = 0, j = 0; i < levels.length; i++, j += 4) {
    const q = levels[i] >= DEFAULT_CUTOFF ? Math.round(levels[i] * 255) : 0;
    out[j] = table[3 * q];
    out[j + 1] = table[3 * q + 1];
    out[j + 2] = table[3 * q + 2];
    out[j + 3] = q;
  }
  return canvasOf(data);
}

/** The colour map as a horizontal strip, `width` x `height`; the part below the cut-off left transparent. */
export function colourBarCanvas(colormap: ColormapName, width: number, height: number): HTMLCanvasElement {
  const table = colormapTable(colormap);
  const data = new ImageData(width, height);
  for (let x = 0; x < width; x++) {
    const level = x / (width - 1);
    const q = Math.round(level * 255);
    for (let y = 0; y < height; y++) {
      const j = 4 * (y * width + x);
      data.data.set([table[3 * q], table[3 * q + 1], table[3 * q + 2], level >= DEFAULT_CUTOFF ? 255 : 0], j);
    }
  }
  return canvasOf(data);
}

/** The overlay as one canvas at the image's size (for the report). */
export function composite(gray: HTMLCanvasElement, layer: HTMLCanvasElement | null, opacity: number): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = gray.width;
  canvas.height = gray.height;
  const context = canvas.getContext('2d')!;
  context.drawImage(gray, 0, 0);
  if (layer) {
    context.globalAlpha = opacity;
    context.drawImage(layer, 0, 0);
  }
  return canvas;
}

/** base64 little-endian float32 (the API's raw maps) -> values. */
export function decodeRawMap(raw: { width: number; height: number; data: string }): GridMap {
  const binary = atob(raw.data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const data = new Float32Array(bytes.buffer);
  if (data.length !== raw.width * raw.height) throw new Error(`raw map has ${data.length} values for ${raw.width}x${raw.height}`);
  return { width: raw.width, height: raw.height, data };
}
