/** Gradient rules of ops that move data around, and of the sum and mean reductions. */
import { type Value, attributeInt, attributeInts, attributeString } from '../../onnx/index.js';
import { type GradientContext, registerGradient } from '../registry.js';
import { applyChannelAffine, constantValues, reshapeLike, staticShape, staticTail, unbroadcast } from './helpers.js';

const reshapeBack = (ctx: GradientContext) => {
  const x = ctx.input(0);
  if (ctx.replicas === 1) return [reshapeLike(ctx, ctx.grad(), x)];
  // Replicated gradients keep the (stacked) batch first: the input's other dimensions must be known.
  return [ctx.op('Reshape', [ctx.grad(), ctx.b.ints([-1, ...staticTail(ctx, x)])])];
};
for (const op of ['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze']) registerGradient(op, reshapeBack, { replicas: true });

// Replicated cotangents are stacked along the batch axis, which a transpose that keeps axis 0 in place leaves alone.
registerGradient(
  'Transpose',
  (ctx) => {
    const rank = ctx.input(0).type.shape.length;
    const perm = attributeInts(ctx.node, 'perm', Array.from({ length: rank }, (_, i) => rank - 1 - i));
    if (ctx.replicas > 1 && perm[0] !== 0) throw ctx.fail('a transpose that moves the batch axis cannot take several cotangents in one backward pass');
    const inverse = Array<number>(rank);
    perm.forEach((p, i) => (inverse[p] = i));
    return [ctx.op('Transpose', [ctx.grad()], { perm: inverse })];
  },
  { replicas: true },
);

registerGradient('Expand', (ctx) => [unbroadcast(ctx, ctx.grad(), ctx.input(0))]);

function axisOf(ctx: GradientContext, v: Value): number {
  const rank = v.type.shape.length;
  const axis = attributeInt(ctx.node, 'axis', 0);
  return axis < 0 ? axis + rank : axis;
}

/**
 * Concat: the gradient is split back into the inputs' extents along the axis. A per-channel affine part (from a
 * training-mode BatchNorm of the concatenation) is split as vectors and passed on, so each input collects such
 * terms from every layer that normalises it and applies their sum once.
 */
registerGradient('Concat', (ctx) => {
  const out = ctx.outputs[0] as Value;
  const axis = axisOf(ctx, out);
  const sizes = ctx.inputs.map((x, i) => {
    const d = x?.type.shape[axis];
    if (typeof d !== 'number') throw ctx.fail(`input ${i} needs a known size along axis ${axis}`);
    return d;
  });
  let dy = ctx.grads[0];
  let affine = ctx.affines[0];
  if (affine && axis !== 1) {
    const applied = applyChannelAffine(ctx.b, out, affine, `${ctx.node.name}.grad.affine`);
    dy = dy ? ctx.op('Add', [dy, applied]) : applied;
    affine = undefined;
  }
  const pieces = dy ? splitAlong(ctx, dy, axis, sizes) : sizes.map(() => undefined);
  if (!affine) return pieces;
  const [slopes, offsets] = [affine.slope, affine.offset].map((v) => (sizes.length === 1 ? [v] : ctx.ops('Split', [v, ctx.b.ints(sizes)], { axis: 0 }, sizes.length)));
  return pieces.map((tensor, i) => (ctx.wants[i] ? { tensor, slope: slopes[i], offset: offsets[i] } : undefined));
}, { replicas: true, affine: true });

function splitAlong(ctx: GradientContext, dy: Value, axis: number, sizes: number[]): (Value | undefined)[] {
  if (sizes.length === 1) return [dy];
  const wanted = ctx.wants.filter(Boolean).length;
  if (wanted * 2 >= sizes.length) return ctx.ops('Split', [dy, ctx.b.ints(sizes)], { axis }, sizes.length).map((g, i) => (ctx.wants[i] ? g : undefined));
  let start = 0;
  return sizes.map((size, i) => {
    const g = ctx.wants[i] ? ctx.op('Slice', [dy, ctx.b.ints([start]), ctx.b.ints([start + size]), ctx.b.ints([axis])]) : undefined;
    start += size;
    return g;
  });
}

/** Split: the outputs' gradients are concatenated back, zeros standing in for outputs without one. */
registerGradient('Split', (ctx) => {
  const x = ctx.input(0);
  const axis = axisOf(ctx, x);
  const parts = ctx.outputs.map((out, i) => {
    const g = ctx.grads[i];
    if (g) return g;
    if (!out) throw ctx.fail(`output ${i} is missing`);
    return ctx.op('ConstantOfShape', [ctx.op('Shape', [out])], { value: { kind: 'tensor', value: { dtype: 'float32', dims: [1], data: new Float32Array(1) } } });
  });
  return [parts.length === 1 ? parts[0] : ctx.op('Concat', parts, { axis })];
});

/** Slice with steps of 1: the gradient is padded with zeros back to the input's extent. */
registerGradient('Slice', (ctx) => {
  const x = ctx.input(0);
  const shape = x.type.shape;
  const rank = shape.length;
  const starts = constantValues(ctx, 1);
  const ends = constantValues(ctx, 2);
  if (!starts || !ends) throw ctx.fail('starts and ends must be constants');
  const axes = constantValues(ctx, 3) ?? starts.map((_, i) => i);
  const steps = constantValues(ctx, 4) ?? starts.map(() => 1);
  if (steps.some((s) => s !== 1)) throw ctx.fail('only slices with step 1 are differentiable');
  const pads = Array<number>(2 * rank).fill(0);
  axes.forEach((rawAxis, i) => {
    const axis = rawAxis < 0 ? rawAxis + rank : rawAxis;
    const d = shape[axis];
    if (typeof d !== 'number') throw ctx.fail(`axis ${axis} needs a known size`);
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    const start = clamp(starts[i]);
    const end = Math.max(clamp(ends[i]), start);
    pads[axis] = start;
    pads[axis + rank] = d - end;
  });
  return [ctx.op('Pad', [ctx.grad(), ctx.b.ints(pads)])];
});

/** Pad (constant mode, non-negative pads): the gradient is the unpadded window. */
registerGradient('Pad', (ctx) => {
  if (attributeString(ctx.node, 'mode', 'constant') !== 'constant') throw ctx.fail('only constant padding is differentiable');
  const x = ctx.input(0);
  const rank = x.type.shape.length;
  const pads = constantValues(ctx, 1);
  if (!pads) throw ctx.fail('pads must be a constant');
  if (pads.some((p) => p < 0)) throw ctx.fail('negative pads (cropping) are not differentiable');
  if (ctx.inputs[3]) throw ctx.fail('padding only some axes is not supported by the gradient');
  const dims = staticShape(ctx, ctx.grad(), 'the padded output');
  const axes = Array.from({ length: rank }, (_, i) => i).filter((i) => pads[i] !== 0 || pads[i + rank] !== 0);
  if (axes.length === 0) return [ctx.grad()];
  return [
    ctx.op('Slice', [
      ctx.grad(),
      ctx.b.ints(axes.map((a) => pads[a])),
      ctx.b.ints(axes.map((a) => dims[a] - pads[a + rank])),
      ctx.b.ints(axes),
    ]),
  ];
});

/** ReduceSum / ReduceMean: the gradient is spread back over the reduced axes (divided by their size for a mean). */
function reductionGradient(ctx: GradientContext, axesGiven: number[] | undefined, mean: boolean): Value {
  const x = ctx.input(0);
  const shape = x.type.shape;
  const rank = shape.length;
  const noopEmpty = attributeInt(ctx.node, 'noop_with_empty_axes', 0) === 1;
  if ((!axesGiven || axesGiven.length === 0) && noopEmpty) return ctx.grad();
  const axes = !axesGiven || axesGiven.length === 0 ? shape.map((_, i) => i) : axesGiven.map((a) => (a < 0 ? a + rank : a));
  let g = ctx.grad();
  if (attributeInt(ctx.node, 'keepdims', 1) === 0) g = ctx.op('Unsqueeze', [g, ctx.b.ints([...axes].sort((p, q) => p - q))]);
  const reducedDims = axes.map((a) => shape[a]);
  if (reducedDims.every((d): d is number => typeof d === 'number')) {
    if (mean) g = ctx.op('Mul', [g, ctx.b.scalar(1 / reducedDims.reduce((p, q) => p * q, 1))]);
    const target = shape.map((d, i) => (axes.includes(i) ? (d as number) : 1));
    return ctx.op('Expand', [g, ctx.b.ints(target)]);
  }
  if (mean) {
    const count = ctx.op('Div', [ctx.op('Cast', [ctx.op('Size', [x])], { to: 1 }), ctx.op('Cast', [ctx.op('Size', [g])], { to: 1 })]);
    g = ctx.op('Div', [g, count]);
  }
  return ctx.op('Expand', [g, ctx.op('Shape', [x])]);
}

registerGradient('ReduceSum', (ctx) => [reductionGradient(ctx, ctx.inputs[1] ? constantValues(ctx, 1) ?? fail(ctx) : undefined, false)]);
registerGradient('ReduceMean', (ctx) => [reductionGradient(ctx, attributeInts(ctx.node, 'axes'), true)]);

function fail(ctx: GradientContext): never {
  throw ctx.fail('axes must be a constant');
}
