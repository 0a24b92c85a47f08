/**
 * Importing weights by structure when names are lost: PyTorch's default ONNX export folds each BatchNorm into the
 * convolution before it and renames the weights (onnx::Conv_123), and quantised model-zoo files keep no names.
 * The learned layers of both graphs are walked in execution order and paired by kind and shape; a file convolution
 * whose BatchNorm was folded into it sets our BatchNorm to the identity with the folded bias.
 */
import { type Graph, type HostTensor, type Node, attributeFloat, float32, shapeToString } from '../../onnx/index.js';
import type { ForeignLayer } from './foreign-layers.js';
import type { StateDict } from './state-dict.js';
import { isMetadataHead } from '../zoo/index.js';

type OurLayer =
  | { kind: 'conv'; node: Node; output: string; weight: string; bias?: string }
  | { kind: 'bn'; node: Node; input: string; names: [string, string, string, string]; epsilon: number }
  | { kind: 'linear'; node: Node; weight: string; bias: string };

export interface StructuralImport {
  dict: StateDict;
  /** Our BatchNorm layers set to the identity because the file had folded them into the convolution. */
  folded: string[];
}

export function alignByStructure(ours: Graph, foreign: ForeignLayer[], source: string): StructuralImport {
  const layers = ourLayers(ours);
  const dict: StateDict = new Map();
  const folded: string[] = [];
  const shapes = (t: HostTensor) => shapeToString(t.dims);
  let j = 0;
  const next = (kind: ForeignLayer['kind'], ourNode: Node, position: number): ForeignLayer => {
    const f = foreign[j];
    if (!f || f.kind !== kind) {
      throw new Error(
        `${source}: its layers do not line up with the model's: our ${ordinal(position + 1)} learned layer "${ourNode.name}" is a ${kind}, ` +
          (f ? `the file's ${ordinal(j + 1)} is a ${f.kind} ("${f.node.name}")` : 'the file has no more layers'),
      );
    }
    j++;
    return f;
  };
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i];
    if (layer.kind === 'conv') {
      const f = next('conv', layer.node, i) as Extract<ForeignLayer, { kind: 'conv' }>;
      const expected = ours.initializers.get(layer.weight) as HostTensor;
      const fits = f.weight.dims.length === 4 && f.weight.dims[0] === expected.dims[0] && f.weight.dims[2] === expected.dims[2] && f.weight.dims[3] === expected.dims[3];
      if (!fits) {
        throw new Error(`${source}: convolution "${f.node.name}" has weight ${shapes(f.weight)} where the model's "${layer.node.name}" needs ${shapes(expected)}`);
      }
      dict.set(layer.weight, f.weight);
      const bn = layers[i + 1];
      if (bn?.kind === 'bn' && bn.input === layer.output) {
        const fb = foreign[j];
        if (fb?.kind === 'bn' && fb.input === f.output) {
          setBatchNorm(dict, bn.names, [fb.weight, fb.bias, fb.mean, fb.variance]);
          j++;
        } else {
          setIdentityBatchNorm(dict, bn, f.bias ?? float32([expected.dims[0]]));
          folded.push(bn.node.name);
        }
        i++;
      } else if (layer.bias) {
        dict.set(layer.bias, f.bias ?? float32([expected.dims[0]]));
      } else if (f.bias) {
        throw new Error(`${source}: convolution "${f.node.name}" has a bias but the model's "${layer.node.name}" has neither a bias nor a BatchNorm to take it`);
      }
    } else if (layer.kind === 'bn') {
      const f = next('bn', layer.node, i) as Extract<ForeignLayer, { kind: 'bn' }>;
      setBatchNorm(dict, layer.names, [f.weight, f.bias, f.mean, f.variance]);
    } else {
      const f = next('linear', layer.node, i) as Extract<ForeignLayer, { kind: 'linear' }>;
      dict.set(layer.weight, f.weight);
      dict.set(layer.bias, f.bias ?? float32([f.weight.dims[0]]));
    }
  }
  if (j < foreign.length) {
    throw new Error(`${source}: has ${foreign.length} learned layers, the model only ${j} ("${foreign[j].node.name}" and later are left over)`);
  }
  return { dict, folded };
}

function setBatchNorm(dict: StateDict, names: readonly string[], tensors: HostTensor[]): void {
  names.forEach((name, k) => dict.set(name, tensors[k]));
}

/** weight 1, mean 0, variance 1 - epsilon (so sqrt(variance + epsilon) is exactly 1), bias from the folded conv. */
function setIdentityBatchNorm(dict: StateDict, bn: Extract<OurLayer, { kind: 'bn' }>, bias: HostTensor): void {
  const c = bias.dims[0];
  const filled = (v: number) => float32([c], new Float32Array(c).fill(v));
  setBatchNorm(dict, bn.names, [filled(1), bias, filled(0), filled(1 - bn.epsilon)]);
}

function ourLayers(graph: Graph): OurLayer[] {
  const layers: OurLayer[] = [];
  for (const node of graph.nodes) {
    if (isMetadataHead(node.name)) continue;
    if (node.opType === 'Conv') layers.push({ kind: 'conv', node, output: node.outputs[0], weight: node.inputs[1], bias: node.inputs[2] || undefined });
    else if (node.opType === 'BatchNormalization') {
      const [, w, b, m, v] = node.inputs;
      layers.push({ kind: 'bn', node, input: node.inputs[0], names: [w, b, m, v], epsilon: attributeFloat(node, 'epsilon', 1e-5) });
    } else if (node.opType === 'Gemm') layers.push({ kind: 'linear', node, weight: node.inputs[1], bias: node.inputs[2] });
  }
  return layers;
}

function ordinal(n: number): string {
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th';
  return `${n}${suffix}`;
}
