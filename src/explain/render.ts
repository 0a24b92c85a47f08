/** A finding's map drawn over the original image (any resolution, DICOM included) as an RGBA overlay or PNG. */
import { type DecodedImage, type OverlayOptions, encodePng, heatmapToSource, overlayHeatmap } from '../imaging/index.js';
import type { Explanation, FindingMap } from './types.js';

export type RenderOptions = OverlayOptions;

/** The map resampled onto the original image and blended over it; PNG bytes. */
export async function renderHeatmap(image: DecodedImage, explanation: Pick<Explanation, 'geometry'>, finding: FindingMap, options: RenderOptions = {}): Promise<Uint8Array> {
  const { map } = finding;
  const onSource = heatmapToSource(map.data, map.width, map.height, explanation.geometry);
  return encodePng(overlayHeatmap(image, onSource, options), image.width, image.height, 4);
}
