/** Mapping between source-image and model-input coordinates, and drawing model-space maps back on the source. Pure. */
import { resample } from './resample.js';
import type { PreprocessingSpec } from './spec.js';

/**
 * How source-image coordinates map to model-input coordinates (continuous pixel coordinates, pixel i covering
 * [i, i + 1)): modelX = sourceX * scaleX + offsetX, modelY = sourceY * scaleY + offsetY.
 */
export interface Geometry {
  sourceWidth: number;
  sourceHeight: number;
  /** Model input size (spec.width x spec.height). */
  width: number;
  height: number;
  scaleX: number;
  scaleY: number;
  offsetX: number;
  offsetY: number;
  resize: PreprocessingSpec['resize'];
}

/** Computes the source -> model mapping for an image of the given size under `spec.resize`. */
export function computeGeometry(sourceWidth: number, sourceHeight: number, spec: Pick<PreprocessingSpec, 'width' | 'height' | 'resize'>): Geometry {
  const { width, height, resize } = spec;
  const base = { sourceWidth, sourceHeight, width, height, resize };
  if (resize === 'stretch') return { ...base, scaleX: width / sourceWidth, scaleY: height / sourceHeight, offsetX: 0, offsetY: 0 };
  if (resize === 'crop') {
    const s = Math.max(width / sourceWidth, height / sourceHeight);
    // The centred source window of size (width / s) x (height / s) fills the model input exactly; the offsets are <= 0.
    return { ...base, scaleX: s, scaleY: s, offsetX: (width - sourceWidth * s) / 2, offsetY: (height - sourceHeight * s) / 2 };
  }
  const s = Math.min(width / sourceWidth, height / sourceHeight);
  const contentWidth = Math.min(width, Math.max(1, Math.round(sourceWidth * s)));
  const contentHeight = Math.min(height, Math.max(1, Math.round(sourceHeight * s)));
  return {
    ...base,
    scaleX: contentWidth / sourceWidth,
    scaleY: contentHeight / sourceHeight,
    offsetX: Math.floor((width - contentWidth) / 2),
    offsetY: Math.floor((height - contentHeight) / 2),
  };
}

export interface Point {
  x: number;
  y: number;
}

/** An axis-aligned box: top-left corner and size, in continuous pixel coordinates. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export function sourceToModel(g: Geometry, p: Point): Point {
  return { x: p.x * g.scaleX + g.offsetX, y: p.y * g.scaleY + g.offsetY };
}

export function modelToSource(g: Geometry, p: Point): Point {
  return { x: (p.x - g.offsetX) / g.scaleX, y: (p.y - g.offsetY) / g.scaleY };
}

/**
 * Maps a box given in a reference space (default: the source image's own size; NIH's boxes use 1024 x 1024 even
 * when the image read is smaller) to model-input coordinates, clipped to the model input. A box wholly outside
 * (possible with 'crop') comes back with zero width or height.
 */
export function boxToModel(g: Geometry, box: Rect, space: { width: number; height: number } = { width: g.sourceWidth, height: g.sourceHeight }): Rect {
  const fx = g.sourceWidth / space.width;
  const fy = g.sourceHeight / space.height;
  const a = sourceToModel(g, { x: box.x * fx, y: box.y * fy });
  const b = sourceToModel(g, { x: (box.x + box.width) * fx, y: (box.y + box.height) * fy });
  const x0 = clamp(Math.min(a.x, b.x), 0, g.width);
  const x1 = clamp(Math.max(a.x, b.x), 0, g.width);
  const y0 = clamp(Math.min(a.y, b.y), 0, g.height);
  const y1 = clamp(Math.max(a.y, b.y), 0, g.height);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/**
 * Resamples a map laid over the model input (e.g. a CAM of mapWidth x mapHeight covering all of it) onto the
 * source image grid, so it can be overlaid on the original. Padding is dropped; with 'crop', source areas the
 * model never saw get 0.
 */
export function heatmapToSource(map: Float32Array, mapWidth: number, mapHeight: number, g: Geometry): Float32Array {
  const fx = mapWidth / g.width;
  const fy = mapHeight / g.height;
  return resample(map, mapWidth, mapHeight, g.sourceWidth, g.sourceHeight, {
    x0: g.offsetX * fx,
    y0: g.offsetY * fy,
    x1: (g.sourceWidth * g.scaleX + g.offsetX) * fx,
    y1: (g.sourceHeight * g.scaleY + g.offsetY) * fy,
  });
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}
