/** Gradient rule of Gather (a table lookup, e.g. Swin's relative position bias). */
import { type Dim, attributeInt, float32 } from '../../onnx/index.js';
import { registerGradient } from '../registry.js';

/**
 * Gather along `axis`: the gradient of the data is the upstream gradient scatter-added back to the gathered
 * positions (an index that appears several times collects each of its gradients). The indices, flattened to N, become
 * one axis of the gradient; ScatterElements (reduction add, opset 16, which ONNX Runtime's CPU provider runs, as for
 * MaxPool) then needs them expanded to that gradient's shape.
 */
registerGradient('Gather', (ctx) => {
  const data = ctx.input(0);
  // Lookups in integer tensors (shapes) carry no gradient.
  if (!ctx.wants[0] || !data.type.dtype.startsWith('float')) return [undefined, undefined];
  const indices = ctx.input(1);
  const rank = data.type.shape.length;
  const rawAxis = attributeInt(ctx.node, 'axis', 0);
  const axis = rawAxis < 0 ? rawAxis + rank : rawAxis;
  const indexDims = indices.type.shape;
  if (!indexDims.every((d): d is number => typeof d === 'number')) throw ctx.fail(`the indices need a known shape, found [${indexDims.join(', ')}]`);
  const count = indexDims.reduce((a, b) => a * b, 1);

  // The upstream gradient with the indices' axes merged into one: leading dims copied (0), one unknown trailing dim as -1.
  const trailing = data.type.shape.slice(axis + 1);
  if (trailing.filter((d) => typeof d !== 'number').length > 1) throw ctx.fail('at most one unknown dimension may follow the gathered axis');
  const target = (dims: readonly Dim[]) => dims.map((d) => (typeof d === 'number' ? d : -1));
  const updates = ctx.op('Reshape', [ctx.grad(), ctx.b.ints([...Array<number>(axis).fill(0), count, ...target(trailing)])]);
  const along = ctx.op('Reshape', [indices, ctx.b.ints([...Array<number>(axis).fill(1), count, ...Array<number>(trailing.length).fill(1)])]);
  const positions = ctx.op('Expand', [along, ctx.op('Shape', [updates])]);
  const zeros = ctx.op('ConstantOfShape', [ctx.op('Shape', [data])], { value: float32([1], [0]) });
  return [ctx.op('ScatterElements', [zeros, positions, updates], { axis, reduction: 'add' }), undefined];
});
