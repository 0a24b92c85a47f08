/**
 * Pixels for the screen: the gray image through a window/level, and a finding's map as a coloured layer whose alpha
 * follows the map. Drawing the layer with globalAlpha = opacity blends exactly as imaging's overlayHeatmap does
 * (gray + (colour - gray) * opacity * level), so the screen, the report and the server's PNGs agree.
 */
import { type ColormapName, colormapTable, type DecodedImage, type Geometry, heatmapToSource, normalizeMap } from '../../src/imaging/browser.js';
import type { GridMap } from '../../src/explain/types.js';

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

/** A model-grid map resampled onto the image (imaging's heatmapToSource) as colour with alpha = level. */
export function heatmapCanvas(map: GridMap, geometry: Geometry, colormap: ColormapName): HTMLCanvasElement {
  const onSource = heatmapToSource(map.data, map.width, map.height, geometry);
  const levels = normalizeMap(onSource);
  const table = colormapTable(colormap);
  const data = new ImageData(geometry.sourceWidth, geometry.sourceHeight);
  const out = data.data;
  for (let i = 0, j = 0; i < levels.length; i++, j += 4) {
    const c = Math.round(levels[i] * 255) * 3;
    out[j] = table[c];
    out[j + 1] = table[c + 1];
    out[j + 2] = table[c + 2];
    out[j + 3] = Math.round(levels[i] * 255);
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
