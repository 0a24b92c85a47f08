/** Gradient rules of the transformer's activations: Erf (exact GELU is 0.5 x (1 + erf(x / sqrt 2))) and Softmax. */
import { type Value, attributeInt } from '../../onnx/index.js';
import { registerGradient } from '../registry.js';
import { timesForward } from './helpers.js';

// d erf(x) / dx = 2 / sqrt(pi) * exp(-x^2)
registerGradient('Erf', (ctx) => {
  const x = ctx.input(0);
  const slope = ctx.op('Mul', [ctx.op('Exp', [ctx.op('Neg', [ctx.op('Mul', [x, x])])]), ctx.b.scalar(2 / Math.sqrt(Math.PI))]);
  return [ctx.withForward('Mul', ctx.grad(), slope)];
}, { replicas: true });

/** Softmax (opset 13: along one axis): dx = y * (dy - sum(dy * y)), the sum along the axis. */
registerGradient('Softmax', (ctx) => {
  const y = ctx.outputs[0] as Value;
  const rank = y.type.shape.length;
  const rawAxis = attributeInt(ctx.node, 'axis', -1);
  const axis = rawAxis < 0 ? rawAxis + rank : rawAxis;
  if (ctx.replicas > 1 && axis === 0) throw ctx.fail('replicated gradients need the softmax axis to be another than the batch axis');
  const weighted = ctx.withForward('Mul', ctx.grad(), y);
  const total = ctx.op('ReduceSum', [weighted, ctx.b.ints([axis])], { keepdims: 1 });
  return [ctx.op('Sub', [weighted, timesForward(ctx, total, y)])];
}, { replicas: true });
