/**
 * The safety subgraph inside the model file, so that the server, the CLI and the browser (onnxruntime-web, same
 * file) compute identical scores: the model's `features` map is average-pooled, centred, projected on the PPCA
 * basis and whitened; the out-of-distribution score is the scaled squared Mahalanobis distance, and the heads are
 * logistic regressions on the whitened coordinates. Every node and constant is named `safety.*`, so the subgraph
 * can be removed and fitted again.
 */
import { readModelInfo } from '../models/metadata.js';
import { GraphBuilder, type Model, float32 } from '../onnx/index.js';
import type { GaussianModel, LogisticModel } from './detector.js';

export const SAFETY_OUTPUTS = { ood: 'safety.ood', heads: 'safety.heads' } as const;
const PREFIX = 'safety.';

/** The model without any safety subgraph (nodes, constants and outputs named `safety.*`). */
export function stripSafetyGraph(model: Model): Model {
  const g = model.graph;
  return {
    ...model,
    metadata: { ...model.metadata },
    graph: {
      ...g,
      nodes: g.nodes.filter((n) => !n.name.startsWith(PREFIX)),
      outputs: g.outputs.filter((o) => !o.name.startsWith(PREFIX)),
      initializers: new Map([...g.initializers].filter(([name]) => !name.startsWith(PREFIX))),
      valueInfo: g.valueInfo.filter((v) => !v.name.startsWith(PREFIX)),
    },
  };
}

/** A copy of the model with the safety outputs computed from its `features` map (replacing any it had). */
export function attachSafetyGraph(model: Model, gaussian: GaussianModel, heads: readonly LogisticModel[]): Model {
  const info = readModelInfo(model);
  const base = stripSafetyGraph(model);
  const b = GraphBuilder.from(base.graph);
  // Read the layer's own value, not the Identity alias that names it as a graph output: graph rewriters (the
  // explanation-gradient graph) re-create output aliases and expect no other node to read them.
  const features = b.value(underlying(base, info.io.features));
  const c = gaussian.channels;
  const k = gaussian.components;
  if (features.type.shape.length !== 4 || features.type.shape[1] !== c) {
    throw new Error(`the model's features "${info.io.features}" are ${JSON.stringify(features.type.shape)}; the detector was fitted on ${c} channels`);
  }
  const node = (op: string, inputs: Parameters<typeof b.op>[1], name: string, attributes: Parameters<typeof b.op>[2] = {}) =>
    b.op(op, inputs, attributes, { name: `${PREFIX}${name}`, outputs: [`${PREFIX}${name}`] });
  const constant = (name: string, dims: number[], data: Float32Array) => b.initializer(`${PREFIX}${name}`, float32(dims, data));

  const pooled = node('Flatten', [node('GlobalAveragePool', [features], 'pool')], 'pooled', { axis: 1 });
  const centred = node('Sub', [pooled, constant('mean', [c], gaussian.mean)], 'centred');
  const projected = node('MatMul', [centred, constant('basis', [c, k], gaussian.basis)], 'projected');
  const whitened = node('Mul', [projected, constant('inverse_std', [k], Float32Array.from(gaussian.variances, (v) => 1 / Math.sqrt(v)))], 'whitened');
  const inside = node('ReduceSumSquare', [whitened], 'inside', { axes: [1], keepdims: 0 });
  const total = node('ReduceSumSquare', [centred], 'total', { axes: [1], keepdims: 0 });
  const along = node('ReduceSumSquare', [projected], 'along', { axes: [1], keepdims: 0 });
  // Rounding can make the residual slightly negative for a feature lying in the basis; it is a squared length.
  const residual = node('Relu', [node('Sub', [total, along], 'residual_raw')], 'residual');
  const outside = node('Mul', [residual, constant('inverse_residual_variance', [], float32([], [1 / gaussian.residualVariance]).data)], 'outside');
  const distance = node('Add', [inside, outside], 'distance');
  const ood = b.op('Mul', [distance, constant('inverse_channels', [], float32([], [1 / c]).data)], {}, { name: `${PREFIX}ood`, outputs: [SAFETY_OUTPUTS.ood] });
  b.output(ood);

  const h = heads.length;
  const weights = new Float32Array(k * Math.max(h, 1));
  const biases = new Float32Array(Math.max(h, 1));
  heads.forEach((head, j) => {
    if (head.weights.length !== k) throw new Error(`head ${j} has ${head.weights.length} weights for ${k} whitened coordinates`);
    for (let i = 0; i < k; i++) weights[i * h + j] = head.weights[i];
    biases[j] = head.bias;
  });
  if (h > 0) {
    const logits = node('Add', [node('MatMul', [whitened, constant('head_weights', [k, h], weights)], 'head_matmul'), constant('head_bias', [h], biases)], 'head_logits');
    b.output(b.op('Sigmoid', [logits], {}, { name: `${PREFIX}heads`, outputs: [SAFETY_OUTPUTS.heads] }));
  }
  return { ...base, graph: b.build() };
}

function underlying(model: Model, name: string): string {
  const producer = model.graph.nodes.find((n) => n.outputs.includes(name));
  return producer?.opType === 'Identity' ? underlying(model, producer.inputs[0]) : name;
}

/** Throws unless the model's graph has the outputs its safety metadata names. */
export function assertSafetyOutputs(model: Model, source = 'model'): void {
  const info = readModelInfo(model, source);
  if (!info.safety) return;
  const outputs = new Set(model.graph.outputs.map((o) => o.name));
  const needed = [info.safety.outputs.ood, ...(info.safety.heads.length > 0 ? [info.safety.outputs.heads] : [])];
  for (const name of needed) {
    if (!outputs.has(name)) throw new Error(`${source}: its safety metadata names the output "${name}", which the graph does not have; fit the checks again with \`cxr calibrate\``);
  }
}
