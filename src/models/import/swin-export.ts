/**
 * Swin Transformers written by torch.onnx.export (torch 1.13: opset 14 or 17, constant folding on or off, fixed or
 * dynamic batch). The exporter keeps torchvision's names for the patch-embedding convolution, the LayerNorms, the
 * linear biases and the head, but a linear layer becomes a MatMul with the weight transposed, which constant folding
 * stores under a new name (onnx::MatMul_123), and each block's relative position bias (its table gathered by the
 * fixed index, viewed and permuted) is folded into one [1, heads, 49, 49] constant. LayerNorm is one op from opset
 * 17 and ReduceMean, Sub, Pow, Add, Sqrt, Div, Mul, Add below it.
 *
 * The file's learned layers are read in execution order and paired, kind by kind, with the zoo model's; each pair is
 * checked (shapes, every torchvision name the file kept, LayerNorm epsilons) and each folded bias is turned back
 * into its table through the model's own index, which must reproduce every one of its entries. Nothing in the file
 * is run; what cannot be paired or recovered exactly is refused, naming it.
 */
import { type Graph, type HostTensor, type Model, type Node, attributeFloat, attributeInt, attributeInts, consumers, describeNode, elementCount, float32, producers, shapeToString } from '../../onnx/index.js';
import { type ParameterRole, parameterSlots } from '../parameters.js';
import { SWIN_T } from '../zoo/swin.js';
import type { ArchitectureName } from '../zoo/index.js';
import { resolveConstants } from './foreign-layers.js';
import type { StateDict } from './state-dict.js';

/** A constant the file's layer reads, with the name the file stores it under (torchvision's, or the exporter's). */
interface Stored {
  name: string;
  tensor: HostTensor;
}

type Kind = 'convolution' | 'LayerNorm' | 'linear' | 'position bias';

export type SwinFileLayer =
  | { kind: 'convolution'; node: Node; weight: Stored; bias?: Stored }
  | { kind: 'LayerNorm'; node: Node; weight: Stored; bias: Stored; epsilon: number }
  /** weight as torchvision stores it, [out, in] */
  | { kind: 'linear'; node: Node; weight: Stored; bias?: Stored }
  /** Folded: the gathered bias [1, heads, tokens, tokens] or [heads, ...]. Not folded: the table and the file's index. */
  | { kind: 'position bias'; node: Node; gathered?: Stored; table?: Stored; index?: HostTensor };

/** Our layer: the parameter names of one torchvision module, by the last part of the name. */
interface ModelLayer {
  kind: Kind;
  path: string;
  names: Map<string, string>;
  /** The node that reads its first parameter: a LayerNormalization (its epsilon), the bias table's Gather (its index). */
  node: Node;
}

const KIND_OF_ROLE: Partial<Record<ParameterRole, Kind>> = {
  'conv.weight': 'convolution',
  'conv.bias': 'convolution',
  'ln.weight': 'LayerNorm',
  'ln.bias': 'LayerNorm',
  'linear.weight': 'linear',
  'linear.bias': 'linear',
  'attn.relative_position_bias_table': 'position bias',
};

/** Architectures by their number of attention blocks (only Swin-T is in the zoo). */
const SWIN_BLOCKS: [ArchitectureName, number][] = [['swin_t', SWIN_T.depths.reduce((a, b) => a + b, 0)]];

/** torchvision's shifted-window mask: 0 within a region, -100 across; a file may hold it folded to a constant. */
const MASK_VALUES = new Set([0, -100]);

/**
 * The learned layers of a graph with window attention (an attention-logit bias shaped [heads, tokens, tokens] or a
 * bias table gathered), in execution order; undefined for any other graph.
 */
export function readSwinExport(graph: Graph, source: string): SwinFileLayer[] | undefined {
  const known = resolveConstants(graph);
  const made = producers(graph);
  const readers = consumers(graph);
  const constant = (name: string | undefined): Stored | undefined => {
    const tensor = name ? known.get(name) : undefined;
    return tensor && name ? { name, tensor } : undefined;
  };
  const floatConstant = (name: string | undefined) => {
    const c = constant(name);
    return c?.tensor.dtype === 'float32' ? c : undefined;
  };
  const soleReader = (value: string, opType: string) => {
    const next = readers.get(value);
    return next?.length === 1 && next[0].opType === opType ? next[0] : undefined;
  };
  /** A float constant among a node's inputs (a Mul's weight, an Add's bias). */
  const withConstant = (node: Node | undefined): Stored | undefined => (node ? (floatConstant(node.inputs[0]) ?? floatConstant(node.inputs[1])) : undefined);

  const layers: SwinFileLayer[] = [];
  for (const node of graph.nodes) {
    switch (node.opType) {
      case 'Conv': {
        const weight = floatConstant(node.inputs[1]);
        if (weight) layers.push({ kind: 'convolution', node, weight, bias: floatConstant(node.inputs[2]) });
        break;
      }
      case 'LayerNormalization': {
        const [weight, bias] = [floatConstant(node.inputs[1]), floatConstant(node.inputs[2])];
        if (weight && bias && attributeInt(node, 'axis', -1) === -1) layers.push({ kind: 'LayerNorm', node, weight, bias, epsilon: attributeFloat(node, 'epsilon', 1e-5) });
        break;
      }
      case 'Div': {
        // Decomposed LayerNorm: (x - mean) / sqrt(mean((x - mean)^2) + eps) * weight + bias, over the last axis.
        const norm = decomposedNorm(node, made, known);
        if (norm === undefined) break;
        const scale = soleReader(node.outputs[0], 'Mul');
        const shift = scale && soleReader(scale.outputs[0], 'Add');
        const [weight, bias] = [withConstant(scale), withConstant(shift)];
        if (weight && bias) layers.push({ kind: 'LayerNorm', node, weight, bias, epsilon: norm });
        break;
      }
      case 'MatMul': {
        const weight = transposedWeight(node.inputs[1], known, made);
        if (!weight) break;
        const add = soleReader(node.outputs[0], 'Add');
        const bias = withConstant(add);
        layers.push({ kind: 'linear', node, weight, bias: bias?.tensor.dims.length === 1 ? bias : undefined });
        break;
      }
      case 'Gemm': {
        const b = floatConstant(node.inputs[1]);
        if (!b) break;
        const weight = attributeInt(node, 'transB', 0) === 1 ? b : { name: b.name, tensor: transpose(b.tensor) };
        layers.push({ kind: 'linear', node, weight, bias: floatConstant(node.inputs[2]) });
        break;
      }
      case 'Add': {
        // q k^T + bias: the folded bias is [1, heads, tokens, tokens] (or without the leading 1).
        const scores = node.inputs.find((name) => made.get(name)?.opType === 'MatMul' && !known.has(name));
        const bias = withConstant(node);
        const dims = bias ? withoutLeadingOne(bias.tensor.dims) : [];
        if (scores && dims.length === 3 && dims[1] === dims[2]) layers.push({ kind: 'position bias', node, gathered: bias });
        break;
      }
      case 'Gather': {
        // Not folded: the table itself, gathered by the index buffer.
        const table = floatConstant(node.inputs[0]);
        const index = known.get(node.inputs[1]);
        if (table?.tensor.dims.length === 2 && index && /int/.test(index.dtype) && attributeInt(node, 'axis', 0) === 0) {
          layers.push({ kind: 'position bias', node, table, index });
        }
        break;
      }
    }
  }
  if (!layers.some((l) => l.kind === 'position bias')) return undefined;
  refuseUnreadTensors(known, layers, source);
  return layers;
}

/** The architecture with as many attention blocks as the file, if any. */
export function swinArchitecture(layers: SwinFileLayer[]): ArchitectureName | undefined {
  const blocks = layers.filter((l) => l.kind === 'position bias').length;
  return SWIN_BLOCKS.find(([, count]) => count === blocks)?.[0];
}

/** The number of outputs of the file's classifier (its last linear layer). */
export function swinHeadSize(layers: SwinFileLayer[]): number | undefined {
  return layers.filter((l) => l.kind === 'linear').at(-1)?.weight.tensor.dims[0];
}

/**
 * The file's layers as a state dict under the model's names, after every check, with notes on what was recovered;
 * throws naming what does not fit.
 */
export function alignSwinExport(model: Model, layers: SwinFileLayer[], source: string): { dict: StateDict; notes: string[] } {
  const ours = modelLayers(model);
  const dict: StateDict = new Map();
  /** Where the file kept a torchvision name, the tensor it names there, to check the pairing against. */
  const keptNames: { name: string; tensor: HostTensor; pairedWith: string }[] = [];
  const put = (layer: ModelLayer, part: string, stored: Stored | undefined, file: SwinFileLayer) => {
    const name = layer.names.get(part);
    if (!name && !stored) return;
    if (!name) throw new Error(`${source}: ${describeNode(file.node)} has a ${part} where the model's ${layer.kind} "${layer.path}" has none`);
    if (!stored) throw new Error(`${source}: ${describeNode(file.node)} has no ${part} where the model's ${layer.kind} "${layer.path}" has one`);
    const expected = model.graph.initializers.get(name) as HostTensor;
    if (shapeToString(expected.dims) !== shapeToString(stored.tensor.dims)) {
      throw new Error(`${source}: ${describeNode(file.node)} has a ${part} of ${shapeToString(stored.tensor.dims)} where the model's "${name}" is ${shapeToString(expected.dims)}`);
    }
    dict.set(name, stored.tensor);
    keptNames.push({ name: stored.name, tensor: stored.tensor, pairedWith: name });
  };

  for (const kind of ['convolution', 'LayerNorm', 'linear', 'position bias'] as const) {
    const theirs = layers.filter((l) => l.kind === kind);
    const mine = ours.filter((l) => l.kind === kind);
    if (theirs.length !== mine.length) {
      throw new Error(`${source}: the file has ${theirs.length} ${kind} layers where the model has ${mine.length}: it is not this architecture, or was exported in a form this import does not know`);
    }
    mine.forEach((layer, i) => {
      const file = theirs[i];
      if (file.kind === 'position bias') {
        const name = layer.names.get('relative_position_bias_table') as string;
        dict.set(name, recoverTable(model, layer, file, source));
        if (file.table) keptNames.push({ name: file.table.name, tensor: file.table.tensor, pairedWith: name });
        return;
      }
      if (file.kind === 'LayerNorm') {
        const epsilon = attributeFloat(layer.node, 'epsilon', 1e-5);
        if (Math.fround(file.epsilon) !== Math.fround(epsilon)) {
          // Float32 values, printed to the precision they have.
          const print = (e: number) => Number(e.toPrecision(7)).toExponential();
          throw new Error(`${source}: LayerNorm ${describeNode(file.node)} has epsilon ${print(file.epsilon)} where the model's "${layer.path}" has ${print(epsilon)}`);
        }
      }
      put(layer, 'weight', file.weight, file);
      put(layer, 'bias', file.bias, file);
    });
  }
  // A name the file kept that is one of the model's parameters must hold what was paired with that parameter (the
  // exporter shares one tensor among equal parameters, so it may name another of them).
  const expected = new Set(parameterSlots(model).map((s) => s.name));
  for (const kept of keptNames) {
    if (kept.name === kept.pairedWith || !expected.has(kept.name)) continue;
    const there = dict.get(kept.name);
    if (!there || !sameValues(there, kept.tensor)) {
      throw new Error(`${source}: the layers do not line up: the file's "${kept.name}" was paired with the model's "${kept.pairedWith}"`);
    }
  }
  const renamed = keptNames.filter((k) => k.name !== k.pairedWith && !expected.has(k.name));
  const folded = layers.filter((l) => l.kind === 'position bias' && l.gathered).length;
  const notes = [];
  if (renamed.length > 0) notes.push(`${renamed.length} weights renamed by the exporter were paired by structure (e.g. ${renamed[0].name} as ${renamed[0].pairedWith})`);
  if (folded > 0) notes.push(`${folded} relative position bias tables recovered exactly from the [heads, tokens, tokens] biases constant folding made of them`);
  return { dict, notes };
}

/** Our model's layers, in the order its graph reads them. */
function modelLayers(model: Model): ModelLayer[] {
  const layers = new Map<string, ModelLayer>();
  for (const slot of parameterSlots(model)) {
    const kind = KIND_OF_ROLE[slot.role];
    if (!kind) throw new Error(`the model's parameter "${slot.name}" (${slot.role}) has no counterpart in a Swin export`);
    const cut = slot.name.lastIndexOf('.');
    const path = slot.name.slice(0, cut);
    const layer = layers.get(path) ?? { kind, path, names: new Map(), node: slot.node };
    layer.names.set(slot.name.slice(cut + 1), slot.name);
    layers.set(path, layer);
  }
  return [...layers.values()];
}

/**
 * The bias table [rows, heads] from the file's gathered bias: bias[h, i, j] = table[index[i * tokens + j], h]. Every
 * row must be gathered, and every copy of a row must agree, or the constant is not this block's gathered table.
 */
function recoverTable(model: Model, layer: ModelLayer, file: Extract<SwinFileLayer, { kind: 'position bias' }>, source: string): HostTensor {
  const name = layer.names.get('relative_position_bias_table') as string;
  const [rows, heads] = (model.graph.initializers.get(name) as HostTensor).dims;
  // Our Gather reads the table by torchvision's relative_position_index.
  const index = Array.from(model.graph.initializers.get(layer.node.inputs[1])?.data as ArrayLike<number | bigint>, Number);
  const tokens = Math.sqrt(index.length);
  if (file.table) {
    const fileIndex = Array.from(file.index?.data as ArrayLike<number | bigint>, Number);
    if (shapeToString(file.table.tensor.dims) !== shapeToString([rows, heads])) {
      throw new Error(`${source}: ${describeNode(file.node)} gathers a table of ${shapeToString(file.table.tensor.dims)} where the model's "${name}" is ${shapeToString([rows, heads])}`);
    }
    if (fileIndex.length !== index.length || fileIndex.some((v, k) => v !== index[k])) {
      throw new Error(`${source}: ${describeNode(file.node)} gathers its table by an index that differs from the model's relative_position_index`);
    }
    return file.table.tensor;
  }
  const gathered = (file.gathered as Stored).tensor;
  if (shapeToString(withoutLeadingOne(gathered.dims)) !== shapeToString([heads, tokens, tokens])) {
    throw new Error(`${source}: the attention bias added by ${describeNode(file.node)} is ${shapeToString(gathered.dims)} where the model's "${layer.path}" gathers ${shapeToString([heads, tokens, tokens])}`);
  }
  const values = gathered.data as Float32Array;
  const table = new Float32Array(rows * heads);
  const seen = new Uint8Array(rows);
  const pairs = tokens * tokens;
  index.forEach((row, pair) => {
    for (let h = 0; h < heads; h++) {
      const v = values[h * pairs + pair];
      if (seen[row] && !Object.is(table[row * heads + h], v)) {
        throw new Error(
          `${source}: the attention bias added by ${describeNode(file.node)} is not one table gathered by Swin's relative position index ` +
            `(head ${h}, token pair ${Math.floor(pair / tokens)}-${pair % tokens} differs from another copy of table row ${row})`,
        );
      }
      table[row * heads + h] = v;
    }
    seen[row] = 1;
  });
  const unseen = seen.indexOf(0);
  if (unseen >= 0) throw new Error(`${source}: the index never reads row ${unseen} of "${name}", so the folded bias cannot give it back`);
  return float32([rows, heads], table);
}

/** The epsilon of a decomposed LayerNorm whose Div this is, or undefined if it is not one. */
function decomposedNorm(div: Node, made: Map<string, Node>, known: Map<string, HostTensor>): number | undefined {
  const [centred, root] = [made.get(div.inputs[0]), made.get(div.inputs[1])];
  if (centred?.opType !== 'Sub' || root?.opType !== 'Sqrt') return undefined;
  const mean = made.get(centred.inputs[1]);
  if (!isLastAxisMean(mean) || mean.inputs[0] !== centred.inputs[0]) return undefined;
  const plusEpsilon = made.get(root.inputs[0]);
  if (plusEpsilon?.opType !== 'Add') return undefined;
  const variance = plusEpsilon.inputs.map((name) => made.get(name)).find(isLastAxisMean);
  const square = variance && made.get(variance.inputs[0]);
  const epsilon = plusEpsilon.inputs.map((name) => known.get(name)).find((t) => t && elementCount(t.dims) === 1);
  const exponent = known.get(square?.inputs[1] ?? '');
  if (square?.opType !== 'Pow' || square.inputs[0] !== div.inputs[0] || Number(exponent?.data[0]) !== 2 || !epsilon) return undefined;
  return Number((epsilon.data as ArrayLike<number>)[0]);
}

function isLastAxisMean(node: Node | undefined): node is Node {
  return node?.opType === 'ReduceMean' && attributeInts(node, 'axes')?.join() === '-1';
}

/** A MatMul's constant right-hand side as torchvision's [out, in] weight: folded ([in, out]) or Transpose(weight). */
function transposedWeight(name: string, known: Map<string, HostTensor>, made: Map<string, Node>): Stored | undefined {
  const folded = known.get(name);
  if (folded) return folded.dtype === 'float32' && folded.dims.length === 2 ? { name, tensor: transpose(folded) } : undefined;
  const node = made.get(name);
  const source = node?.opType === 'Transpose' ? known.get(node.inputs[0]) : undefined;
  if (!source || source.dtype !== 'float32' || source.dims.length !== 2 || attributeInts(node as Node, 'perm')?.join() !== '1,0') return undefined;
  return { name: (node as Node).inputs[0], tensor: source };
}

/**
 * Every float tensor of more than one value must be a weight of a layer read above (or a folded shift mask): a
 * learned tensor this import does not know would otherwise be dropped without a word.
 */
function refuseUnreadTensors(known: Map<string, HostTensor>, layers: SwinFileLayer[], source: string): void {
  const read = new Set<HostTensor>();
  for (const layer of layers) {
    const stored = layer.kind === 'position bias' ? [layer.gathered, layer.table] : [layer.weight, layer.bias];
    // By the stored name: a linear weight is held transposed, a copy.
    for (const s of stored) if (s) read.add(known.get(s.name) as HostTensor);
  }
  const unread = [...known].filter(([, t]) => t.dtype === 'float32' && elementCount(t.dims) > 1 && !read.has(t) && !isShiftMask(t));
  if (unread.length > 0) {
    const [name, t] = unread[0];
    throw new Error(
      `${source}: ${unread.length} float tensor(s) are read by no layer a Swin import knows (${name}, ${shapeToString(t.dims)}${unread.length > 1 ? ', ...' : ''}); ` +
        'they would be dropped, so the file is refused',
    );
  }
}

function withoutLeadingOne(dims: readonly number[]): readonly number[] {
  return dims.length === 4 && dims[0] === 1 ? dims.slice(1) : dims;
}

function isShiftMask(t: HostTensor): boolean {
  return (t.data as Float32Array).every((v) => MASK_VALUES.has(v));
}

function sameValues(a: HostTensor, b: HostTensor): boolean {
  return a === b || (a.data.length === b.data.length && (a.data as Float32Array).every((v, k) => Object.is(v, (b.data as Float32Array)[k])));
}

function transpose(t: HostTensor): HostTensor {
  const [rows, cols] = t.dims;
  const src = t.data as Float32Array;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c];
  return float32([cols, rows], out);
}
