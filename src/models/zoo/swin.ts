/**
 * Swin Transformer (Liu et al. 2021) as in torchvision/models/swin_transformer.py (v1, torchvision 0.14): patch
 * embedding, stages of shifted-window attention blocks with patch merging between them, LayerNorm and a linear head
 * (swin_s and swin_b are other configs of the same builder). Stages keep channels last ([batch, height, width,
 * channels]) as torchvision's do, and declare it (layouts.ts). Windows are kept per image ([batch, windows, tokens,
 * channels]) so that the batch axis stays symbolic.
 */
import { type Value, float32, int64 } from '../../onnx/index.js';
import type { Layers } from '../layers.js';
import type { ActivationLayout } from '../layouts.js';
import type { ArchitectureGraph } from './types.js';

export interface SwinConfig {
  patchSize: number;
  embedDim: number;
  depths: number[];
  numHeads: number[];
  windowSize: number;
}

export const SWIN_T: SwinConfig = { patchSize: 4, embedDim: 96, depths: [2, 2, 6, 2], numHeads: [3, 6, 12, 24], windowSize: 7 };

const MLP_RATIO = 4;
/** What torchvision adds to attention logits between tokens from different regions of a shifted window. */
const MASKED = -100;

export function swin(config: SwinConfig) {
  return (l: Layers, image: Value, numClasses: number): ArchitectureGraph => {
    const layouts: Record<string, ActivationLayout> = {};
    const channelsLast = (v: Value) => {
      layouts[v.name] = 'NHWC';
      return v;
    };
    const { patchSize, windowSize } = config;
    let x = l.conv2d('features.0.0', image, { out: config.embedDim, kernel: patchSize, stride: patchSize, bias: true });
    x = l.b.op('Transpose', [x], { perm: [0, 2, 3, 1] }, { name: 'features.0.1' });
    x = channelsLast(l.layerNorm('features.0.2', x));
    const blocks = ['features.0'];
    config.depths.forEach((depth, stage) => {
      const path = `features.${2 * stage + 1}`;
      for (let i = 0; i < depth; i++) {
        const shift = i % 2 === 0 ? 0 : Math.floor(windowSize / 2);
        x = channelsLast(swinBlock(l, `${path}.${i}`, x, { heads: config.numHeads[stage], windowSize, shift }));
      }
      blocks.push(path);
      if (stage < config.depths.length - 1) {
        x = channelsLast(patchMerging(l, `features.${2 * stage + 2}`, x));
        blocks.push(`features.${2 * stage + 2}`);
      }
    });
    const features = channelsLast(l.layerNorm('norm', x));
    blocks[blocks.length - 1] += '|norm';
    const nchw = l.b.op('Transpose', [features], { perm: [0, 3, 1, 2] }, { name: 'permute' });
    const logits = l.linear('head', l.globalPoolFlatten(nchw, 'avgpool'), numClasses);
    blocks.push('head');
    return { features, logits, blocks, layouts };
  };
}

interface WindowOptions {
  heads: number;
  windowSize: number;
  shift: number;
}

/** Pre-norm attention and MLP, each added back; stochastic depth is the identity at inference. */
function swinBlock(l: Layers, path: string, x: Value, o: WindowOptions): Value {
  const dim = fixedDim(x, 3);
  const attended = shiftedWindowAttention(l, `${path}.attn`, l.layerNorm(`${path}.norm1`, x), o);
  x = l.b.op('Add', [x, attended], {}, { name: `${path}.add1` });
  let y = l.linear(`${path}.mlp.0`, l.layerNorm(`${path}.norm2`, x), dim * MLP_RATIO);
  y = l.linear(`${path}.mlp.3`, l.gelu(y, `${path}.mlp.1`), dim);
  return l.b.op('Add', [x, y], {}, { name: `${path}.add2` });
}

/** torchvision's shifted_window_attention on [batch, height, width, channels]. */
function shiftedWindowAttention(l: Layers, path: string, x: Value, o: WindowOptions): Value {
  const { b } = l;
  const [height, width, channels] = [1, 2, 3].map((axis) => fixedDim(x, axis));
  const ws = o.windowSize;
  // Pad to whole windows; the padded tokens take part in attention, as in torchvision.
  const padBottom = (ws - (height % ws)) % ws;
  const padRight = (ws - (width % ws)) % ws;
  if (padBottom || padRight) x = b.op('Pad', [x, b.ints([0, 0, 0, 0, 0, padBottom, padRight, 0])], {}, { name: `${path}.pad` });
  const [paddedH, paddedW] = [height + padBottom, width + padRight];
  // No shift along an axis that one window covers.
  const shiftH = ws >= paddedH ? 0 : o.shift;
  const shiftW = ws >= paddedW ? 0 : o.shift;
  x = roll(l, roll(l, x, 1, -shiftH, `${path}.roll_h`), 2, -shiftW, `${path}.roll_w`);

  const [rows, cols, tokens] = [paddedH / ws, paddedW / ws, ws * ws];
  x = b.op('Reshape', [x, b.ints([0, rows, ws, cols, ws, channels])], {}, { name: `${path}.partition` });
  x = b.op('Transpose', [x], { perm: [0, 1, 3, 2, 4, 5] }, { name: `${path}.partition_permute` });
  x = b.op('Reshape', [x, b.ints([0, rows * cols, tokens, channels])], {}, { name: `${path}.windows` });

  const headDim = channels / o.heads;
  const [q, k, v] = b.node('Split', [l.linear(`${path}.qkv`, x, 3 * channels)], { axis: -1 }, { name: `${path}.qkv_split`, outputs: 3 });
  // Each [batch, windows, tokens, channels] as [batch, windows, heads, tokens, headDim]; keys already transposed.
  const heads = (t: Value, name: string, perm: number[]) =>
    b.op('Transpose', [b.op('Reshape', [t, b.ints([0, 0, tokens, o.heads, headDim])], {}, { name: `${path}.${name}_heads` })], { perm }, { name: `${path}.${name}_permute` });
  const query = b.op('Mul', [heads(q, 'q', [0, 1, 3, 2, 4]), b.scalar(headDim ** -0.5)], {}, { name: `${path}.q_scale` });
  let attn = b.op('MatMul', [query, heads(k, 'k', [0, 1, 3, 4, 2])], {}, { name: `${path}.scores` });
  attn = b.op('Add', [attn, relativePositionBias(l, path, o.heads, ws)], {}, { name: `${path}.add_bias` });
  if (shiftH || shiftW) {
    const mask = b.constant(float32([rows * cols, 1, tokens, tokens], shiftMask(paddedH, paddedW, ws, shiftH, shiftW)), `${path}.mask`);
    attn = b.op('Add', [attn, mask], {}, { name: `${path}.add_mask` });
  }
  attn = b.op('Softmax', [attn], { axis: -1 }, { name: `${path}.softmax` });
  let y = b.op('MatMul', [attn, heads(v, 'v', [0, 1, 3, 2, 4])], {}, { name: `${path}.weighted` });
  y = b.op('Transpose', [y], { perm: [0, 1, 3, 2, 4] }, { name: `${path}.merge_heads` });
  y = b.op('Reshape', [y, b.ints([0, 0, tokens, channels])], {}, { name: `${path}.merged` });
  y = l.linear(`${path}.proj`, y, channels);

  y = b.op('Reshape', [y, b.ints([0, rows, cols, ws, ws, channels])], {}, { name: `${path}.reverse` });
  y = b.op('Transpose', [y], { perm: [0, 1, 3, 2, 4, 5] }, { name: `${path}.reverse_permute` });
  y = b.op('Reshape', [y, b.ints([0, paddedH, paddedW, channels])], {}, { name: `${path}.unpartition` });
  y = roll(l, roll(l, y, 1, shiftH, `${path}.unroll_h`), 2, shiftW, `${path}.unroll_w`);
  if (padBottom || padRight) y = b.op('Slice', [y, b.ints([0, 0]), b.ints([height, width]), b.ints([1, 2])], {}, { name: `${path}.unpad` });
  return y;
}

/** torch.roll(x, shift, axis) as two slices swapped by a Concat. */
function roll(l: Layers, x: Value, axis: number, shift: number, name: string): Value {
  const size = fixedDim(x, axis);
  const start = (((-shift) % size) + size) % size;
  if (start === 0) return x;
  const { b } = l;
  const tail = b.op('Slice', [x, b.ints([start]), b.ints([size]), b.ints([axis])], {}, { name: `${name}.tail` });
  const head = b.op('Slice', [x, b.ints([0]), b.ints([start]), b.ints([axis])], {}, { name: `${name}.head` });
  return b.op('Concat', [tail, head], { axis }, { name });
}

/** The learned bias of each relative offset within a window, gathered for every token pair: [heads, tokens, tokens]. */
function relativePositionBias(l: Layers, path: string, heads: number, ws: number): Value {
  const { b } = l;
  const table = l.param(`${path}.relative_position_bias_table`, [(2 * ws - 1) ** 2, heads], 'attn.relative_position_bias_table');
  const tokens = ws * ws;
  const index: number[] = [];
  for (let i = 0; i < tokens; i++) {
    for (let j = 0; j < tokens; j++) {
      const dy = Math.floor(i / ws) - Math.floor(j / ws) + ws - 1;
      const dx = (i % ws) - (j % ws) + ws - 1;
      index.push(dy * (2 * ws - 1) + dx);
    }
  }
  // torchvision's relative_position_index buffer, under its name: import checks a file's copy against it.
  const indexConstant = b.constant(int64([tokens * tokens], index), `${path}.relative_position_index`);
  const gathered = b.op('Gather', [table, indexConstant], { axis: 0 }, { name: `${path}.bias_gather` });
  const pairs = b.op('Reshape', [gathered, b.ints([tokens, tokens, heads])], {}, { name: `${path}.bias_pairs` });
  return b.op('Transpose', [pairs], { perm: [2, 0, 1] }, { name: `${path}.bias` });
}

/**
 * [windows, 1, tokens, tokens]: after the cyclic shift a window can hold pixels from up to four regions that were
 * not neighbours; attention between tokens of different regions is suppressed. An axis not shifted is one region.
 */
function shiftMask(height: number, width: number, ws: number, shiftH: number, shiftW: number): Float32Array {
  const region = (i: number, size: number, shift: number) => (shift === 0 ? 0 : i < size - ws ? 0 : i < size - shift ? 1 : 2);
  const [rows, cols, tokens] = [height / ws, width / ws, ws * ws];
  const mask = new Float32Array(rows * cols * tokens * tokens);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const labels = Array.from({ length: tokens }, (_, t) => 3 * region(r * ws + Math.floor(t / ws), height, shiftH) + region(c * ws + (t % ws), width, shiftW));
      const base = (r * cols + c) * tokens * tokens;
      for (let i = 0; i < tokens; i++) for (let j = 0; j < tokens; j++) if (labels[i] !== labels[j]) mask[base + i * tokens + j] = MASKED;
    }
  }
  return mask;
}

/** torchvision's PatchMerging: each 2x2 neighbourhood's features side by side (x0, x1, x2, x3), normed, halved. */
function patchMerging(l: Layers, path: string, x: Value): Value {
  const { b } = l;
  const [height, width, channels] = [1, 2, 3].map((axis) => fixedDim(x, axis));
  if (height % 2 || width % 2) x = b.op('Pad', [x, b.ints([0, 0, 0, 0, 0, height % 2, width % 2, 0])], {}, { name: `${path}.pad` });
  const [rows, cols] = [Math.ceil(height / 2), Math.ceil(width / 2)];
  // [batch, row, dy, col, dx, C] -> [batch, row, col, dx, dy, C]: torchvision's order x0 (0,0), x1 (1,0), x2 (0,1), x3 (1,1).
  x = b.op('Reshape', [x, b.ints([0, rows, 2, cols, 2, channels])], {}, { name: `${path}.neighbourhoods` });
  x = b.op('Transpose', [x], { perm: [0, 1, 3, 4, 2, 5] }, { name: `${path}.interleave` });
  x = b.op('Reshape', [x, b.ints([0, rows, cols, 4 * channels])], {}, { name: `${path}.cat` });
  return l.linear(`${path}.reduction`, l.layerNorm(`${path}.norm`, x), 2 * channels, false);
}

function fixedDim(x: Value, axis: number): number {
  const d = x.type.shape[axis];
  if (typeof d !== 'number') throw new Error(`"${x.name}" needs a fixed size on axis ${axis}, found [${x.type.shape.join(', ')}]`);
  return d;
}
