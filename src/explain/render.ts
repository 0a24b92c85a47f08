/**
 * A finding's map drawn over the original image (any resolution, DICOM included) as a PNG, and the map itself
 * downsampled for clients that draw their own overlays.
 */
import { type BoundedOverlayOptions, type DecodedImage, encodePng, overlayModelMap, resample } from '../imaging/index.js';
import { readableMap } from './readable.js';
import type { Explanation, FindingMap, GridMap } from './types.js';

export interface RenderOptions extends BoundedOverlayOptions {
  /** Draw the method's map as it is, without readable.ts's post-processing; default false. */
  raw?: boolean;
  /**
   * zlib level of the PNG, 0-9; default 1, as OpenCV's imwrite: a 1024 px overlay encodes in ~40 ms at level 1
   * and ~270 ms at level 6, for files 16% larger (1.2 against 1.0 MB).
   */
  compressionLevel?: number;
}

/** What rendering needs of an explanation: where the map lies and, for post-processing, which method made it. */
export type Rendered = Pick<Explanation, 'geometry'> & Partial<Pick<Explanation, 'method' | 'featureStride'>>;

/**
 * The map made readable (readable.ts, by the explanation's method), resampled onto the original image and blended
 * over it (the film untouched below the cut-off); PNG bytes (RGB), at the image's size or at most `maxSide`
 * (default MAX_OVERLAY_SIDE, 2048 px) on the long side.
 */
export async function renderHeatmap(image: DecodedImage, explanation: Rendered, finding: FindingMap, options: RenderOptions = {}): Promise<Uint8Array> {
  const map = options.raw || explanation.method === undefined ? finding.map : readableMap(finding.map, explanation.method, { featureStride: explanation.featureStride });
  const { rgb, width, height } = overlayModelMap(image, map.data, map.width, map.height, explanation.geometry, options);
  return encodePng(rgb, width, height, 3, { level: options.compressionLevel ?? 1 });
}

/** Every finding's overlay; the PNG encodings run concurrently in node:zlib's threads. */
export async function renderHeatmaps(image: DecodedImage, explanation: Rendered & Pick<Explanation, 'findings'>, options: RenderOptions = {}): Promise<Uint8Array[]> {
  return Promise.all(explanation.findings.map((finding) => renderHeatmap(image, explanation, finding, options)));
}

/** The map reduced (area-weighted) so that its longer side is at most `maxSide` cells; smaller maps are returned as they are. */
export function downsampleMap(map: GridMap, maxSide: number): GridMap {
  if (!Number.isInteger(maxSide) || maxSide < 1) throw new Error(`the raw map size must be a positive whole number, got ${maxSide}`);
  const scale = maxSide / Math.max(map.width, map.height);
  if (scale >= 1) return map;
  const width = Math.max(1, Math.round(map.width * scale));
  const height = Math.max(1, Math.round(map.height * scale));
  return { width, height, data: resample(map.data, map.width, map.height, width, height) };
}
