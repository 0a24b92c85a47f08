/** Shape helpers shared by the gradient rules. */
import type { Dim, GraphBuilder, Value } from '../../onnx/index.js';
import type { ChannelAffine, GradientContext } from '../registry.js';

export const FLOAT = 1;

/** The value's shape with every dimension known, or an Error naming the node. */
export function staticShape(ctx: GradientContext, v: Value, what = `"${v.name}"`): number[] {
  const shape = v.type.shape;
  if (!shape.every((d): d is number => typeof d === 'number')) {
    throw ctx.fail(`${what} needs a known shape, found [${shape.join(', ')}]`);
  }
  return shape;
}

/** Dimensions after the first (batch) one, all known. */
export function staticTail(ctx: GradientContext, v: Value, what?: string): number[] {
  const shape = v.type.shape.slice(1);
  if (!shape.every((d): d is number => typeof d === 'number')) {
    throw ctx.fail(`${what ?? `"${v.name}"`} needs known dimensions after the batch, found [${v.type.shape.join(', ')}]`);
  }
  return shape;
}

/**
 * A gradient-side factor that broadcasts (a reduction kept as 1s) times a forward value that has every dimension of
 * the result. With replicated gradients the factor is split per replica, so the product keeps the forward value's
 * shape per replica (GradientContext.withForward keeps the gradient's shape instead).
 */
export function timesForward(ctx: GradientContext, factor: Value, forward: Value): Value {
  if (ctx.replicas === 1) return ctx.op('Mul', [factor, forward]);
  const split = ctx.op('Reshape', [factor, ctx.b.ints([ctx.replicas, -1, ...staticTail(ctx, factor)])]);
  return ctx.op('Reshape', [ctx.op('Mul', [split, forward]), ctx.b.ints([-1, ...staticTail(ctx, forward)])]);
}

function sameShape(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Reshapes a gradient to the shape of a forward value (a -1 stands for at most one unknown dimension). */
export function reshapeLike(ctx: GradientContext, g: Value, like: Value): Value {
  if (sameShape(g.type.shape, like.type.shape)) return g;
  const shape = like.type.shape;
  const unknown = shape.filter((d) => typeof d !== 'number').length;
  if (unknown === 0) return ctx.op('Reshape', [g, ctx.b.ints(shape as number[])]);
  if (unknown === 1) return ctx.op('Reshape', [g, ctx.b.ints(shape.map((d) => (typeof d === 'number' ? d : -1)))]);
  return ctx.op('Reshape', [g, ctx.op('Shape', [like])]);
}

/** Sums a broadcast gradient back to the shape of the input it came from (numpy broadcasting rules). */
export function unbroadcast(ctx: GradientContext, g: Value, like: Value): Value {
  const gs = g.type.shape;
  const ls = like.type.shape;
  if (sameShape(gs, ls)) return g;
  const offset = gs.length - ls.length;
  if (offset < 0) throw ctx.fail(`gradient [${gs.join(', ')}] has lower rank than its input [${ls.join(', ')}]`);
  const axes: number[] = [];
  gs.forEach((d, i) => {
    if (i < offset) axes.push(i);
    else if (ls[i - offset] === 1 && d !== 1) axes.push(i);
  });
  const reduced = axes.length === 0 ? g : ctx.op('ReduceSum', [g, ctx.b.ints(axes)], { keepdims: 1 });
  return reshapeLike(ctx, reduced, like);
}

/** A per-channel vector [C] shaped to broadcast over an NC... tensor of the given rank. */
export function perChannel(ctx: GradientContext, v: Value, rank: number): Value {
  if (rank <= 2) return v;
  return ctx.op('Unsqueeze', [v, ctx.b.ints(Array.from({ length: rank - 2 }, (_, i) => i + 1))]);
}

/** Every axis except the channel axis (1): what per-channel statistics reduce over. */
export function nonChannelAxes(rank: number): number[] {
  return [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
}

export function maskOf(ctx: GradientContext, condition: Value): Value {
  return ctx.op('Cast', [condition], { to: FLOAT });
}

export function transposeLastTwo(ctx: GradientContext, v: Value): Value {
  const rank = v.type.shape.length;
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return ctx.op('Transpose', [v], { perm });
}

/** The integer values of a constant input (an initializer or folded constant), or undefined. */
export function constantValues(ctx: GradientContext, i: number): number[] | undefined {
  const name = ctx.node.inputs[i];
  if (!name) return undefined;
  const t = ctx.b.initializerValue(name);
  if (!t) return undefined;
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

/**
 * Gradients that a rule formed as upstream * mask (ReLU, ReLU6), remembered per graph so that a later rule can
 * apply a per-channel factor before the mask instead (see the BatchNormalization rule).
 */
const maskedGradients = new WeakMap<GraphBuilder, Map<string, { upstream: Value; mask: Value }>>();

export function masked(ctx: GradientContext, upstream: Value, mask: Value): Value {
  const product = ctx.withForward('Mul', upstream, mask);
  if (ctx.replicas === 1) {
    let map = maskedGradients.get(ctx.b);
    if (!map) maskedGradients.set(ctx.b, (map = new Map()));
    map.set(product.name, { upstream, mask });
  }
  return product;
}

export function maskedParts(ctx: GradientContext, grad: Value): { upstream: Value; mask: Value } | undefined {
  return maskedGradients.get(ctx.b)?.get(grad.name);
}

/**
 * slope * x + offset per channel (axis 1), the nodes named from `name`: for image tensors a 1x1 depthwise Conv,
 * which ONNX Runtime runs on all threads (its BatchNormalization kernel runs on one), else broadcast Mul and Add.
 */
export function applyChannelAffine(b: GraphBuilder, x: Value, affine: ChannelAffine, name: string): Value {
  const rank = x.type.shape.length;
  const channels = x.type.shape[1];
  const trailingOnes = Array<number>(Math.max(rank - 2, 0)).fill(1);
  if (rank === 4 && typeof channels === 'number') {
    const kernel = b.op('Reshape', [affine.slope, b.ints([-1, 1, 1, 1])], {}, { name: `${name}.kernel` });
    return b.op('Conv', [x, kernel, affine.offset], { kernel_shape: [1, 1], group: channels }, { name });
  }
  const perChannelShape = b.ints([-1, ...trailingOnes]);
  const slope = b.op('Reshape', [affine.slope, perChannelShape], {}, { name: `${name}.slope` });
  const offset = b.op('Reshape', [affine.offset, perChannelShape], {}, { name: `${name}.offset` });
  return b.op('Add', [b.op('Mul', [x, slope], {}, { name: `${name}.scaled` }), offset], {}, { name });
}
