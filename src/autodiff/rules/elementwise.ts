/** Gradient rules of element-wise ops. Binary ops sum their gradient back over broadcast axes. */
import { type Value, float32 } from '../../onnx/index.js';
import { type GradientContext, registerGradient } from '../registry.js';
import { FLOAT, constantValues, maskOf, masked, unbroadcast } from './helpers.js';

const mul = (ctx: GradientContext, a: Value, b: Value) => ctx.op('Mul', [a, b]);
const scalar = (ctx: GradientContext, v: number) => ctx.b.scalar(v);

registerGradient('Identity', (ctx) => [ctx.grad()], { replicas: true });
registerGradient('Neg', (ctx) => [ctx.op('Neg', [ctx.grad()])]);

// Replicated gradients only flow, unreduced, into inputs shaped like the output (residual connections, the
// metadata fusion); inputs that need no gradient may have any shape.
const sameShapes = (ctx: GradientContext) =>
  ctx.replicas === 1 || ctx.inputs.every((x, i) => !ctx.wants[i] || (x && x.type.shape.join() === ctx.outputs[0]?.type.shape.join()));
registerGradient('Add', (ctx) => {
  if (!sameShapes(ctx)) throw ctx.fail('replicated gradients need each differentiated input shaped like the output (no broadcasting)');
  return [0, 1].map((i) => (ctx.wants[i] ? unbroadcast(ctx, ctx.grad(), ctx.input(i)) : undefined));
}, { replicas: true });

registerGradient('Sum', (ctx) => {
  if (!sameShapes(ctx)) throw ctx.fail('replicated gradients need each differentiated input shaped like the output (no broadcasting)');
  return ctx.inputs.map((x, i) => (ctx.wants[i] && x ? unbroadcast(ctx, ctx.grad(), x) : undefined));
}, { replicas: true });

registerGradient('Sub', (ctx) => [
  ctx.wants[0] ? unbroadcast(ctx, ctx.grad(), ctx.input(0)) : undefined,
  ctx.wants[1] ? unbroadcast(ctx, ctx.op('Neg', [ctx.grad()]), ctx.input(1)) : undefined,
]);

// Replicated gradients flow into inputs shaped like the output (GELU's x * Φ(x)); the other factor may broadcast.
registerGradient('Mul', (ctx) => {
  if (!sameShapes(ctx)) throw ctx.fail('replicated gradients need each differentiated input shaped like the output (no broadcasting)');
  return [0, 1].map((i) => {
    if (!ctx.wants[i]) return undefined;
    const g = ctx.withForward('Mul', ctx.grad(), ctx.input(1 - i));
    return ctx.replicas > 1 ? g : unbroadcast(ctx, g, ctx.input(i));
  });
}, { replicas: true });

registerGradient('Div', (ctx) => {
  if (!sameShapes(ctx)) throw ctx.fail('replicated gradients need each differentiated input shaped like the output (no broadcasting)');
  const [a, b] = [ctx.input(0), ctx.input(1)];
  const y = ctx.outputs[0] as Value;
  const shaped = (g: Value, like: Value) => (ctx.replicas > 1 ? g : unbroadcast(ctx, g, like));
  return [
    ctx.wants[0] ? shaped(ctx.withForward('Div', ctx.grad(), b), a) : undefined,
    // d(a/b)/db = -y/b
    ctx.wants[1] ? shaped(ctx.op('Neg', [ctx.withForward('Div', ctx.withForward('Mul', ctx.grad(), y), b)]), b) : undefined,
  ];
}, { replicas: true });

// PyTorch's threshold_backward: the gradient passes where the output is strictly positive. Reading the output
// rather than the input lets the input (often a BatchNorm output) be freed after the forward pass.
registerGradient('Relu', (ctx) => [masked(ctx, ctx.grad(), stepMask(ctx, ctx.outputs[0] as Value, 0, 1))], { replicas: true });

/**
 * 1 where y is past `bound` (above it for direction 1, below for -1), else 0: 2^k * direction * (y - bound) clipped
 * to [0, 1], k as large as keeps 2^k * bound finite (126 for a zero bound). Exact wherever y's distance to the bound
 * is at least 2^-k: for a zero bound, every normal float; for another, every float not equal to it (its neighbours
 * are 2^-24 |bound| away); overflow clips to the right side. In a blocked-layout forward pass, on image-shaped y,
 * it is a depthwise 1x1 Conv with a clipping activation, which ONNX Runtime keeps, with the Mul it feeds, in that
 * layout; Cast(Greater(y, bound)) would force a round trip to NCHW for every ReLU (12% of a DenseNet explanation
 * pass). Elsewhere it is one HardSigmoid, which runs on all threads: Greater + Cast took 6% of a training step.
 */
function stepMask(ctx: GradientContext, y: Value, bound: number, direction: 1 | -1): Value {
  const gain = direction * 2 ** (126 - Math.max(0, Math.ceil(Math.log2(Math.abs(bound)))));
  const offset = bound === 0 ? 0 : -gain * bound;
  const channels = y.type.shape[1];
  if (!ctx.blockedLayout || y.type.shape.length !== 4 || typeof channels !== 'number') return ctx.op('HardSigmoid', [y], { alpha: gain, beta: offset });
  const perChannel = (v: number, dims: number[], what: string) => ctx.b.constant(float32(dims, new Float32Array(channels).fill(v)), `${ctx.node.name}.grad.step_${what}`);
  const weights = [perChannel(gain, [channels, 1, 1, 1], direction > 0 ? 'gain' : 'gain_below')];
  if (offset !== 0) weights.push(perChannel(offset, [channels], direction > 0 ? 'offset' : 'offset_below'));
  const scaled = ctx.op('Conv', [y, ...weights], { group: channels, kernel_shape: [1, 1] });
  return ctx.op('Clip', [scaled, scalar(ctx, 0), scalar(ctx, 1)]);
}

registerGradient('LeakyRelu', (ctx) => {
  const alpha = ctx.node.attributes.alpha?.value as number | undefined;
  const slope = ctx.op('Where', [ctx.op('Greater', [ctx.input(0), scalar(ctx, 0)]), scalar(ctx, 1), scalar(ctx, alpha ?? 0.01)]);
  return [mul(ctx, ctx.grad(), slope)];
});

// As PyTorch's hardtanh (ReLU6): the gradient passes strictly inside (min, max). With constant bounds the mask reads
// the output, which equals the input inside and a bound outside: one step mask per bound (MobileNetV2's ReLU6 masks
// took 8% of its training step as Greater, Less, And and Cast).
registerGradient('Clip', (ctx) => {
  const present = [1, 2].filter((i) => ctx.inputs[i]);
  if (present.length === 0) return [ctx.grad()];
  const bounds = present.map((i) => constantValues(ctx, i));
  if (bounds.every((b) => b?.length === 1)) {
    const y = ctx.outputs[0] as Value;
    const masks = present.map((i, k) => stepMask(ctx, y, (bounds[k] as number[])[0], i === 1 ? 1 : -1));
    return [masked(ctx, ctx.grad(), masks.length === 1 ? masks[0] : ctx.op('Mul', masks))];
  }
  const x = ctx.input(0);
  const conditions = present.map((i) => ctx.op(i === 1 ? 'Greater' : 'Less', [x, ctx.input(i)]));
  const inside = conditions.length === 1 ? conditions[0] : ctx.op('And', conditions);
  return [masked(ctx, ctx.grad(), maskOf(ctx, inside))];
}, { replicas: true });

registerGradient('Sigmoid', (ctx) => {
  const y = ctx.outputs[0] as Value;
  return [mul(ctx, ctx.grad(), mul(ctx, y, ctx.op('Sub', [scalar(ctx, 1), y])))];
});

registerGradient('Tanh', (ctx) => {
  const y = ctx.outputs[0] as Value;
  return [mul(ctx, ctx.grad(), ctx.op('Sub', [scalar(ctx, 1), mul(ctx, y, y)]))];
});

registerGradient('Exp', (ctx) => [mul(ctx, ctx.grad(), ctx.outputs[0] as Value)]);
registerGradient('Log', (ctx) => [ctx.op('Div', [ctx.grad(), ctx.input(0)])]);
registerGradient('Sqrt', (ctx) => [ctx.op('Div', [mul(ctx, ctx.grad(), scalar(ctx, 0.5)), ctx.outputs[0] as Value])]);
registerGradient('Reciprocal', (ctx) => {
  const y = ctx.outputs[0] as Value;
  return [ctx.op('Neg', [mul(ctx, ctx.grad(), mul(ctx, y, y))])];
});
registerGradient('Softplus', (ctx) => [mul(ctx, ctx.grad(), ctx.op('Sigmoid', [ctx.input(0)]))]);
registerGradient('Abs', (ctx) => [mul(ctx, ctx.grad(), ctx.op('Sign', [ctx.input(0)]))]);

registerGradient('Pow', (ctx) => {
  const [a, p] = [ctx.input(0), ctx.input(1)];
  const exponent = constantValues(ctx, 1);
  let da: Value | undefined;
  if (ctx.wants[0]) {
    // As PyTorch: a zero exponent gives a zero gradient (not 0 * a^-1, which is NaN at a = 0).
    if (exponent?.length === 1 && exponent[0] === 0) da = unbroadcast(ctx, mul(ctx, ctx.grad(), scalar(ctx, 0)), a);
    else {
      const pf = p.type.dtype === 'float32' ? p : ctx.op('Cast', [p], { to: FLOAT });
      const local = mul(ctx, pf, ctx.op('Pow', [a, ctx.op('Sub', [pf, scalar(ctx, 1)])]));
      da = unbroadcast(ctx, mul(ctx, ctx.grad(), local), a);
    }
  }
  const dp = ctx.wants[1] ? unbroadcast(ctx, mul(ctx, ctx.grad(), mul(ctx, ctx.outputs[0] as Value, ctx.op('Log', [a]))), p) : undefined;
  return [da, dp];
});

// As torch.maximum / torch.minimum: the gradient goes to the selected input, split in half on ties.
for (const [op, compare] of [
  ['Max', 'Greater'],
  ['Min', 'Less'],
] as const) {
  registerGradient(op, (ctx) => {
    if (ctx.inputs.length !== 2) throw ctx.fail(`${op} gradients are supported for two inputs, found ${ctx.inputs.length}`);
    const [a, b] = [ctx.input(0), ctx.input(1)];
    const half = mul(ctx, maskOf(ctx, ctx.op('Equal', [a, b])), scalar(ctx, 0.5));
    const share = (x: Value, y: Value) => ctx.op('Add', [maskOf(ctx, ctx.op(compare, [x, y])), half]);
    return [
      ctx.wants[0] ? unbroadcast(ctx, mul(ctx, ctx.grad(), share(a, b)), a) : undefined,
      ctx.wants[1] ? unbroadcast(ctx, mul(ctx, ctx.grad(), share(b, a)), b) : undefined,
    ];
  });
}

registerGradient('Where', (ctx) => {
  const condition = ctx.input(0);
  const zero = scalar(ctx, 0);
  return [
    undefined,
    ctx.wants[1] ? unbroadcast(ctx, ctx.op('Where', [condition, ctx.grad(), zero]), ctx.input(1)) : undefined,
    ctx.wants[2] ? unbroadcast(ctx, ctx.op('Where', [condition, zero, ctx.grad()]), ctx.input(2)) : undefined,
  ];
});

const FLOATING = new Set(['float32', 'float64', 'float16']);

registerGradient('Cast', (ctx) => {
  const from = ctx.input(0).type.dtype;
  if (!FLOATING.has(from)) return [undefined];
  return [from === ctx.grad().type.dtype ? ctx.grad() : ctx.op('Cast', [ctx.grad()], { to: from === 'float64' ? 11 : 1 })];
});

/**
 * Dropout: identity at inference; in training the kept entries were scaled by 1 / (1 - ratio), so the gradient is
 * the upstream gradient times the mask (output 1) over (1 - ratio).
 */
registerGradient('Dropout', (ctx) => {
  const mask = ctx.outputs[1];
  const training = constantValues(ctx, 2);
  if (!ctx.inputs[2] || (training && training[0] === 0)) return [ctx.grad()];
  if (!mask) throw ctx.fail('a training-mode Dropout needs its mask output for the gradient (buildTrainingGraph adds it)');
  const ratio = constantValues(ctx, 1);
  if (ctx.inputs[1] && !ratio) throw ctx.fail('the dropout ratio must be a constant');
  const keep = 1 - (ratio?.[0] ?? 0.5);
  const scaled = keep === 1 ? ctx.grad() : mul(ctx, ctx.grad(), scalar(ctx, 1 / keep));
  return [ctx.withForward('Mul', scaled, maskOf(ctx, mask))];
}, { replicas: true });
