/**
 * A finding's map drawn over the original image (any resolution, DICOM included) as a PNG, and the map itself
 * downsampled for clients that draw their own overlays.
 */
import { type BoundedOverlayOptions, type ColormapName, DEFAULT_CUTOFF, type DecodedImage, colormapTable, encodePng, overlayModelMap, resample } from '../imaging/index.js';
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

const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The overlays' colour scale as a small SVG (real text, any size): the colour map from the cut-off to the map's
 * strongest value, the part below the cut-off hatched as bare film, and what the scale means. Written beside
 * `cxr explain`'s PNGs, which carry no legend of their own.
 */
export function colourScaleSvg(colormap: ColormapName, options: { cutoff?: number; method: string } = { method: '' }): string {
  const cutoff = options.cutoff ?? DEFAULT_CUTOFF;
  const table = colormapTable(colormap);
  const hex = (q: number) => `#${[0, 1, 2].map((k) => table[3 * q + k].toString(16).padStart(2, '0')).join('')}`;
  const [x0, width] = [20, 360];
  const from = Math.round(cutoff * 255);
  // One stop per table entry above the cut-off: the bar is the table itself, not an approximation of it.
  const stops = Array.from({ length: 256 - from }, (_, k) => from + k).map((q) => `<stop offset="${((q - from) / Math.max(1, 255 - from)).toFixed(4)}" stop-color="${hex(q)}"/>`);
  const at = x0 + cutoff * width;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="96" viewBox="0 0 640 96" font-family="sans-serif" font-size="11">
<defs><linearGradient id="scale">${stops.join('')}</linearGradient>
<pattern id="film" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#999"/><rect width="3" height="6" fill="#bbb"/></pattern></defs>
<rect width="640" height="96" fill="#fff"/>
<rect x="${x0}" y="10" width="${(at - x0).toFixed(1)}" height="16" fill="url(#film)"/>
<rect x="${at.toFixed(1)}" y="10" width="${(x0 + width - at).toFixed(1)}" height="16" fill="url(#scale)"/>
<rect x="${x0}" y="10" width="${width}" height="16" fill="none" stroke="#555"/>
<text x="${x0}" y="40">weakest</text><text x="${at.toFixed(1)}" y="40" text-anchor="middle">${Math.round(cutoff * 100)}%</text><text x="${x0 + width}" y="40" text-anchor="end">strongest</text>
<text x="${x0}" y="60">${esc(`How strongly each region drove the finding${options.method ? ` (${options.method})` : ''}, on each map's own range.`)}</text>
<text x="${x0}" y="76">${esc(`Below ${Math.round(cutoff * 100)}% the film is left as it is. Not a probability; not comparable between maps.`)}</text>
</svg>
`;
}
