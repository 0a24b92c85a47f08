/**
 * The film as the report shows it (Node): 8-bit gray, scaled as the overlays scale it (value * 255 / maxValue, so
 * the film panel and the bare parts of each heatmap panel are the same pixels), at most `maxSide` px, as a PNG.
 */
import { type DecodedImage, encodePng, fitWithin, resizeGray } from '../imaging/index.js';

/** Long side of the report's images: about 300 dpi across its half-page panels. */
export const REPORT_IMAGE_SIDE = 1024;

export function filmPng(image: Pick<DecodedImage, 'width' | 'height' | 'pixels' | 'maxValue'>, maxSide = REPORT_IMAGE_SIDE): Promise<Uint8Array> {
  const { width, height } = fitWithin(image.width, image.height, maxSide);
  const pixels = width === image.width && height === image.height ? image.pixels : resizeGray(image.pixels, image.width, image.height, width, height);
  const scale = 255 / image.maxValue;
  const gray = new Uint8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) gray[i] = pixels[i] * scale;
  return encodePng(gray, width, height, 1);
}
