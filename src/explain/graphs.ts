/**
 * The gradient graphs explanations run, built from a model with autodiff, and the layers CAM methods may read.
 * - CAM graph (one per layer): logits, the layer's activation and the gradient of every requested finding's logit
 *   with respect to it, in one run; only the layers after the chosen one are replicated per finding.
 * - Input-gradient graph (one per model): row r of the batch is differentiated for the finding selected by row r
 *   of a one-hot input, so any mix of (image, finding) pairs (noisy copies, path points) shares one session.
 */
import type { GradientRule } from '../autodiff/index.js';
import { buildGradientGraph, gradientOutputName } from './gradient-graph.js';
import { readModelInfo } from '../models/metadata.js';
import { GraphBuilder, type Model, type Node, attributeFloat, createModel, inferGraph } from '../onnx/index.js';
import type { AttentionBlock } from './types.js';

/** A 4-D activation with known sizes: [batch, channels, height, width], or channels last where the model declares it (models/layouts.ts). */
function isFeatureMap(shape: readonly unknown[] | undefined): boolean {
  return shape !== undefined && shape.length === 4 && shape.slice(1).every((d) => typeof d === 'number');
}

/** Every tensor a CAM method can read: the model's 4-D activations, in graph order (graph outputs by their own names). */
export function layerNames(model: Model): string[] {
  const types = inferGraph(model.graph);
  const names = [...model.graph.outputs.map((o) => o.name), ...model.graph.nodes.flatMap((n) => n.outputs)];
  return [...new Set(names)].filter((name) => name && isFeatureMap(types.get(name)?.shape));
}

/**
 * The default CAM layer: the model's feature map, or, where the head rectifies it first (torchvision's DenseNet
 * applies F.relu after `features`, whose last module norm5 is not rectified), that ReLU's output: the tensor the
 * classifier actually pools, so that CAMs weigh what the logits see.
 */
export function defaultLayer(model: Model): string {
  const { io } = readModelInfo(model);
  const value = underlying(model, io.features);
  const consumers = model.graph.nodes.filter((n) => n.inputs.includes(value) && n.opType !== 'Identity');
  return consumers.length === 1 && consumers[0].opType === 'Relu' ? consumers[0].outputs[0] : io.features;
}

/** The value behind a name, seen through Identity aliases (graph outputs are aliases of layer outputs). */
export function underlying(model: Model, name: string): string {
  const producer = new Map(model.graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  let value = name;
  for (let p = producer.get(value); p?.opType === 'Identity'; p = producer.get(value)) value = p.inputs[0];
  return value;
}

/** The layer to read, checked: unknown or non-4-D names fail listing where to look. */
export function resolveLayer(model: Model, requested?: string): string {
  if (requested === undefined) return defaultLayer(model);
  const names = layerNames(model);
  if (names.includes(requested)) return requested;
  const known = new Set([...model.graph.inputs.map((i) => i.name), ...model.graph.nodes.flatMap((n) => n.outputs)]);
  const why = known.has(requested) ? 'is not a 4-D feature map [batch, channels, height, width]' : 'is not a tensor of the model';
  const suggestions = blockOutputs(model, names);
  throw new Error(
    `layer "${requested}" ${why}; the default is "${defaultLayer(model)}", the blocks end at ${suggestions.join(', ')} ` +
      `(any of the model's ${names.length} 4-D activations can be named)`,
  );
}

/** The last 4-D activation produced under each block of the model (its stages), for error messages and listings. */
export function blockOutputs(model: Model, names = layerNames(model)): string[] {
  const { blocks } = readModelInfo(model);
  const featureMaps = new Set(names);
  const out: string[] = [];
  for (const block of blocks) {
    const prefixes = block.split('|');
    const last = model.graph.nodes.filter((n) => prefixes.some((p) => n.name === p || n.name.startsWith(`${p}.`)) && featureMaps.has(n.outputs[0])).at(-1);
    if (last && !out.includes(last.outputs[0])) out.push(last.outputs[0]);
  }
  return out;
}

export interface CamGraph {
  model: Model;
  layer: string;
  /** Label indices whose gradients the graph outputs, in output order. */
  labels: number[];
  outputs: { logits: string; activation: string; gradient: string };
}

export function buildCamGraph(model: Model, layer: string, labels: readonly number[]): CamGraph {
  const graph = buildGradientGraph(model, { sources: [layer], classes: labels });
  return { model: graph.model, layer, labels: [...labels], outputs: { logits: graph.outputs.target, activation: graph.outputs.activations[layer], gradient: graph.outputs.gradients[layer] } };
}

export interface InputGradientGraph {
  model: Model;
  /** Input [batch, labels]: row r selects (one-hot) the finding row r is differentiated for. */
  select: string;
  /** Output [batch, 1]: each row's selected logit. */
  selected: string;
  /** Output [1, batch, C, H, W]. */
  gradient: string;
  /** Per requested tensor (`tensors` option), the output holding its gradient [1, batch, ...]. */
  tensorGradients: Record<string, string>;
}

export interface InputGradientGraphOptions {
  /** Activations whose gradients are output beside the input's (FullGrad's bias layers). */
  tensors?: readonly string[];
  /** Gradient rules replacing the registered ones (guided-rules.ts's rectifiers). */
  rules?: ReadonlyMap<string, GradientRule>;
}

export const SELECT_INPUT = 'explain.select';
const SELECTED = 'explain.selected';

export function buildInputGradientGraph(model: Model, options: InputGradientGraphOptions = {}): InputGradientGraph {
  const info = readModelInfo(model);
  const b = GraphBuilder.from(model.graph);
  // The layer's own value, not the graph output alias (which the gradient graph re-creates).
  const logits = b.value(underlying(model, info.io.logits));
  const select = b.input(SELECT_INPUT, 'float32', logits.type.shape);
  const picked = b.op('Mul', [logits, select], {}, { name: 'explain.select_mul' });
  b.output(b.op('ReduceSum', [picked, b.ints([1])], { keepdims: 1 }, { name: SELECTED }));
  const selecting = createModel(b.build(), { ...model.metadata });
  const tensors = options.tensors ?? [];
  const graph = buildGradientGraph(selecting, { sources: [info.io.input, ...tensors], target: SELECTED, classes: [0], rules: options.rules });
  return {
    model: graph.model,
    select: SELECT_INPUT,
    selected: graph.outputs.target,
    gradient: gradientOutputName(info.io.input),
    tensorGradients: Object.fromEntries(tensors.map((t) => [t, graph.outputs.gradients[t]])),
  };
}

/** A layer that adds a per-channel bias to a 4-D activation: its output tensor and that bias. */
export interface BiasLayer {
  tensor: string;
  bias: Float32Array;
}

/**
 * FullGrad's bias layers, as pytorch-grad-cam's fullgrad_cam.py picks them (Conv2d and BatchNorm2d with a bias), in
 * graph order, among the layers the logits depend on: every Conv with a bias input, and every BatchNormalization with its inference-time bias
 * B - mean * scale / sqrt(var + epsilon) (the official implementation's tensor_extractor.py). A BatchNorm folded
 * into its Conv leaves that Conv's bias, which is the same number on the same output tensor.
 */
export function biasLayers(model: Model): BiasLayer[] {
  const types = inferGraph(model.graph);
  // Only layers the logits depend on (a side head's convolutions take no part in the score).
  const feedsLogits = new Set([underlying(model, readModelInfo(model).io.logits)]);
  for (const node of [...model.graph.nodes].reverse()) if (node.outputs.some((o) => feedsLogits.has(o))) for (const i of node.inputs) feedsLogits.add(i);
  const constant = (name: string | undefined): Float64Array | undefined => {
    const t = name ? model.graph.initializers.get(name) : undefined;
    return t && (t.dtype === 'float32' || t.dtype === 'float64') ? Float64Array.from(t.data as ArrayLike<number>) : undefined;
  };
  const out: BiasLayer[] = [];
  for (const node of model.graph.nodes) {
    if (!feedsLogits.has(node.outputs[0]) || !isFeatureMap(types.get(node.outputs[0])?.shape)) continue;
    if (node.opType === 'Conv') {
      const bias = constant(node.inputs[2]);
      if (bias) out.push({ tensor: node.outputs[0], bias: Float32Array.from(bias) });
    } else if (node.opType === 'BatchNormalization') {
      const [scale, shift, mean, variance] = node.inputs.slice(1, 5).map(constant);
      if (!scale || !shift || !mean || !variance) throw new Error(`BatchNormalization "${node.name}": FullGrad needs its parameters as constants`);
      const epsilon = attributeFloat(node, 'epsilon', 1e-5);
      out.push({ tensor: node.outputs[0], bias: Float32Array.from(shift, (b, c) => b - (mean[c] * scale[c]) / Math.sqrt(variance[c] + epsilon)) });
    }
  }
  return out;
}

export interface HeadGraph {
  model: Model;
  /** The layer, now the graph's input [rows, c, h, w]. */
  input: string;
  logits: string;
}

/**
 * The part of the network after `layer`, with the layer as its input: what Ablation-CAM runs once per ablated
 * channel. Refused when the rest of the network also reads tensors computed before the layer (a skip connection
 * around it), which a cut at the layer cannot feed.
 */
export function buildHeadGraph(model: Model, layer: string): HeadGraph {
  const info = readModelInfo(model);
  const cut = underlying(model, layer);
  const logits = underlying(model, info.io.logits);
  const after = new Set([cut]);
  const nodes = model.graph.nodes.filter((node) => {
    if (!node.inputs.some((i) => after.has(i))) return false;
    for (const o of node.outputs) if (o) after.add(o);
    return true;
  });
  if (!after.has(logits)) throw new Error(`the logits do not depend on layer "${layer}"`);
  const available = new Set([...after, ...model.graph.initializers.keys(), ...model.graph.inputs.filter((i) => i.name !== info.io.input).map((i) => i.name), '']);
  const needed = new Set([logits]);
  const used: Node[] = [];
  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k];
    if (!node.outputs.some((o) => needed.has(o))) continue;
    used.push(node);
    for (const i of node.inputs) {
      if (!available.has(i)) throw new Error(`the network after layer "${layer}" also reads "${i}", computed before it (a connection around the layer); choose a layer the rest of the network depends on alone`);
      needed.add(i);
    }
  }
  const type = inferGraph(model.graph).get(cut);
  if (!type || type.shape.length !== 4) throw new Error(`layer "${layer}" has no known 4-D shape`);
  const graph = {
    ...model.graph,
    nodes: used.reverse(),
    initializers: new Map([...model.graph.initializers].filter(([name]) => needed.has(name))),
    valueInfo: model.graph.valueInfo.filter((v) => needed.has(v.name)),
    inputs: [{ name: cut, type: { dtype: 'float32' as const, shape: ['rows', ...type.shape.slice(1)] } }, ...model.graph.inputs.filter((i) => i.name !== info.io.input && needed.has(i.name))],
    outputs: [{ name: logits, type: { dtype: 'float32' as const, shape: ['rows', info.labels.length] } }],
  };
  return { model: { ...model, graph }, input: cut, logits };
}

/**
 * The model's window-attention blocks in graph order, found by the names models/zoo/swin.ts gives them: the
 * Softmax `<block>.attn.softmax` ([batch, windows, heads, tokens, tokens]), the block's grid from `<block>.norm1`
 * ([batch, height, width, channels]) and its shift from the start of the cyclic roll's Slice
 * (`<block>.attn.roll_h.tail`, `roll_w`; absent where unshifted). Empty for a CNN.
 */
export function attentionBlocks(model: Model): AttentionBlock[] {
  const types = inferGraph(model.graph);
  const nodes = new Map(model.graph.nodes.map((n) => [n.name, n]));
  const rollStart = (name: string): number => {
    const slice = nodes.get(name);
    const starts = slice ? model.graph.initializers.get(slice.inputs[1]) : undefined;
    return starts ? Number(starts.data[0]) : 0;
  };
  return model.graph.nodes
    .filter((n) => n.opType === 'Softmax' && n.name.endsWith('.attn.softmax'))
    .map((softmax) => {
      const path = softmax.name.slice(0, -'.softmax'.length);
      const block = path.slice(0, -'.attn'.length);
      const [, windows, heads, tokens] = types.get(softmax.outputs[0])?.shape ?? [];
      const [, height, width] = types.get(`${block}.norm1`)?.shape ?? [];
      const windowSize = Math.sqrt(Number(tokens));
      if (![windows, heads, height, width].every((d) => typeof d === 'number') || !Number.isInteger(windowSize)) {
        throw new Error(`attention block "${block}": its softmax [batch, windows, heads, tokens, tokens] or norm1 [batch, height, width, channels] has no fixed sizes`);
      }
      const geometry: AttentionBlock = { tensor: softmax.outputs[0], windows: windows as number, heads: heads as number, height: height as number, width: width as number, windowSize, shift: [rollStart(`${path}.roll_h.tail`), rollStart(`${path}.roll_w.tail`)] as const };
      if (Math.ceil(geometry.height / windowSize) * Math.ceil(geometry.width / windowSize) !== geometry.windows) {
        throw new Error(`attention block "${block}": ${geometry.windows} windows do not tile a ${geometry.height}x${geometry.width} grid in ${windowSize}x${windowSize} windows`);
      }
      return geometry;
    });
}
