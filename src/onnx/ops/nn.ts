/** Shape rules for the neural-network ops: convolutions, pooling, batch and layer norm, Gemm and MatMul. */
import type { Dim, ValueType } from '../ir.js';
import { type InferenceContext, broadcastShapes, normalizeAxis, registerOp } from '../shape-inference.js';

const WINDOW_ATTRIBUTES = {
  auto_pad: 'string',
  dilations: 'ints',
  kernel_shape: 'ints',
  pads: 'ints',
  strides: 'ints',
} as const;

interface Window {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
}

function windowOf(ctx: InferenceContext, spatial: Dim[], kernel: number[]): Window {
  const n = spatial.length;
  if (kernel.length !== n) throw ctx.fail(`kernel_shape has ${kernel.length} dims but the input has ${n} spatial dims`);
  const strides = ctx.ints('strides', Array(n).fill(1));
  const dilations = ctx.ints('dilations', Array(n).fill(1));
  let pads = ctx.ints('pads', Array(2 * n).fill(0));
  const autoPad = ctx.string('auto_pad', 'NOTSET');
  if (autoPad === 'VALID') pads = Array(2 * n).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = Array(2 * n).fill(0);
    spatial.forEach((d, i) => {
      if (typeof d !== 'number') return;
      const out = Math.ceil(d / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - d);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + n] = total - pads[i];
    });
  } else if (autoPad !== 'NOTSET') throw ctx.fail(`auto_pad "${autoPad}" is not a valid value`);
  if (strides.length !== n || dilations.length !== n || pads.length !== 2 * n) {
    throw ctx.fail(`strides, dilations and pads must have ${n}, ${n} and ${2 * n} values`);
  }
  return { kernel, strides, dilations, pads };
}

function windowOutput(ctx: InferenceContext, spatial: Dim[], w: Window, ceilMode: boolean): Dim[] {
  return spatial.map((d, i) => {
    if (typeof d !== 'number') return d;
    const extent = (w.kernel[i] - 1) * w.dilations[i] + 1;
    const span = d + w.pads[i] + w.pads[i + spatial.length] - extent;
    if (span < 0) throw ctx.fail(`the input's spatial size ${d} (padded by ${w.pads[i]}+${w.pads[i + spatial.length]}) is smaller than the window ${extent}`);
    let out = (ceilMode ? Math.ceil(span / w.strides[i]) : Math.floor(span / w.strides[i])) + 1;
    // As in PyTorch and ONNX Runtime: a ceil-mode window may not start inside the end padding.
    if (ceilMode && (out - 1) * w.strides[i] >= d + w.pads[i]) out -= 1;
    return out;
  });
}

function requireRank(ctx: InferenceContext, t: ValueType, min: number, what: string): void {
  if (t.shape.length < min) throw ctx.fail(`${what} must have rank >= ${min}, found [${t.shape.join(', ')}]`);
}

registerOp('Conv', {
  attributes: { ...WINDOW_ATTRIBUTES, group: 'int' },
  infer(ctx) {
    const x = ctx.input(0);
    const w = ctx.input(1);
    requireRank(ctx, x, 3, 'the input');
    if (w.shape.length !== x.shape.length) throw ctx.fail(`weight [${w.shape.join(', ')}] and input [${x.shape.join(', ')}] differ in rank`);
    const group = ctx.int('group', 1);
    const channels = x.shape[1];
    const [outChannels, inPerGroup] = w.shape;
    if (typeof channels === 'number' && typeof inPerGroup === 'number' && channels !== inPerGroup * group) {
      throw ctx.fail(`input has ${channels} channels but the weight [${w.shape.join(', ')}] with group ${group} expects ${Number(inPerGroup) * group}`);
    }
    if (typeof outChannels === 'number' && outChannels % group !== 0) throw ctx.fail(`${outChannels} output channels do not split into ${group} groups`);
    const bias = ctx.inputs[2];
    if (bias && (bias.shape.length !== 1 || bias.shape[0] !== outChannels)) {
      throw ctx.fail(`bias must have shape [${outChannels}], found [${bias.shape.join(', ')}]`);
    }
    const kernel = ctx.ints('kernel_shape', w.shape.slice(2).map(Number));
    const spatial = x.shape.slice(2);
    const window = windowOf(ctx, spatial, kernel);
    return [{ dtype: x.dtype, shape: [x.shape[0], outChannels, ...windowOutput(ctx, spatial, window, false)] }];
  },
});

registerOp('ConvTranspose', {
  attributes: { ...WINDOW_ATTRIBUTES, group: 'int', output_padding: 'ints', output_shape: 'ints' },
  infer(ctx) {
    const x = ctx.input(0);
    const w = ctx.input(1);
    requireRank(ctx, x, 3, 'the input');
    const group = ctx.int('group', 1);
    if (typeof x.shape[1] === 'number' && typeof w.shape[0] === 'number' && x.shape[1] !== w.shape[0]) {
      throw ctx.fail(`input has ${x.shape[1]} channels but the weight [${w.shape.join(', ')}] expects ${w.shape[0]}`);
    }
    const outChannels = typeof w.shape[1] === 'number' ? w.shape[1] * group : '?';
    const spatial = x.shape.slice(2);
    const n = spatial.length;
    const explicit = ctx.ints('output_shape', []);
    if (explicit.length > 0) return [{ dtype: x.dtype, shape: [x.shape[0], outChannels, ...explicit.slice(-n)] }];
    const kernel = ctx.ints('kernel_shape', w.shape.slice(2).map(Number));
    const strides = ctx.ints('strides', Array(n).fill(1));
    const dilations = ctx.ints('dilations', Array(n).fill(1));
    const pads = ctx.ints('pads', Array(2 * n).fill(0));
    const outputPadding = ctx.ints('output_padding', Array(n).fill(0));
    const out = spatial.map((d, i) =>
      typeof d === 'number' ? strides[i] * (d - 1) + outputPadding[i] + (kernel[i] - 1) * dilations[i] + 1 - pads[i] - pads[i + n] : d,
    );
    return [{ dtype: x.dtype, shape: [x.shape[0], outChannels, ...out] }];
  },
});

registerOp('MaxPool', {
  attributes: { ...WINDOW_ATTRIBUTES, ceil_mode: 'int', storage_order: 'int' },
  infer(ctx) {
    const x = ctx.input(0);
    requireRank(ctx, x, 3, 'the input');
    const spatial = x.shape.slice(2);
    const window = windowOf(ctx, spatial, ctx.ints('kernel_shape', []));
    const shape = [x.shape[0], x.shape[1], ...windowOutput(ctx, spatial, window, ctx.int('ceil_mode', 0) === 1)];
    return [{ dtype: x.dtype, shape }, { dtype: 'int64', shape: [...shape] }];
  },
});

registerOp('AveragePool', {
  attributes: { ...WINDOW_ATTRIBUTES, ceil_mode: 'int', count_include_pad: 'int' },
  infer(ctx) {
    const x = ctx.input(0);
    requireRank(ctx, x, 3, 'the input');
    const spatial = x.shape.slice(2);
    const window = windowOf(ctx, spatial, ctx.ints('kernel_shape', []));
    return [{ dtype: x.dtype, shape: [x.shape[0], x.shape[1], ...windowOutput(ctx, spatial, window, ctx.int('ceil_mode', 0) === 1)] }];
  },
});

for (const op of ['GlobalAveragePool', 'GlobalMaxPool']) {
  registerOp(op, {
    attributes: {},
    infer(ctx) {
      const x = ctx.input(0);
      requireRank(ctx, x, 3, 'the input');
      return [{ dtype: x.dtype, shape: [x.shape[0], x.shape[1], ...x.shape.slice(2).map(() => 1)] }];
    },
  });
}

registerOp('BatchNormalization', {
  attributes: { epsilon: 'float', momentum: 'float', training_mode: 'int' },
  infer(ctx) {
    const x = ctx.input(0);
    requireRank(ctx, x, 2, 'the input');
    const channels = x.shape[1];
    for (const [i, what] of ['scale', 'bias', 'mean', 'variance'].entries()) {
      const p = ctx.input(i + 1);
      if (p.shape.length !== 1 || (typeof channels === 'number' && p.shape[0] !== channels)) {
        throw ctx.fail(`${what} must have shape [${channels}], found [${p.shape.join(', ')}]`);
      }
    }
    const y: ValueType = { dtype: x.dtype, shape: [...x.shape] };
    if (ctx.int('training_mode', 0) !== 1) return [y];
    const stat: ValueType = { dtype: x.dtype, shape: [channels] };
    return [y, stat, { ...stat }];
  },
});

// Outputs 1 and 2 (mean, inverse standard deviation) keep the normalised axes as 1s.
registerOp('LayerNormalization', {
  attributes: { axis: 'int', epsilon: 'float', stash_type: 'int' },
  infer(ctx) {
    const x = ctx.input(0);
    const rank = x.shape.length;
    const axis = normalizeAxis(ctx, ctx.int('axis', -1), rank);
    const stat: ValueType = { dtype: x.dtype, shape: x.shape.map((d, i) => (i < axis ? d : 1)) };
    return [{ dtype: x.dtype, shape: [...x.shape] }, stat, { ...stat, shape: [...stat.shape] }];
  },
});

registerOp('Gemm', {
  attributes: { alpha: 'float', beta: 'float', transA: 'int', transB: 'int' },
  infer(ctx) {
    const a = ctx.input(0);
    const b = ctx.input(1);
    if (a.shape.length !== 2 || b.shape.length !== 2) throw ctx.fail(`A and B must be matrices, found [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
    const [m, ka] = ctx.int('transA', 0) ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
    const [kb, n] = ctx.int('transB', 0) ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
    if (typeof ka === 'number' && typeof kb === 'number' && ka !== kb) {
      throw ctx.fail(`inner dimensions differ: A gives ${ka}, B gives ${kb} (A [${a.shape.join(', ')}], B [${b.shape.join(', ')}])`);
    }
    const c = ctx.inputs[2];
    if (c) broadcastShapes(ctx, [[m, n], c.shape]);
    return [{ dtype: a.dtype, shape: [m, n] }];
  },
});

registerOp('MatMul', {
  attributes: {},
  infer(ctx) {
    const a = ctx.input(0).shape;
    const b = ctx.input(1).shape;
    if (a.length === 0 || b.length === 0) throw ctx.fail('inputs must have rank >= 1');
    const a2 = a.length === 1 ? [1, a[0]] : a;
    const b2 = b.length === 1 ? [b[0], 1] : b;
    const ka = a2[a2.length - 1];
    const kb = b2[b2.length - 2];
    if (typeof ka === 'number' && typeof kb === 'number' && ka !== kb) {
      throw ctx.fail(`inner dimensions differ: [${a.join(', ')}] x [${b.join(', ')}]`);
    }
    const batch = broadcastShapes(ctx, [a2.slice(0, -2), b2.slice(0, -2)]);
    const shape: Dim[] = [...batch];
    if (a.length > 1) shape.push(a2[a2.length - 2]);
    if (b.length > 1) shape.push(b2[b2.length - 1]);
    return [{ dtype: ctx.input(0).dtype, shape }];
  },
});
