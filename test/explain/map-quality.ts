/** How readable a map is on the film: the share drawn above the overlay's cut-off and how spread its mass is. */
import assert from 'node:assert/strict';
import type { Explanation, GridMap } from '../../src/explain/index.js';
import { DEFAULT_CUTOFF, heatmapToSource, normalizeMap } from '../../src/imaging/index.js';

/** Bounds a readable map keeps: neither speckle nor a tint over the whole film. */
export const COVERAGE = [0.05, 0.95] as const;
export const ENTROPY = [0.5, 0.995] as const;

/** A method's map on the film's pixel grid, scaled over its range (what the overlay colours). */
export function levelsOnFilm(map: GridMap, explanation: Explanation, width: number, height: number): Float32Array {
  assert.deepEqual([explanation.geometry.sourceWidth, explanation.geometry.sourceHeight], [width, height]);
  return normalizeMap(heatmapToSource(map.data, map.width, map.height, explanation.geometry));
}

/** Share of the film drawn (level at or above the cut-off). */
export function coverage(levels: Float32Array): number {
  let drawn = 0;
  for (const v of levels) if (v >= DEFAULT_CUTOFF) drawn++;
  return drawn / levels.length;
}

/**
 * Shannon entropy of the levels pooled onto a 32 x 32 grid and taken as a distribution over the cells, divided by
 * its maximum log(1024): near 0 for a single spot, 1 for a uniform tint.
 */
export function spatialEntropy(levels: Float32Array, width: number, height: number): number {
  const grid = 32;
  const cells = new Float64Array(grid * grid);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) cells[Math.floor((y * grid) / height) * grid + Math.floor((x * grid) / width)] += levels[y * width + x];
  const total = cells.reduce((a, b) => a + b, 0);
  let h = 0;
  for (const c of cells) if (c > 0) h -= (c / total) * Math.log(c / total);
  return h / Math.log(grid * grid);
}
