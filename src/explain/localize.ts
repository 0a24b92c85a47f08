/**
 * How well a map localises a finding, against boxes drawn by radiologists (NIH's BBox_List_2017.csv).
 *
 * Protocol (Wang et al., CVPR 2017, section 3.2 and 4): the map, resampled over the whole image, is scaled to
 * [0, 1] by its maximum (negative evidence dropped) and thresholded at each box level (default theirs: 60 and 180
 * of 255); every isolated region (8-connected) of each binary map gives a predicted box. A ground-truth box is
 * localised at T when some predicted box has IoU > T (intersection over union) or, separately, IoBB > T
 * (intersection over the predicted box's area); a predicted box that localises no ground-truth box of that finding
 * at T is a false positive (AFP: their mean per image). Pointing game (Zhang et al., ECCV 2016): a hit when the
 * map's maximum lies inside a ground-truth box of the finding (grown by a tolerance). Pure.
 */
import { type Geometry, heatmapToSource } from '../imaging/geometry.js';
import type { GridMap } from './types.js';

/** An axis-aligned box [x, x + width) x [y, y + height) in some pixel space. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface LocalizationOptions {
  /** Cells of the evaluation grid along each side of the image; default 256. */
  grid?: number;
  /** Fractions of the map's maximum whose isolated regions become predicted boxes; default 60/255 and 180/255. */
  boxLevels?: readonly number[];
  /**
   * 'regions' (default, Wang et al.): a box for every isolated region at each level; read the accuracies with
   * the average false positives, since many small regions (pixel-level maps) inflate IoBB. 'largest': only the
   * largest region at each level (one box per level).
   */
  boxRule?: 'regions' | 'largest';
  /** Default 0.1, 0.25, 0.5. */
  iouThresholds?: readonly number[];
  /** Default 0.1, 0.25, 0.5, 0.75, 0.9 (Wang et al.'s Table 4). */
  iobbThresholds?: readonly number[];
  /** Pointing game: ground-truth boxes grow by this fraction of the image's side on each edge; default 0. */
  pointingTolerance?: number;
}

export const DEFAULT_LOCALIZATION: Required<LocalizationOptions> = {
  grid: 256,
  boxLevels: [60 / 255, 180 / 255],
  boxRule: 'regions',
  iouThresholds: [0.1, 0.25, 0.5],
  iobbThresholds: [0.1, 0.25, 0.5, 0.75, 0.9],
  pointingTolerance: 0,
};

export function localizationOptions(options: LocalizationOptions = {}): Required<LocalizationOptions> {
  const merged = { ...DEFAULT_LOCALIZATION, ...options };
  if (!Number.isInteger(merged.grid) || merged.grid < 2 || merged.grid > 4096) throw new Error(`localisation grid must be a whole number in 2..4096, got ${merged.grid}`);
  for (const [name, list] of [['box levels', merged.boxLevels], ['IoU thresholds', merged.iouThresholds], ['IoBB thresholds', merged.iobbThresholds]] as const) {
    if (list.length === 0 || !list.every((t) => t > 0 && t < 1)) throw new Error(`${name} must be numbers strictly between 0 and 1, got ${JSON.stringify(list)}`);
  }
  if (merged.boxRule !== 'regions' && merged.boxRule !== 'largest') throw new Error(`box rule must be "regions" or "largest", got "${String(merged.boxRule)}"`);
  if (!(merged.pointingTolerance >= 0 && merged.pointingTolerance < 0.5)) throw new Error(`pointing tolerance must be in [0, 0.5), got ${merged.pointingTolerance}`);
  return merged;
}

/** A map over the model input drawn onto a grid x grid raster over the whole original image. */
export function mapOnImageGrid(map: GridMap, geometry: Geometry, grid: number): Float32Array {
  // The same geometry with the source measured in grid cells instead of pixels.
  const fx = geometry.sourceWidth / grid;
  const fy = geometry.sourceHeight / grid;
  const onGrid: Geometry = { ...geometry, sourceWidth: grid, sourceHeight: grid, scaleX: geometry.scaleX * fx, scaleY: geometry.scaleY * fy };
  return heatmapToSource(map.data, map.width, map.height, onGrid);
}

/** A region's bounding box and how many cells it has. */
export interface Region extends Rect {
  cells: number;
}

/** Bounding boxes of the 8-connected regions where `map / max(map) >= level`, in grid cells. */
export function regionBoxes(map: Float32Array, width: number, height: number, level: number): Region[] {
  let max = 0;
  for (let i = 0; i < map.length; i++) if (map[i] > max) max = map[i];
  if (!(max > 0)) return [];
  const cut = level * max;
  // 1 = above the level and not yet visited; a flat stack of cell indices (flood fill).
  const open = new Uint8Array(width * height);
  for (let i = 0; i < map.length; i++) open[i] = map[i] >= cut ? 1 : 0;
  const stack = new Int32Array(width * height);
  const boxes: Region[] = [];
  for (let start = 0; start < open.length; start++) {
    if (!open[start]) continue;
    let cells = 0;
    let x0 = width;
    let y0 = height;
    let x1 = -1;
    let y1 = -1;
    let top = 0;
    open[start] = 0;
    stack[top++] = start;
    while (top > 0) {
      const i = stack[--top];
      cells++;
      const y = (i / width) | 0;
      const x = i - y * width;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      const ya = y > 0 ? y - 1 : 0;
      const yb = y < height - 1 ? y + 1 : y;
      const xa = x > 0 ? x - 1 : 0;
      const xb = x < width - 1 ? x + 1 : x;
      for (let ny = ya; ny <= yb; ny++) {
        for (let j = ny * width + xa, end = ny * width + xb; j <= end; j++) {
          if (open[j]) {
            open[j] = 0;
            stack[top++] = j;
          }
        }
      }
    }
    boxes.push({ x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1, cells });
  }
  return boxes;
}

function intersection(a: Rect, b: Rect): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

export function iou(a: Rect, b: Rect): number {
  const i = intersection(a, b);
  return i === 0 ? 0 : i / (a.width * a.height + b.width * b.height - i);
}

/** Intersection over the predicted box's area. */
export function iobb(predicted: Rect, truth: Rect): number {
  const i = intersection(predicted, truth);
  return i === 0 ? 0 : i / (predicted.width * predicted.height);
}

/** The cell of the map's maximum (the first one on ties), as its centre in grid coordinates. */
export function peak(map: Float32Array, width: number): { x: number; y: number } {
  let best = 0;
  for (let i = 1; i < map.length; i++) if (map[i] > map[best]) best = i;
  return { x: (best % width) + 0.5, y: Math.floor(best / width) + 0.5 };
}

/** What one map scores for one (image, finding): per ground-truth box the best IoU and IoBB of any predicted box. */
export interface CaseScore {
  predicted: Rect[];
  peak: { x: number; y: number };
  pointing: boolean;
  /** Per ground-truth box. */
  bestIou: number[];
  bestIobb: number[];
  /** Per threshold (same order as the options): predicted boxes that localise no ground-truth box. */
  falsePositivesIou: number[];
  falsePositivesIobb: number[];
}

/** Scores a map on the evaluation grid (grid x grid cells over the image) against boxes in grid cells. */
export function scoreCase(map: Float32Array, grid: number, truth: readonly Rect[], options: Required<LocalizationOptions>): CaseScore {
  if (truth.length === 0) throw new Error('a localisation case needs at least one ground-truth box');
  const predicted: Rect[] = options.boxLevels.flatMap((level) => {
    const regions = regionBoxes(map, grid, grid, level);
    if (options.boxRule === 'regions' || regions.length <= 1) return regions.map(({ x, y, width, height }) => ({ x, y, width, height }));
    const { x, y, width, height } = regions.reduce((a, b) => (b.cells > a.cells ? b : a));
    return [{ x, y, width, height }];
  });
  const top = peak(map, grid);
  const grow = options.pointingTolerance * grid;
  const pointing = truth.some((b) => top.x >= b.x - grow && top.x <= b.x + b.width + grow && top.y >= b.y - grow && top.y <= b.y + b.height + grow);
  const falsePositives = (measure: (p: Rect, t: Rect) => number, thresholds: readonly number[]) =>
    thresholds.map((t) => predicted.filter((p) => !truth.some((b) => measure(p, b) > t)).length);
  return {
    predicted,
    peak: top,
    pointing,
    bestIou: truth.map((b) => Math.max(0, ...predicted.map((p) => iou(p, b)))),
    bestIobb: truth.map((b) => Math.max(0, ...predicted.map((p) => iobb(p, b)))),
    falsePositivesIou: falsePositives(iou, options.iouThresholds),
    falsePositivesIobb: falsePositives(iobb, options.iobbThresholds),
  };
}

/** Accuracies of a set of cases: per threshold T, the share of ground-truth boxes with a measure above T. */
export interface LocalizationScores {
  /** (image, finding) pairs. */
  cases: number;
  boxes: number;
  /** Share of cases whose map peaks inside a box. */
  pointing: number;
  /** Threshold (as text, e.g. "0.25") -> accuracy. */
  iou: Record<string, number>;
  iobb: Record<string, number>;
  /** Threshold -> average false positives per case. */
  afpIou: Record<string, number>;
  afpIobb: Record<string, number>;
}

export function summarize(scores: readonly CaseScore[], options: Required<LocalizationOptions>): LocalizationScores {
  const boxes = scores.reduce((n, s) => n + s.bestIou.length, 0);
  const share = (count: number, of: number) => (of === 0 ? Number.NaN : count / of);
  const accuracy = (best: (s: CaseScore) => number[], thresholds: readonly number[]) =>
    Object.fromEntries(thresholds.map((t) => [String(t), share(scores.reduce((n, s) => n + best(s).filter((v) => v > t).length, 0), boxes)]));
  const afp = (fp: (s: CaseScore) => number[], thresholds: readonly number[]) =>
    Object.fromEntries(thresholds.map((t, k) => [String(t), share(scores.reduce((n, s) => n + fp(s)[k], 0), scores.length)]));
  return {
    cases: scores.length,
    boxes,
    pointing: share(scores.filter((s) => s.pointing).length, scores.length),
    iou: accuracy((s) => s.bestIou, options.iouThresholds),
    iobb: accuracy((s) => s.bestIobb, options.iobbThresholds),
    afpIou: afp((s) => s.falsePositivesIou, options.iouThresholds),
    afpIobb: afp((s) => s.falsePositivesIobb, options.iobbThresholds),
  };
}

/** A ground-truth box given in some pixel space (NIH's: 1024 x 1024) on the evaluation grid. */
export function boxOnGrid(box: Rect & { space: { width: number; height: number } }, grid: number): Rect {
  const sx = grid / box.space.width;
  const sy = grid / box.space.height;
  return { x: box.x * sx, y: box.y * sy, width: box.width * sx, height: box.height * sy };
}
