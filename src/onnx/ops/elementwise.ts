/** Shape rules for element-wise ops: unary, broadcasting binary, comparisons, Where, Cast, Clip, Dropout. */
import type { ValueType } from '../ir.js';
import { type InferenceContext, broadcastShapes, registerOp } from '../shape-inference.js';
import { dtypeFromOnnxCode } from '../tensor.js';

const sameAsInput = (ctx: InferenceContext): ValueType[] => [{ ...ctx.input(0), shape: [...ctx.input(0).shape] }];

for (const op of ['Relu', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Neg', 'Sqrt', 'Abs', 'Reciprocal', 'Identity', 'Softplus', 'Sign', 'Floor', 'Ceil', 'Erf', 'Not']) {
  registerOp(op, { attributes: {}, infer: sameAsInput });
}
registerOp('LeakyRelu', { attributes: { alpha: 'float' }, infer: sameAsInput });
registerOp('HardSigmoid', { attributes: { alpha: 'float', beta: 'float' }, infer: sameAsInput });
registerOp('Softmax', { attributes: { axis: 'int' }, infer: sameAsInput });
registerOp('LogSoftmax', { attributes: { axis: 'int' }, infer: sameAsInput });

function broadcastInputs(ctx: InferenceContext): ValueType['shape'] {
  const present = ctx.inputs.filter((t): t is ValueType => t !== undefined);
  const dtype = present[0]?.dtype;
  for (const t of present) {
    if (t.dtype !== dtype) throw ctx.fail(`inputs must share one element type, found ${present.map((p) => p.dtype).join(' and ')}`);
  }
  return broadcastShapes(ctx, present.map((t) => t.shape));
}

for (const op of ['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min', 'Sum', 'Mean']) {
  registerOp(op, { attributes: {}, infer: (ctx) => [{ dtype: ctx.input(0).dtype, shape: broadcastInputs(ctx) }] });
}
// Pow's exponent may have another element type.
registerOp('Pow', {
  attributes: {},
  infer: (ctx) => [{ dtype: ctx.input(0).dtype, shape: broadcastShapes(ctx, [ctx.input(0).shape, ctx.input(1).shape]) }],
});
for (const op of ['Greater', 'Less', 'Equal', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or']) {
  registerOp(op, { attributes: {}, infer: (ctx) => [{ dtype: 'bool', shape: broadcastInputs(ctx) }] });
}

registerOp('Where', {
  attributes: {},
  infer(ctx) {
    if (ctx.input(0).dtype !== 'bool') throw ctx.fail(`the condition must be bool, found ${ctx.input(0).dtype}`);
    if (ctx.input(1).dtype !== ctx.input(2).dtype) throw ctx.fail(`both branches must share one element type`);
    return [{ dtype: ctx.input(1).dtype, shape: broadcastShapes(ctx, [ctx.input(0).shape, ctx.input(1).shape, ctx.input(2).shape]) }];
  },
});

registerOp('Cast', {
  attributes: { to: 'int' },
  infer: (ctx) => [{ dtype: dtypeFromOnnxCode(ctx.int('to', 0)), shape: [...ctx.input(0).shape] }],
});

registerOp('Clip', {
  attributes: {},
  infer(ctx) {
    for (const i of [1, 2]) {
      const bound = ctx.inputs[i];
      if (bound && bound.shape.length !== 0) throw ctx.fail(`input ${i} (the ${i === 1 ? 'min' : 'max'} bound) must be a scalar`);
    }
    return sameAsInput(ctx);
  },
});

registerOp('Dropout', {
  attributes: { seed: 'int' },
  infer: (ctx) => [ctx.input(0), { dtype: 'bool', shape: [...ctx.input(0).shape] }],
});
