/**
 * A finding's map drawn over the original image (any resolution, DICOM included) as a PNG, and the map itself
 * downsampled for clients that draw their own overlays.
 */
import sharp from 'sharp';
import { type DecodedImage, type OverlayOptions, heatmapToSource, overlayHeatmap, resample } from '../imaging/index.js';
import type { Explanation, FindingMap, GridMap } from './types.js';

export interface RenderOptions extends OverlayOptions {
  /**
   * zlib level of the PNG, 0-9; default 1, as OpenCV's imwrite: at 1024 px it encodes several times faster than
   * level 6 for files about a fifth larger.
   */
  compressionLevel?: number;
}

/** The map resampled onto the original image and blended over it (gray X-ray kept readable); PNG bytes (RGB). */
export async function renderHeatmap(image: DecodedImage, explanation: Pick<Explanation, 'geometry'>, finding: FindingMap, options: RenderOptions = {}): Promise<Uint8Array> {
  const { map } = finding;
  const level = options.compressionLevel ?? 1;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new Error(`PNG compression level must be a whole number 0-9, got ${level}`);
  const rgb = overlayHeatmap(image, heatmapToSource(map.data, map.width, map.height, explanation.geometry), options);
  const png = await sharp(rgb, { raw: { width: image.width, height: image.height, channels: 3 } }).png({ compressionLevel: level }).toBuffer();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

/** Every finding's overlay; the PNG encodings run concurrently in libvips' threads. */
export async function renderHeatmaps(image: DecodedImage, explanation: Pick<Explanation, 'geometry' | 'findings'>, options: RenderOptions = {}): Promise<Uint8Array[]> {
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
