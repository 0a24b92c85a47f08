/**
 * Sums over the batch axis, which autodiff writes as plain ReduceSums, rewritten into forms ONNX Runtime's CPU
 * provider runs faster. Only the order of the float32 additions changes.
 * - Over the leading axis of a tensor of rank 3 or more (a weight gradient's per-sample products, [N, O, I]): a row
 *   of ones times the tensor as an [N, O * I] matrix. ORT's ReduceSum over a leading axis runs many times slower
 *   than that matrix-vector product.
 * - Over axes (0, 2, 3) of an image-shaped tensor (BatchNorm's gradient sums): per sample over the plane first, then
 *   over the batch, two reductions ORT runs faster than the one over three axes.
 * It runs after autodiff, before the blocked-layout rewrite (whose ops shape inference does not know).
 */
import { type Graph, type HostTensor, type Node, attributeInt, float32, inferGraph, int64 } from '../../onnx/index.js';

export function rewriteBatchSums(graph: Graph): Graph {
  const types = inferGraph(graph);
  const initializers = new Map(graph.initializers);
  const constant = (name: string, t: () => HostTensor) => {
    if (!initializers.has(name)) initializers.set(name, t());
    return name;
  };
  const nodes: Node[] = [];
  const emit = (opType: string, name: string, inputs: string[], attributes: Node['attributes'] = {}, output = name) => {
    nodes.push({ name, opType, domain: '', inputs, outputs: [output], attributes });
    return output;
  };
  let rewritten = 0;
  for (const node of graph.nodes) {
    const shape = node.opType === 'ReduceSum' && !node.domain ? types.get(node.inputs[0])?.shape : undefined;
    const axesTensor = node.inputs[1] ? graph.initializers.get(node.inputs[1]) : undefined;
    const axes = axesTensor ? Array.from(axesTensor.data, Number) : undefined;
    if (!shape || !axes || attributeInt(node, 'keepdims', 1) !== 0 || node.outputs.length !== 1) {
      nodes.push(node);
      continue;
    }
    const [batch, ...rest] = shape;
    const x = node.inputs[0];
    const p = node.name;
    if (axes.join() === '0' && shape.length >= 3 && rest.every((d): d is number => typeof d === 'number')) {
      const size = rest.reduce((a, d) => a * d, 1);
      const ones =
        typeof batch === 'number'
          ? constant(`batch_sums.ones_${batch}`, () => float32([1, batch], new Float32Array(batch).fill(1)))
          : emit('ConstantOfShape', `${p}.batch_ones`, [
              emit('Concat', `${p}.batch_ones_shape`, [constant('batch_sums.one', () => int64([1], [1])), emit('Shape', `${p}.batch_size`, [x], { end: { kind: 'int', value: 1 } })], { axis: { kind: 'int', value: 0 } }),
            ], { value: { kind: 'tensor', value: float32([1], [1]) } });
      const rows = emit('Reshape', `${p}.batch_rows`, [x, constant(`batch_sums.rows_${size}`, () => int64([2], [-1, size]))]);
      const sum = emit('MatMul', `${p}.batch_sum`, [ones, rows]);
      emit('Reshape', `${p}.batch_sum_shaped`, [sum, constant(`batch_sums.shape_${rest.join('x')}`, () => int64([rest.length], rest))], {}, node.outputs[0]);
      rewritten++;
    } else if (axes.join() === '0,2,3' && shape.length === 4) {
      const keepdims: Node['attributes'] = { keepdims: { kind: 'int', value: 0 } };
      const perSample = emit('ReduceSum', `${p}.per_sample`, [x, constant('batch_sums.plane_axes', () => int64([2], [2, 3]))], keepdims);
      emit('ReduceSum', `${p}.over_batch`, [perSample, constant('batch_sums.batch_axis', () => int64([1], [0]))], keepdims, node.outputs[0]);
      rewritten++;
    } else nodes.push(node);
  }
  return rewritten === 0 ? graph : { ...graph, nodes, initializers };
}
