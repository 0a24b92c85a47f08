/**
 * A finding's map drawn over the original image (any resolution, DICOM included) as a PNG, and the map itself
 * downsampled for clients that draw their own overlays.
 */
import { type DecodedImage, type OverlayOptions, encodePng, heatmapToSource, overlayHeatmap, resample } from '../imaging/index.js';
import type { Explanation, FindingMap, GridMap } from './types.js';

export type RenderOptions = OverlayOptions;

/** The map resampled onto the original image and blended over it (gray X-ray kept readable); PNG bytes. */
export async function renderHeatmap(image: DecodedImage, explanation: Pick<Explanation, 'geometry'>, finding: FindingMap, options: RenderOptions = {}): Promise<Uint8Array> {
  const { map } = finding;
  const onSource = heatmapToSource(map.data, map.width, map.height, explanation.geometry);
  return encodePng(overlayHeatmap(image, onSource, options), image.width, image.height, 4);
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
