/**
 * What attention rollout and Chefer et al.'s relevance share on a Swin Transformer, whose attention is windowed:
 * placing each window's token pairs on the stage's token grid (through the block's padding and cyclic shift),
 * and rolling per-block token-mixing matrices out across blocks and patch merges down to the first stage's grid.
 * See README.md ("Attention rollout and Chefer et al. on Swin"). Pure.
 */
import type { AttentionBlock } from './types.js';

export type WindowGeometry = Pick<AttentionBlock, 'height' | 'width' | 'windowSize' | 'shift'>;

/**
 * For window w and its token t (torchvision's window_partition order), the index y * width + x of the grid token
 * it holds, or -1 for a padding token: the rolled grid's (row, col) come from (y + shift) mod the padded size.
 */
export function windowTokens({ height, width, windowSize: ws, shift: [shiftH, shiftW] }: WindowGeometry): Int32Array {
  const [paddedH, paddedW] = [Math.ceil(height / ws) * ws, Math.ceil(width / ws) * ws];
  const [rows, cols, tokens] = [paddedH / ws, paddedW / ws, ws * ws];
  const out = new Int32Array(rows * cols * tokens);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      for (let t = 0; t < tokens; t++) {
        const y = (r * ws + Math.floor(t / ws) + shiftH) % paddedH;
        const x = (c * ws + (t % ws) + shiftW) % paddedW;
        out[(r * cols + c) * tokens + t] = y < height && x < width ? y * width + x : -1;
      }
    }
  }
  return out;
}

/**
 * One block's token mixing, head-averaged per window: [windows, tokens, tokens] from per-head values
 * [windows, heads, tokens, tokens] through `perHead` (the attention itself for rollout, relu(gradient x attention)
 * for Chefer et al.).
 */
export function headMean(heads: number, windows: number, tokens: number, perHead: (index: number) => number): Float64Array {
  const pair = tokens * tokens;
  const out = new Float64Array(windows * pair);
  for (let w = 0; w < windows; w++) {
    for (let h = 0; h < heads; h++) {
      const base = (w * heads + h) * pair;
      for (let i = 0; i < pair; i++) out[w * pair + i] += perHead(base + i) / heads;
    }
  }
  return out;
}

/** A block's token-mixing matrix M = identity x self + window matrices x mixed (rollout: 0.5, 0.5; Chefer: 1, 1). */
export interface BlockMixing {
  geometry: WindowGeometry;
  /** [windows, tokens, tokens], row = the attending token. */
  mixed: Float64Array;
  self: number;
  mixedWeight: number;
}

/**
 * The mean over the last grid's tokens (what the classifier pools) of the rolled-out relevance R = M_L ... M_1,
 * with a patch merge (each token the mean of its 2x2 neighbourhood; padded neighbours carry nothing) wherever the
 * grid halves: propagated as a row vector from the last block back, [height * width] of the first block's grid.
 * Attention to padding tokens carries nothing back (they are zeros, not image content).
 */
export function rollOut(blocks: readonly BlockMixing[]): { width: number; height: number; data: Float64Array } {
  if (blocks.length === 0) throw new Error('no attention blocks to roll out');
  const last = blocks.at(-1)!.geometry;
  let grid = { height: last.height, width: last.width };
  let u: Float64Array = new Float64Array(grid.height * grid.width).fill(1 / (grid.height * grid.width));
  for (let k = blocks.length - 1; k >= 0; k--) {
    const { geometry, mixed, self, mixedWeight } = blocks[k];
    if (geometry.height !== grid.height || geometry.width !== grid.width) {
      if (Math.ceil(geometry.height / 2) !== grid.height || Math.ceil(geometry.width / 2) !== grid.width) {
        throw new Error(`attention blocks: a ${geometry.height}x${geometry.width} grid cannot be patch-merged into ${grid.height}x${grid.width}`);
      }
      u = unmerged(u, grid, geometry);
      grid = { height: geometry.height, width: geometry.width };
    }
    const tokens = geometry.windowSize ** 2;
    const place = windowTokens(geometry);
    const next = u.map((v) => v * self);
    for (let w = 0; w < place.length / tokens; w++) {
      for (let i = 0; i < tokens; i++) {
        const from = place[w * tokens + i];
        if (from < 0 || u[from] === 0) continue;
        const weight = u[from] * mixedWeight;
        const row = (w * tokens + i) * tokens;
        for (let j = 0; j < tokens; j++) {
          const to = place[w * tokens + j];
          if (to >= 0) next[to] += weight * mixed[row + j];
        }
      }
    }
    u = next;
  }
  return { ...grid, data: u };
}

/** A merged grid's row vector back onto the grid before the merge: each token's share to its 2x2 neighbourhood. */
function unmerged(u: Float64Array, merged: { height: number; width: number }, fine: { height: number; width: number }): Float64Array {
  const out = new Float64Array(fine.height * fine.width);
  for (let y = 0; y < fine.height; y++) {
    for (let x = 0; x < fine.width; x++) out[y * fine.width + x] = u[(y >> 1) * merged.width + (x >> 1)] / 4;
  }
  return out;
}
