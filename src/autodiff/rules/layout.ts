/** Gradient rules of ops that move data around, and of the sum and mean reductions. */
import { type Value, attributeInt, attributeInts, attributeString } from '../../onnx/index.js';
import { type GradientContext, registerGradient } from '../registry.js';
import { applyChannelAffine, constantValues, reshapeLike, staticTail, unbroadcast } from './helpers.js';

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

/** Split: the outputs' gradients are concatenated back, zeros (one copy per replica) standing in for outputs without one. */
registerGradient('Split', (ctx) => {
  const x = ctx.input(0);
  const axis = axisOf(ctx, x);
  if (ctx.replicas > 1 && axis === 0) throw ctx.fail('replicated gradients need the batch axis left unsplit');
  const parts = ctx.outputs.map((out, i) => {
    const g = ctx.grads[i];
    if (g) return g;
    if (!out) throw ctx.fail(`output ${i} is missing`);
    let shape = ctx.op('Shape', [out]);
    if (ctx.replicas > 1) shape = ctx.op('Mul', [shape, ctx.b.ints([ctx.replicas, ...Array<number>(out.type.shape.length - 1).fill(1)])]);
    return ctx.op('ConstantOfShape', [shape], { value: { kind: 'tensor', value: { dtype: 'float32', dims: [1], data: new Float32Array(1) } } });
  });
  return [parts.length === 1 ? parts[0] : ctx.op('Concat', parts, { axis })];
}, { replicas: true });

/**
 * Slice: the gradient is the upstream gradient put back at the positions the slice read, zeros elsewhere. Along an
 * axis read every s-th position (s > 1), each upstream entry is followed by s - 1 zeros first; a negative step reads
 * the positions in descending order, so its gradient is reversed first and read as the ascending slice.
 */
registerGradient('Slice', (ctx) => {
  const x = ctx.input(0);
  const shape = x.type.shape;
  const rank = shape.length;
  const starts = constantValues(ctx, 1);
  const ends = constantValues(ctx, 2);
  if (!starts || !ends) throw ctx.fail('starts and ends must be constants');
  const [givenAxes, givenSteps] = [constantValues(ctx, 3), constantValues(ctx, 4)];
  if ((ctx.inputs[3] && !givenAxes) || (ctx.inputs[4] && !givenSteps)) throw ctx.fail('axes and steps must be constants');
  const axes = givenAxes ?? starts.map((_, i) => i);
  const steps = givenSteps ?? starts.map(() => 1);
  // Replicated gradients are stacked along axis 0, which must then be left whole.
  if (ctx.replicas > 1 && axes.some((a) => a === 0 || a === -rank)) throw ctx.fail('replicated gradients need the batch axis left unsliced');
  let g = ctx.grad();
  const pads = Array<number>(2 * rank).fill(0);
  axes.forEach((rawAxis, i) => {
    const axis = rawAxis < 0 ? rawAxis + rank : rawAxis;
    const d = shape[axis];
    if (typeof d !== 'number') throw ctx.fail(`axis ${axis} needs a known size`);
    if (steps[i] === 0) throw ctx.fail('a slice step of 0');
    const { first, count, step } = slicedPositions(starts[i], ends[i], steps[i], d);
    if (count === 0) throw ctx.fail(`the slice along axis ${axis} is empty`);
    if (step < 0) g = ctx.op('Slice', [g, ctx.b.ints([-1]), ctx.b.ints([Number.MIN_SAFE_INTEGER]), ctx.b.ints([axis]), ctx.b.ints([-1])]);
    const stride = Math.abs(step);
    const lowest = step < 0 ? first + (count - 1) * step : first;
    if (stride > 1) g = interleaveZeros(ctx, g, axis, count, stride);
    pads[axis] = lowest;
    pads[axis + rank] = d - lowest - (count - 1) * stride - 1;
  });
  return [pads.every((p) => p === 0) ? g : ctx.op('Pad', [g, ctx.b.ints(pads)])];
}, { replicas: true });

/** The positions an ONNX Slice reads along an axis of size d: first, first + step, ... (count of them). */
function slicedPositions(start: number, end: number, step: number, d: number): { first: number; count: number; step: number } {
  const resolve = (v: number) => (v < 0 ? v + d : v);
  const clamp = (v: number, low: number, high: number) => Math.min(Math.max(v, low), high);
  const first = step > 0 ? clamp(resolve(start), 0, d) : clamp(resolve(start), 0, d - 1);
  const last = step > 0 ? clamp(resolve(end), 0, d) : clamp(resolve(end), -1, d - 1);
  return { first, count: Math.max(0, Math.ceil((last - first) / step)), step };
}

/** g with stride - 1 zeros after each of its `count` entries along axis, the trailing zeros dropped. */
function interleaveZeros(ctx: GradientContext, g: Value, axis: number, count: number, stride: number): Value {
  const rank = g.type.shape.length;
  const widened = ctx.op('Unsqueeze', [g, ctx.b.ints([axis + 1])]);
  const padded = ctx.op('Pad', [widened, ctx.b.ints(Array.from({ length: 2 * (rank + 1) }, (_, i) => (i === rank + 1 + axis + 1 ? stride - 1 : 0)))]);
  // Leading dims copied (0); after the axis, one unknown dim may stand as -1.
  const tail = g.type.shape.slice(axis + 1).map((d) => (typeof d === 'number' ? d : -1));
  if (tail.filter((d) => d === -1).length > 1) throw ctx.fail('at most one unknown dimension may follow a strided axis');
  const merged = ctx.op('Reshape', [padded, ctx.b.ints([...Array<number>(axis).fill(0), count * stride, ...tail])]);
  return ctx.op('Slice', [merged, ctx.b.ints([0]), ctx.b.ints([(count - 1) * stride + 1]), ctx.b.ints([axis])]);
}

/** Pad (constant mode, non-negative pads): the gradient is the unpadded window. */
registerGradient('Pad', (ctx) => {
  if (attributeString(ctx.node, 'mode', 'constant') !== 'constant') throw ctx.fail('only constant padding is differentiable');
  const x = ctx.input(0);
  const rank = x.type.shape.length;
  const pads = constantValues(ctx, 1);
  if (!pads) throw ctx.fail('pads must be a constant');
  if (pads.some((p) => p < 0)) throw ctx.fail('negative pads (cropping) are not differentiable');
  if (ctx.replicas > 1 && (pads[0] !== 0 || pads[rank] !== 0)) throw ctx.fail('replicated gradients need the batch axis left unpadded');
  if (ctx.inputs[3]) throw ctx.fail('padding only some axes is not supported by the gradient');
  const axes = Array.from({ length: rank }, (_, i) => i).filter((i) => pads[i] !== 0 || pads[i + rank] !== 0);
  if (axes.length === 0) return [ctx.grad()];
  // Only the padded axes need a known size (the batch may be unknown).
  const ends = axes.map((a) => {
    const d = ctx.grad().type.shape[a];
    if (typeof d !== 'number') throw ctx.fail(`padded axis ${a} needs a known size, found [${ctx.grad().type.shape.join(', ')}]`);
    return d - pads[a + rank];
  });
  return [ctx.op('Slice', [ctx.grad(), ctx.b.ints(axes.map((a) => pads[a])), ctx.b.ints(ends), ctx.b.ints(axes)])];
}, { replicas: true });

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
