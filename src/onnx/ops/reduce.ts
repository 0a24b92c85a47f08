/** Shape rules for reductions. At opset 17 ReduceSum takes its axes as an input, the others as an attribute. */
import type { Dim } from '../ir.js';
import { type InferenceContext, constantInts, normalizeAxis, registerOp } from '../shape-inference.js';

function reducedShape(ctx: InferenceContext, axes: number[] | undefined): Dim[] {
  const x = ctx.input(0);
  const keep = ctx.int('keepdims', 1) === 1;
  const noopWhenEmpty = ctx.int('noop_with_empty_axes', 0) === 1;
  if (!axes || axes.length === 0) {
    if (noopWhenEmpty) return [...x.shape];
    return keep ? x.shape.map(() => 1) : [];
  }
  const reduced = new Set(axes.map((a) => normalizeAxis(ctx, a, x.shape.length)));
  return x.shape.flatMap((d, i) => (reduced.has(i) ? (keep ? [1] : []) : [d]));
}

registerOp('ReduceSum', {
  attributes: { keepdims: 'int', noop_with_empty_axes: 'int' },
  infer(ctx) {
    if (ctx.inputs[1] && !ctx.constant(1)) throw ctx.fail('axes must be a constant');
    return [{ dtype: ctx.input(0).dtype, shape: reducedShape(ctx, constantInts(ctx, 1)) }];
  },
});

for (const op of ['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceSumSquare', 'ReduceL2', 'ReduceLogSumExp']) {
  registerOp(op, {
    attributes: { axes: 'ints', keepdims: 'int' },
    infer: (ctx) => [{ dtype: ctx.input(0).dtype, shape: reducedShape(ctx, ctx.ints('axes', [])) }],
  });
}

for (const op of ['ArgMax', 'ArgMin']) {
  registerOp(op, {
    attributes: { axis: 'int', keepdims: 'int', select_last_index: 'int' },
    infer: (ctx) => [{ dtype: 'int64', shape: reducedShape(ctx, [ctx.int('axis', 0)]) }],
  });
}
