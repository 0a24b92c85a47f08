/**
 * Gradient graphs for explanations: an eval-mode graph that outputs, in one run, the logits plus the gradients of
 * chosen class logits with respect to any named tensors (the input image, any layer's activation) and those
 * activations themselves, for a batch and several classes at once.
 *
 * Several classes: the batch is replicated once per class (Tile) and each replica's backward is seeded with its
 * class's one-hot cotangent, so one run answers every class. Only the layers downstream of the sources are
 * replicated: the layers before the first source run once. Outputs are laid out [classes, batch, ...].
 */
import { readModelInfo } from '../models/metadata.js';
import { GraphBuilder, type Model, type Node, type Value, createModel, float32 } from '../onnx/index.js';
import { pruneGraph, withPoolingIndices } from './forward.js';
import { addGradients } from './gradients.js';

export interface GradientGraphOptions {
  /** Tensors whose gradients are wanted: the model's input and/or activations (e.g. "features"). */
  sources: readonly string[];
  /** The logits-like tensor [batch, labels] whose class entries are differentiated; default the model's logits. */
  target?: string;
  /** Class (label) indices; one gradient per class. */
  classes: readonly number[];
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
  if (!graph.inputs.some((i) => i.name === info.io.input)) throw new Error(`the model has no input named "${info.io.input}"`);
  // Graph outputs such as "features" are Identity aliases of the layer's own value, which is what the logits use.
  const producer = new Map(graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const underlying = (name: string): string => {
    const p = producer.get(name);
    return p && p.opType === 'Identity' ? underlying(p.inputs[0]) : name;
  };

  // With several classes the part of the forward pass that the backward runs through (everything downstream of a
  // source) is computed on the batch replicated once per class, under ".replicated" names; the rest runs once.
  // Grad-CAM on the last feature map thus replicates only the classifier head, not the whole network.
  const sourceValues = new Set(options.sources.map(underlying));
  const downstream = new Set(sourceValues);
  for (const node of graph.nodes) {
    if (node.inputs.some((i) => i && downstream.has(i))) for (const o of node.outputs) if (o) downstream.add(o);
  }
  const replicatedName = (name: string) => (k === 1 ? name : `${name}.replicated`);
  const b = new GraphBuilder(`${graph.name}.explain`);
  for (const i of graph.inputs) b.input(i.name, i.type.dtype, i.type.shape);
  // The model's own constants first, so that constants made here get other names.
  for (const [name, t] of graph.initializers) b.initializer(name, t);
  /** The replicated copy of a value: computed as such downstream of a source, tiled from the single copy elsewhere. */
  const replicated = (name: string): string => {
    const copy = replicatedName(name);
    if (!b.has(copy)) {
      const rank = b.value(name).type.shape.length;
      b.op('Tile', [b.value(name), b.ints([k, ...Array(rank - 1).fill(1)])], {}, { name: `${name}.tile_per_class`, outputs: [copy] });
    }
    return copy;
  };
  const outputAliases = new Set(graph.outputs.map((o) => o.name));
  for (const node of graph.nodes) {
    // The model's output aliases are re-created below under the same names.
    if (node.opType === 'Identity' && outputAliases.has(node.outputs[0])) continue;
    const n: Node = withPoolingIndices(node);
    const perClass = n.inputs.some((i) => i && downstream.has(i));
    const input = (i: string) => (!i ? undefined : perClass && !graph.initializers.has(i) ? b.value(replicated(i)) : b.value(i));
    b.node(n.opType, n.inputs.map(input), n.attributes, { name: n.name, outputs: perClass ? n.outputs.map((o) => (o ? replicatedName(o) : o)) : n.outputs });
  }

  const logits = b.value(replicated(underlying(target)));
  const labels = logits.type.shape[1];
  if (logits.type.shape.length !== 2 || typeof labels !== 'number') throw new Error(`gradient graph: "${target}" must be [batch, labels]`);
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c >= labels) throw new Error(`gradient graph: class ${c} is not one of the ${labels} labels`);
  }
  const oneHot = new Float32Array(k * labels);
  classes.forEach((c, i) => (oneHot[i * labels + c] = 1));
  const perClass = b.op('Reshape', [logits, b.ints([k, -1, labels])], {}, { name: `${target}.seed_per_class` });
  const seedShape = b.op('Shape', [perClass], {}, { name: `${target}.seed_shape` });
  const seed3 = b.op('Expand', [b.constant(float32([k, 1, labels], oneHot), `${target}.one_hot`), seedShape], {}, { name: `${target}.seed_expand` });
  const seed = b.op('Reshape', [seed3, b.ints([-1, labels])], {}, { name: `${target}.seed` });
  const sourceValue = (source: string) => replicated(underlying(source));
  const grads = addGradients(b, { seeds: new Map([[logits.name, seed]]), sources: options.sources.map(sourceValue) });

  const firstReplica = (v: Value, name: string) => {
    if (k === 1) return b.output(v, name);
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
    if (source !== info.io.input) {
      // A source computed before any other source exists once; otherwise take its first replica.
      const single = underlying(source);
      if (k > 1 && b.has(single)) b.output(b.value(single), source);
      else firstReplica(b.value(sourceValue(source)), source);
      outputs.activations[source] = source;
    }
  }
  return { model: createModel(pruneGraph(b.build()), { ...model.metadata }), outputs };
}
