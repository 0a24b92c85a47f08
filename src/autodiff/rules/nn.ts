/** Gradient rules of pooling, batch normalisation and the matrix products. */
import { type Value, attributeFloat, attributeInt, attributeInts, float32 } from '../../onnx/index.js';
import { type GradientContext, type InputGradient, registerGradient } from '../registry.js';
import { onlyInputGradient } from './conv.js';
import { maskedParts, nonChannelAxes, perChannel, reshapeLike, staticTail, transposeLastTwo, unbroadcast } from './helpers.js';

/**
 * MaxPool: the upstream gradient is scattered (with addition, windows overlap) to the positions recorded in the
 * forward pass's Indices output; MaxUnpool would be wrong for overlapping windows. A MaxPool without an Indices
 * output is run again with one (buildTrainingGraph adds it to the forward pass instead; explanation graphs keep the
 * forward pass in ONNX Runtime's faster blocked layout, which has no Indices).
 */
registerGradient('MaxPool', (ctx) => {
  if (attributeInt(ctx.node, 'storage_order', 0) !== 0) throw ctx.fail('only storage_order 0 is supported by the gradient');
  const x = ctx.input(0);
  let indices = ctx.outputs[1];
  if (!indices) {
    const attributes = Object.fromEntries(Object.entries(ctx.node.attributes));
    indices = ctx.ops('MaxPool', [x], attributes, 2)[1];
  }
  const flat = (v: Value) => ctx.op('Reshape', [v, ctx.b.ints([-1])]);
  if (ctx.replicas === 1) {
    const zeros = flat(ctx.op('ConstantOfShape', [ctx.op('Shape', [x])], { value: float32([1], [0]) }));
    const scattered = ctx.op('ScatterElements', [zeros, flat(indices), flat(ctx.grad())], { axis: 0, reduction: 'add' });
    return [reshapeLike(ctx, scattered, x)];
  }
  // Replica j scatters into its own copy of the input: its indices are offset by j times the input's size.
  const size = ctx.op('Size', [x]);
  const replicaIds = ctx.b.constant({ dtype: 'int64', dims: [ctx.replicas, 1], data: BigInt64Array.from({ length: ctx.replicas }, (_, j) => BigInt(j)) }, `${ctx.node.name}.grad.replica`);
  const offsets = ctx.op('Mul', [replicaIds, size]);
  const shifted = flat(ctx.op('Add', [ctx.op('Reshape', [indices, ctx.b.ints([1, -1])]), offsets]));
  const total = ctx.op('Reshape', [ctx.op('Mul', [size, ctx.b.constant({ dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(ctx.replicas)) }, `${ctx.node.name}.grad.replicas`)]), ctx.b.ints([1])]);
  const zeros = ctx.op('ConstantOfShape', [total], { value: float32([1], [0]) });
  const scattered = ctx.op('ScatterElements', [zeros, shifted, flat(ctx.grad())], { axis: 0, reduction: 'add' });
  return [ctx.op('Reshape', [scattered, ctx.b.ints([-1, ...staticTail(ctx, x)])])];
}, { replicas: true });

registerGradient('AveragePool', (ctx) => {
  const x = ctx.input(0);
  const dy = ctx.grad();
  const [c, h, w] = staticTail(ctx, x, 'the input');
  const kernel = attributeInts(ctx.node, 'kernel_shape', []);
  const strides = attributeInts(ctx.node, 'strides', [1, 1]);
  const pads = attributeInts(ctx.node, 'pads', [0, 0, 0, 0]);
  if (kernel.length !== 2) throw ctx.fail('only 2-D average pooling is differentiable');
  if (attributeInt(ctx.node, 'ceil_mode', 0) !== 0) throw ctx.fail('ceil_mode is not supported by the gradient');
  const [kh, kw] = kernel;
  const [oh, ow] = (ctx.outputs[0] as Value).type.shape.slice(2) as number[];
  const noPads = pads.every((p) => p === 0);
  if (noPads && kh === strides[0] && kw === strides[1] && h === oh * kh && w === ow * kw) {
    // Non-overlapping windows tiling the input: each input pixel receives its window's gradient / (kh * kw),
    // spread by concatenating copies (plain copies; ORT's broadcasting Expand was several times slower here).
    const scaled = ctx.op('Reshape', [ctx.op('Mul', [dy, ctx.b.scalar(1 / (kh * kw))]), ctx.b.ints([0, c, oh, 1, ow, 1])]);
    const wide = kw === 1 ? scaled : ctx.op('Concat', Array(kw).fill(scaled), { axis: 5 });
    const spread = kh === 1 ? wide : ctx.op('Concat', Array(kh).fill(wide), { axis: 3 });
    return [ctx.op('Reshape', [spread, ctx.b.ints([-1, c, h, w])])];
  }
  let divided: Value;
  if (noPads || attributeInt(ctx.node, 'count_include_pad', 0) === 1) divided = ctx.op('Mul', [dy, ctx.b.scalar(1 / (kh * kw))]);
  else {
    // Windows that overlap the padding divide by the number of real pixels they cover.
    const counts = new Float32Array(oh * ow);
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const rows = Math.min(i * strides[0] - pads[0] + kh, h) - Math.max(i * strides[0] - pads[0], 0);
        const cols = Math.min(j * strides[1] - pads[1] + kw, w) - Math.max(j * strides[1] - pads[1], 0);
        counts[i * ow + j] = 1 / (rows * cols);
      }
    }
    divided = ctx.op('Mul', [dy, ctx.b.constant(float32([1, 1, oh, ow], counts), `${ctx.node.name}.grad.divisor`)]);
  }
  const ones = ctx.b.constant(float32([c, 1, kh, kw], new Float32Array(c * kh * kw).fill(1)), `${ctx.node.name}.grad.window`);
  const outputPadding = [0, 1].map((i) => h + pads[i] + pads[i + 2] - ((oh - 1) * strides[i] + kernel[i]));
  return [ctx.op('ConvTranspose', [divided, ones], { kernel_shape: kernel, strides, pads, group: c, output_padding: outputPadding })];
}, { replicas: true });

registerGradient('GlobalAveragePool', (ctx) => {
  const x = ctx.input(0);
  const spatial = x.type.shape.slice(2);
  const dy = ctx.grad();
  if (spatial.every((d): d is number => typeof d === 'number')) {
    const scaled = ctx.op('Mul', [dy, ctx.b.scalar(1 / spatial.reduce((a, b) => a * b, 1))]);
    return [ctx.op('Expand', [scaled, ctx.b.ints([1, 1, ...spatial])])];
  }
  if (ctx.replicas > 1) throw ctx.fail('replicated gradients need known spatial dimensions');
  const count = ctx.op('Div', [ctx.op('Cast', [ctx.op('Size', [x])], { to: 1 }), ctx.op('Cast', [ctx.op('Size', [dy])], { to: 1 })]);
  return [ctx.op('Expand', [ctx.op('Div', [dy, count]), ctx.op('Shape', [x])])];
}, { replicas: true });

/**
 * BatchNormalization. Inference mode (running statistics): a per-channel affine map. Training mode (batch
 * statistics): the full backward through the mean and variance, written out. With momentum 0 the forward node's
 * outputs 1 and 2 are the batch mean and (biased) variance and are reused; otherwise they are recomputed.
 */
registerGradient('BatchNormalization', (ctx) => {
  if (ctx.grads.slice(1).some(Boolean)) throw ctx.fail('gradients through the running statistics are not supported');
  onlyInputGradient(ctx);
  if (ctx.replicas > 1 && attributeInt(ctx.node, 'training_mode', 0) === 1) throw ctx.fail('replicated gradients need inference mode');
  const x = ctx.input(0);
  const rank = x.type.shape.length;
  const axes = ctx.b.ints(nonChannelAxes(rank));
  const dy = ctx.grad();
  const epsilon = attributeFloat(ctx.node, 'epsilon', 1e-5);
  const training = attributeInt(ctx.node, 'training_mode', 0) === 1;
  const gamma = ctx.input(1);
  const channel = (v: Value) => perChannel(ctx, v, rank);
  const sum = (v: Value) => ctx.op('ReduceSum', [v, axes], { keepdims: 0 });

  let mean: Value;
  let variance: Value;
  if (!training) [mean, variance] = [ctx.input(3), ctx.input(4)];
  else if (attributeFloat(ctx.node, 'momentum', 0.9) === 0 && ctx.outputs[1] && ctx.outputs[2]) [mean, variance] = [ctx.outputs[1], ctx.outputs[2]];
  else {
    mean = ctx.op('ReduceMean', [x], { axes: nonChannelAxes(rank), keepdims: 0 });
    const d = ctx.op('Sub', [x, channel(mean)]);
    variance = ctx.op('ReduceMean', [ctx.op('Mul', [d, d])], { axes: nonChannelAxes(rank), keepdims: 0 });
  }
  const invStd = ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.op('Add', [variance, ctx.b.scalar(epsilon)])])]);
  const dBeta = ctx.wants[1] || ctx.wants[2] || (training && ctx.wants[0]) ? sum(dy) : undefined;
  // sum(dy * (x - mean)) as sum(dy * x) - mean * sum(dy): one full-size pass fewer (6% of a DenseNet step). The
  // cancellation costs relative accuracy ~ float32 epsilon * |mean| / std, checked with mean = 30 std in the rule tests.
  const dyCentered =
    ctx.wants[1] || (training && ctx.wants[0]) ? ctx.op('Sub', [sum(ctx.op('Mul', [dy, x])), ctx.op('Mul', [mean, dBeta as Value])]) : undefined;
  const dGamma = ctx.wants[1] ? ctx.op('Mul', [dyCentered as Value, invStd]) : undefined;

  let dx: InputGradient;
  if (ctx.wants[0]) {
    const scale = ctx.op('Mul', [gamma, invStd]);
    if (!training) {
      // After a ReLU the gradient is upstream * mask; scaling the upstream first (same product) lets ONNX Runtime
      // fold the per-channel scale into the gradient convolution that made it, when weights are constants.
      const parts = maskedParts(ctx, dy);
      dx = parts ? ctx.op('Mul', [ctx.op('Mul', [parts.upstream, channel(scale)]), parts.mask]) : ctx.op('Mul', [dy, channel(scale)]);
    }
    else {
      // dx = scale * (dy - mean(dy) - centered * invStd^2 * mean(dy * centered))
      const channels = Number(x.type.shape[1]);
      const count = ctx.op('Div', [ctx.op('Cast', [ctx.op('Size', [x])], { to: 1 }), ctx.b.scalar(channels)]);
      const meanDy = ctx.op('Div', [dBeta as Value, count]);
      const slope = ctx.op('Neg', [ctx.op('Div', [ctx.op('Mul', [ctx.op('Mul', [scale, ctx.op('Mul', [invStd, invStd])]), dyCentered as Value]), count])]);
      const offset = ctx.op('Neg', [ctx.op('Mul', [scale, meanDy])]);
      // slope * (x - mean) + offset is per-channel affine in x: left to autodiff to apply, which sums these terms
      // over every normalisation of the same tensor first (see AffineGradient).
      dx = { tensor: ctx.op('Mul', [dy, channel(scale)]), slope, offset: ctx.op('Sub', [offset, ctx.op('Mul', [slope, mean])]) };
    }
  }
  return [dx, dGamma, ctx.wants[2] ? dBeta : undefined, undefined, undefined];
}, { replicas: true });

registerGradient('Gemm', (ctx) => {
  onlyInputGradient(ctx);
  const [a, b] = [ctx.input(0), ctx.input(1)];
  const dy = ctx.grad();
  const transA = attributeInt(ctx.node, 'transA', 0);
  const transB = attributeInt(ctx.node, 'transB', 0);
  const alpha = attributeFloat(ctx.node, 'alpha', 1);
  const beta = attributeFloat(ctx.node, 'beta', 1);
  const gemm = (p: Value, q: Value, tp: number, tq: number) => ctx.op('Gemm', [p, q], { alpha, transA: tp, transB: tq });
  const da = ctx.wants[0] ? (transA ? gemm(b, dy, transB, 1) : gemm(dy, b, 0, transB ? 0 : 1)) : undefined;
  const db = ctx.wants[1] ? (transB ? gemm(dy, a, 1, transA) : gemm(a, dy, transA ? 0 : 1, 0)) : undefined;
  let dc: Value | undefined;
  if (ctx.wants[2]) {
    const scaled = beta === 1 ? dy : ctx.op('Mul', [dy, ctx.b.scalar(beta)]);
    dc = unbroadcast(ctx, scaled, ctx.input(2));
  }
  return [da, db, dc];
}, { replicas: true });

registerGradient('MatMul', (ctx) => {
  // Only a product of two activations needs its second operand's gradient per replica.
  if (ctx.replicas > 1 && ctx.wants[1]) return replicatedMatMul(ctx);
  const [a, b] = [ctx.input(0), ctx.input(1)];
  let dy = ctx.grad();
  const unsqueeze = (v: Value, axis: number) => ctx.op('Unsqueeze', [v, ctx.b.ints([axis])]);
  // Vectors become matrices (as MatMul itself treats them), and dY gains the axes they lacked.
  const a2 = a.type.shape.length === 1 ? unsqueeze(a, 0) : a;
  const b2 = b.type.shape.length === 1 ? unsqueeze(b, 1) : b;
  if (a.type.shape.length === 1) dy = unsqueeze(dy, dy.type.shape.length === 0 ? 0 : Math.max(dy.type.shape.length - 1, 0));
  if (b.type.shape.length === 1) dy = unsqueeze(dy, dy.type.shape.length);
  const da = ctx.wants[0] ? reshapeLike(ctx, unbroadcast(ctx, ctx.op('MatMul', [dy, transposeLastTwo(ctx, b2)]), a2), a) : undefined;
  const db = ctx.wants[1] ? reshapeLike(ctx, unbroadcast(ctx, ctx.op('MatMul', [transposeLastTwo(ctx, a2), dy]), b2), b) : undefined;
  return [da, db];
}, { replicas: true });

/**
 * MatMul of two activations (attention's Q K^T and A V) with several cotangents stacked along the batch: each
 * differentiated input must have the output's batch dimensions (no broadcasting to undo), and each replica's product
 * is taken against the forward operand of the plain batch, which MatMul broadcasts over the replicas axis.
 */
function replicatedMatMul(ctx: GradientContext): InputGradient[] {
  const [a, b] = [ctx.input(0), ctx.input(1)];
  const outBatch = (ctx.outputs[0] as Value).type.shape.slice(0, -2).join();
  for (const [i, x] of [a, b].entries()) {
    if (ctx.wants[i] && (x.type.shape.length < 3 || x.type.shape.slice(0, -2).join() !== outBatch)) {
      throw ctx.fail(`replicated gradients need each differentiated input to have the output's batch dimensions, found [${x.type.shape.join(', ')}]`);
    }
  }
  const dy = ctx.grad();
  const split = ctx.op('Reshape', [dy, ctx.b.ints([ctx.replicas, -1, ...staticTail(ctx, dy)])]);
  const stacked = (product: Value, like: Value) => ctx.op('Reshape', [product, ctx.b.ints([-1, ...staticTail(ctx, like)])]);
  return [
    ctx.wants[0] ? stacked(ctx.op('MatMul', [split, transposeLastTwo(ctx, b)]), a) : undefined,
    ctx.wants[1] ? stacked(ctx.op('MatMul', [transposeLastTwo(ctx, a), split]), b) : undefined,
  ];
}
