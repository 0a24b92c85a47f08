/**
 * Gradient graphs for explanations: an eval-mode graph that outputs, in one run, the logits plus the gradients of
 * chosen class logits with respect to any named tensors (the input image, any layer's activation) and those
 * activations themselves, for a batch and several classes at once.
 *
 * Several classes, two strategies (outputs laid out [classes, batch, ...] either way):
 * - `backward` (default): one forward pass; the backward runs on the batch stacked once per class ([classes *
 *   batch, ...]), each copy seeded with its class's one-hot cotangent; forward values broadcast over the copies;
 * - `tile`: the input batch is tiled once per class and forward and backward both run on the tiled batch (any op
 *   with a gradient rule works, at the price of repeating the forward pass).
 */
import { readModelInfo } from '../models/metadata.js';
import { GraphBuilder, type Model, type Value, createModel, float32 } from '../onnx/index.js';
import { pruneGraph } from '../autodiff/forward.js';
import { addGradients } from '../autodiff/gradients.js';
import type { GradientRule } from '../autodiff/index.js';

export interface GradientGraphOptions {
  /** Tensors whose gradients are wanted: the model's input and/or activations (e.g. "features"). */
  sources: readonly string[];
  /** The logits-like tensor [batch, labels] whose class entries are differentiated; default the model's logits. */
  target?: string;
  /** Class (label) indices; one gradient per class. */
  classes: readonly number[];
  /** How several classes share a run (see above); default `backward`. */
  multiClass?: 'backward' | 'tile';
  /** Gradient rules replacing the registered ones for some op types in this graph (guided backpropagation's rectifiers). */
  rules?: ReadonlyMap<string, GradientRule>;
}

export interface GradientGraph {
  model: Model;
  /** Output names: the target [batch, labels], each non-input source's activation [batch, ...] and each source's gradient. */
  outputs: { target: string; activations: Record<string, string>; gradients: Record<string, string> };
}

export const gradientOutputName = (source: string) => `${source}.grad`;

export function buildGradientGraph(model: Model, options: GradientGraphOptions): GradientGraph {
  const info = readModelInfo(model);
  const graph = model.graph;
  const target = options.target ?? info.io.logits;
  const classes = [...options.classes];
  const k = classes.length;
  if (k === 0) throw new Error('gradient graph: give at least one class');
  if (options.sources.length === 0) throw new Error('gradient graph: give at least one source tensor');
  if (new Set(options.sources).size !== options.sources.length) throw new Error('gradient graph: a source is named twice');
  const known = new Set([...graph.inputs.map((i) => i.name), ...graph.nodes.flatMap((n) => n.outputs)]);
  for (const name of [...options.sources, target]) {
    if (!known.has(name)) throw new Error(`gradient graph: the model has no tensor named "${name}"`);
  }
  const image = graph.inputs.find((i) => i.name === info.io.input);
  if (!image) throw new Error(`the model has no input named "${info.io.input}"`);
  // Graph outputs such as "features" are Identity aliases of the layer's own value, which is what the logits use.
  const producer = new Map(graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const underlying = (name: string): string => {
    const p = producer.get(name);
    return p && p.opType === 'Identity' ? underlying(p.inputs[0]) : name;
  };

  const strategy = options.multiClass ?? 'backward';
  if (strategy !== 'backward' && strategy !== 'tile') throw new Error(`gradient graph: multiClass must be "backward" or "tile", got "${String(strategy)}"`);
  const tiled = k > 1 && strategy === 'tile';
  // When tiling, every forward value is computed on the tiled batch under a ".replicated" name.
  const replicated = (name: string) => (tiled ? `${name}.replicated` : name);
  const rename = (name: string) => (name && tiled && known.has(name) && !graph.initializers.has(name) ? replicated(name) : name);
  const b = new GraphBuilder(`${graph.name}.explain`);
  // Every model input is carried (the image and, where the model has one, the patient-metadata vector).
  const inputs = graph.inputs.map((i) => b.input(i.name, i.type.dtype, i.type.shape));
  // The model's own constants first, so that constants made here get other names.
  for (const [name, t] of graph.initializers) b.initializer(name, t);
  if (tiled) for (const input of inputs) b.op('Tile', [input, b.ints([k, ...input.type.shape.slice(1).map(() => 1)])], {}, { name: replicated(input.name) });
  const outputAliases = new Set(graph.outputs.map((o) => o.name));
  for (const node of graph.nodes) {
    // The model's output aliases are re-created below under the same names.
    if (node.opType === 'Identity' && outputAliases.has(node.outputs[0])) continue;
    // A MaxPool keeps its single output here (its gradient runs it again for the Indices): a forward MaxPool with
    // Indices has no blocked-layout kernel, and would put every layer after it (DenseNet's first block) in NCHW.
    b.node(node.opType, node.inputs.map((i) => (i ? b.value(rename(i)) : undefined)), node.attributes, { name: node.name, outputs: node.outputs.map(rename) });
  }

  const logits = b.value(replicated(underlying(target)));
  const labels = logits.type.shape[1];
  if (logits.type.shape.length !== 2 || typeof labels !== 'number') throw new Error(`gradient graph: "${target}" must be [batch, labels]`);
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c >= labels) throw new Error(`gradient graph: class ${c} is not one of the ${labels} labels`);
  }
  const oneHot = new Float32Array(k * labels);
  classes.forEach((c, i) => (oneHot[i * labels + c] = 1));
  const perClass = b.op('Reshape', [logits, b.ints([tiled ? k : 1, -1, labels])], {}, { name: `${target}.seed_per_class` });
  const seedShape = b.op('Shape', [perClass], {}, { name: `${target}.seed_shape` });
  const seed3 = b.op('Expand', [b.constant(float32([k, 1, labels], oneHot), `${target}.one_hot`), seedShape], {}, { name: `${target}.seed_expand` });
  const seed = b.op('Reshape', [seed3, b.ints([-1, labels])], {}, { name: `${target}.seed` });
  const sourceValue = (source: string) => replicated(underlying(source));
  const grads = addGradients(b, { seeds: new Map([[logits.name, seed]]), sources: options.sources.map(sourceValue), replicas: tiled ? 1 : k, blockedLayout: true, rules: options.rules });

  const firstReplica = (v: Value, name: string) => {
    if (!tiled) return b.output(v, name);
    const tail = v.type.shape.slice(1);
    if (!tail.every((d) => typeof d === 'number')) throw new Error(`gradient graph: "${name}" needs known dimensions after the batch`);
    const split = b.op('Reshape', [v, b.ints([k, -1, ...(tail as number[])])], {}, { name: `${name}.per_class` });
    const first = b.constant({ dtype: 'int64', dims: [], data: BigInt64Array.of(0n) }, `${name}.first`);
    return b.output(b.op('Gather', [split, first], { axis: 0 }, { name: `${name}.first_replica` }), name);
  };
  const outputs: GradientGraph['outputs'] = { target, activations: {}, gradients: {} };
  firstReplica(logits, target);
  for (const source of options.sources) {
    const g = grads.get(sourceValue(source));
    if (!g) throw new Error(`gradient graph: "${target}" does not depend on "${source}"`);
    const tail = g.type.shape.slice(1);
    if (!tail.every((d) => typeof d === 'number')) throw new Error(`gradient graph: "${source}" needs known dimensions after the batch`);
    const name = gradientOutputName(source);
    b.output(b.op('Reshape', [g, b.ints([k, -1, ...(tail as number[])])], {}, { name: `${name}.per_class` }), name);
    outputs.gradients[source] = name;
    if (source !== image.name) {
      firstReplica(b.value(sourceValue(source)), source);
      outputs.activations[source] = source;
    }
  }
  return { model: createModel(pruneGraph(b.build({ valueTypes: true })), { ...model.metadata }), outputs };
}
