/**
 * The learned layers of an ONNX graph written by someone else (a PyTorch export, a quantised model zoo file), in
 * execution order, with their weights resolved to float32: through Identity aliases (PyTorch deduplicates equal
 * tensors that way), DequantizeLinear of constants (QDQ models) and QLinearConv/QLinearMatMul (QOperator models).
 */
import { type Graph, type HostTensor, type Node, attributeFloat, attributeInt, consumers, describeNode, float32 } from '../../onnx/index.js';
import { dequantize, dequantizeBias } from './dequantize.js';

export type ForeignLayer =
  | { kind: 'conv'; node: Node; output: string; weight: HostTensor; bias?: HostTensor }
  | { kind: 'bn'; node: Node; input: string; weight: HostTensor; bias: HostTensor; mean: HostTensor; variance: HostTensor; epsilon: number }
  | { kind: 'linear'; node: Node; weight: HostTensor; bias?: HostTensor };

/** Every constant float tensor a graph defines, by value name (initializers, aliases, dequantised constants). */
export function resolveConstants(graph: Graph): Map<string, HostTensor> {
  const known = new Map<string, HostTensor>(graph.initializers);
  for (const node of graph.nodes) {
    const inputs = node.inputs.map((n) => (n ? known.get(n) : undefined));
    if (node.opType === 'Identity' && inputs[0]) known.set(node.outputs[0], inputs[0]);
    else if (node.opType === 'Constant' && node.attributes.value?.kind === 'tensor') known.set(node.outputs[0], node.attributes.value.value);
    else if (node.opType === 'DequantizeLinear' && inputs[0] && inputs[1]) {
      known.set(node.outputs[0], dequantize(inputs[0], inputs[1], inputs[2], attributeInt(node, 'axis', 1)));
    }
  }
  return known;
}

export function extractForeignLayers(graph: Graph): ForeignLayer[] {
  const known = resolveConstants(graph);
  const readers = consumers(graph);
  const get = (node: Node, i: number, what: string): HostTensor => {
    const t = node.inputs[i] ? known.get(node.inputs[i]) : undefined;
    if (!t) throw new Error(`${describeNode(node)}: its ${what} is not a constant in the file`);
    return t;
  };
  const optional = (node: Node, i: number) => (node.inputs[i] ? known.get(node.inputs[i]) : undefined);
  const layers: ForeignLayer[] = [];
  for (const node of graph.nodes) {
    switch (node.opType) {
      case 'Conv':
        if (!known.has(node.inputs[1])) break;
        layers.push({ kind: 'conv', node, output: node.outputs[0], weight: toFloat(get(node, 1, 'weight')), bias: maybeFloat(optional(node, 2)) });
        break;
      case 'QLinearConv': {
        const weight = dequantize(get(node, 3, 'weight'), get(node, 4, 'weight scale'), optional(node, 5), 0);
        const bias = optional(node, 8);
        layers.push({
          kind: 'conv',
          node,
          output: node.outputs[0],
          weight,
          bias: bias ? dequantizeBias(bias, get(node, 1, 'input scale'), get(node, 4, 'weight scale')) : undefined,
        });
        break;
      }
      case 'BatchNormalization':
        layers.push({
          kind: 'bn',
          node,
          input: node.inputs[0],
          weight: toFloat(get(node, 1, 'scale')),
          bias: toFloat(get(node, 2, 'bias')),
          mean: toFloat(get(node, 3, 'mean')),
          variance: toFloat(get(node, 4, 'variance')),
          epsilon: attributeFloat(node, 'epsilon', 1e-5),
        });
        break;
      case 'Gemm': {
        if (!known.has(node.inputs[1])) break;
        const b = toFloat(get(node, 1, 'weight'));
        const weight = attributeInt(node, 'transB', 0) === 1 ? b : transpose(b);
        layers.push({ kind: 'linear', node, weight, bias: maybeFloat(optional(node, 2)) });
        break;
      }
      case 'MatMul':
      case 'QLinearMatMul': {
        const quantized = node.opType === 'QLinearMatMul';
        if (!known.has(node.inputs[quantized ? 3 : 1])) break;
        const b = quantized ? dequantize(get(node, 3, 'weight'), get(node, 4, 'weight scale'), optional(node, 5), 1) : toFloat(get(node, 1, 'weight'));
        layers.push({ kind: 'linear', node, weight: transpose(b), bias: biasAddedAfter(node, readers, known) });
        break;
      }
    }
  }
  return layers;
}

/** The bias of a MatMul + Add pair (float or QLinearAdd), exported that way by PyTorch and quantisers. */
function biasAddedAfter(node: Node, readers: Map<string, Node[]>, known: Map<string, HostTensor>): HostTensor | undefined {
  const next = readers.get(node.outputs[0]);
  if (next?.length !== 1) return undefined;
  const add = next[0];
  if (add.opType === 'Add') {
    const other = add.inputs.find((n) => n !== node.outputs[0]);
    return other ? maybeFloat(known.get(other)) : undefined;
  }
  if (add.opType === 'QLinearAdd') {
    // Inputs: A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point; the constant is B.
    const [b, scale, zeroPoint] = [3, 4, 5].map((i) => known.get(add.inputs[i]));
    return b && scale ? dequantize(b, scale, zeroPoint, 0) : undefined;
  }
  return undefined;
}

function toFloat(t: HostTensor): HostTensor {
  return t.dtype === 'float32' ? t : float32(t.dims, Array.from(t.data as ArrayLike<number>, Number));
}

function maybeFloat(t: HostTensor | undefined): HostTensor | undefined {
  return t ? toFloat(t) : undefined;
}

function transpose(t: HostTensor): HostTensor {
  const [rows, cols] = t.dims;
  const src = toFloat(t).data as Float32Array;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
  return float32([cols, rows], out);
}
