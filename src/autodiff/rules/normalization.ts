/** Gradient rule of LayerNormalization (opset 17): normalisation over the trailing axes from `axis` on. */
import { type Value, attributeFloat, attributeInt } from '../../onnx/index.js';
import { registerGradient } from '../registry.js';
import { onlyInputGradient } from './conv.js';
import { timesForward, unbroadcast } from './helpers.js';

/**
 * With x̂ = (x - mean) * invStd over the normalised axes and y = x̂ * scale + bias:
 *   dBias = sum(dy), dScale = sum(dy * x̂) over the leading axes;
 *   dx = invStd * (g - mean(g) - x̂ * mean(g * x̂)), g = dy * scale, means over the normalised axes.
 * The forward node's mean and inverse standard deviation outputs are reused where present, else recomputed.
 */
registerGradient('LayerNormalization', (ctx) => {
  if (ctx.grads.slice(1).some(Boolean)) throw ctx.fail('gradients through the mean and inverse standard deviation outputs are not supported');
  onlyInputGradient(ctx);
  const x = ctx.input(0);
  const rank = x.type.shape.length;
  const rawAxis = attributeInt(ctx.node, 'axis', -1);
  const axis = rawAxis < 0 ? rawAxis + rank : rawAxis;
  // Replicated gradients are stacked along axis 0, which must then stay outside the normalised axes.
  if (ctx.replicas > 1 && axis === 0) throw ctx.fail('replicated gradients need the batch axis outside the normalised axes');
  const normalised = Array.from({ length: rank - axis }, (_, i) => axis + i);
  const mean = (v: Value) => ctx.op('ReduceMean', [v], { axes: normalised, keepdims: 1 });
  const dy = ctx.grad();

  const dBias = ctx.wants[2] && ctx.inputs[2] ? unbroadcast(ctx, dy, ctx.inputs[2]) : undefined;
  if (!ctx.wants[0] && !ctx.wants[1]) return [undefined, undefined, dBias];

  let invStd: Value;
  let centered: Value;
  const [savedMean, savedInvStd] = [ctx.outputs[1], ctx.outputs[2]];
  if (savedMean && savedInvStd) [centered, invStd] = [ctx.op('Sub', [x, savedMean]), savedInvStd];
  else {
    centered = ctx.op('Sub', [x, mean(x)]);
    const variance = mean(ctx.op('Mul', [centered, centered]));
    const epsilon = attributeFloat(ctx.node, 'epsilon', 1e-5);
    invStd = ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.op('Add', [variance, ctx.b.scalar(epsilon)])])]);
  }
  const normalized = ctx.op('Mul', [centered, invStd]);

  const dScale = ctx.wants[1] ? unbroadcast(ctx, ctx.op('Mul', [dy, normalized]), ctx.input(1)) : undefined;
  let dx: Value | undefined;
  if (ctx.wants[0]) {
    const g = ctx.op('Mul', [dy, ctx.input(1)]);
    const projection = timesForward(ctx, mean(ctx.withForward('Mul', g, normalized)), normalized);
    dx = ctx.withForward('Mul', ctx.op('Sub', [ctx.op('Sub', [g, mean(g)]), projection]), invStd);
  }
  return [dx, dScale, dBias];
}, { replicas: true });
