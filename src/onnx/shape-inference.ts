/**
 * Static shape inference: every op the project uses has a schema here that names its attributes' kinds and computes
 * its outputs' element types and shapes from its inputs'. The builder runs it as each node is added, so a wrong shape
 * fails at the line that made it, naming the node; `inferGraph` runs it over a whole loaded graph.
 */
import { type Attribute, type AttributeKind, type Dim, type Graph, type Node, type ValueType, describeNode } from './ir.js';
import type { HostTensor } from './tensor.js';

export interface InferenceContext {
  readonly node: Node;
  /** Input types in order; undefined where an optional input is omitted. */
  readonly inputs: readonly (ValueType | undefined)[];
  /** The value of input i when it is known before running (an initializer or a folded constant such as Shape's). */
  constant(i: number): HostTensor | undefined;
  /** Input i's type; throws naming the node when it is missing. */
  input(i: number): ValueType;
  int(name: string, fallback: number): number;
  float(name: string, fallback: number): number;
  ints(name: string, fallback: number[]): number[];
  string(name: string, fallback: string): string;
  attribute(name: string): Attribute | undefined;
  /** An Error that names the node. */
  fail(message: string): Error;
}

export interface OpSchema {
  /** Attribute kinds, so plain values passed to the builder get the right protobuf type. */
  attributes: Record<string, AttributeKind>;
  infer(ctx: InferenceContext): ValueType[];
  /** Folds the node's value when all inputs it needs are known (small shape arithmetic only). */
  fold?(ctx: InferenceContext): HostTensor[] | undefined;
}

const schemas = new Map<string, OpSchema>();

export function registerOp(opType: string, schema: OpSchema): void {
  schemas.set(opType, schema);
}

export function opSchema(opType: string): OpSchema | undefined {
  return schemas.get(opType);
}

export function supportedOps(): string[] {
  return [...schemas.keys()].sort();
}

export interface NodeInference {
  outputs: ValueType[];
  folded?: HostTensor[];
}

export function inferNode(
  node: Node,
  inputTypes: readonly (ValueType | undefined)[],
  constants: (name: string) => HostTensor | undefined,
): NodeInference {
  if (node.domain && node.domain !== 'ai.onnx') {
    throw new Error(`${describeNode(node)}: ops of domain "${node.domain}" are not supported`);
  }
  const schema = schemas.get(node.opType);
  if (!schema) {
    throw new Error(`${describeNode(node)}: the op "${node.opType}" is not supported by cxr-lens (no shape rule); supported: ${supportedOps().join(', ')}`);
  }
  const ctx = createContext(node, inputTypes, constants);
  const outputs = schema.infer(ctx);
  for (const [i, out] of outputs.entries()) {
    for (const d of out.shape) {
      if (typeof d === 'number' && (!Number.isInteger(d) || d < 0)) {
        throw ctx.fail(`output ${i} would have the invalid shape [${out.shape.join(', ')}]`);
      }
    }
  }
  return { outputs, folded: schema.fold?.(ctx) };
}

function createContext(
  node: Node,
  inputs: readonly (ValueType | undefined)[],
  constants: (name: string) => HostTensor | undefined,
): InferenceContext {
  const fail = (message: string) => new Error(`${describeNode(node)}: ${message}`);
  const attr = (name: string, kind: AttributeKind): Attribute | undefined => {
    const a = node.attributes[name];
    if (a && a.kind !== kind) throw fail(`attribute "${name}" should be of kind ${kind}, found ${a.kind}`);
    return a;
  };
  return {
    node,
    inputs,
    constant: (i) => (node.inputs[i] ? constants(node.inputs[i]) : undefined),
    input(i) {
      const t = inputs[i];
      if (!t) throw fail(`input ${i} is required`);
      return t;
    },
    int: (name, fallback) => (attr(name, 'int')?.value as number | undefined) ?? fallback,
    float: (name, fallback) => (attr(name, 'float')?.value as number | undefined) ?? fallback,
    ints: (name, fallback) => (attr(name, 'ints')?.value as number[] | undefined) ?? fallback,
    string: (name, fallback) => (attr(name, 'string')?.value as string | undefined) ?? fallback,
    attribute: (name) => node.attributes[name],
    fail,
  };
}

/** Infers every value's type in a graph, in node order. Throws at the first node whose inputs do not fit. */
export function inferGraph(graph: Graph): Map<string, ValueType> {
  const types = new Map<string, ValueType>();
  const known = new Map<string, HostTensor>(graph.initializers);
  for (const input of graph.inputs) types.set(input.name, input.type);
  for (const [name, t] of graph.initializers) types.set(name, { dtype: t.dtype, shape: [...t.dims] });
  for (const node of graph.nodes) {
    const inputTypes = node.inputs.map((name) => {
      if (!name) return undefined;
      const t = types.get(name);
      if (!t) throw new Error(`${describeNode(node)}: its input "${name}" is not produced by any node, graph input or initializer`);
      return t;
    });
    const { outputs, folded } = inferNode(node, inputTypes, (name) => known.get(name));
    node.outputs.forEach((name, i) => {
      if (!name) return;
      const t = outputs[i];
      if (!t) throw new Error(`${describeNode(node)}: has no output ${i}`);
      types.set(name, t);
      if (folded?.[i]) known.set(name, folded[i]);
    });
  }
  return types;
}

// ---------- helpers shared by the schemas ----------

export function sameDim(a: Dim, b: Dim): boolean {
  return a === b;
}

/** Numpy-style broadcasting of several shapes; symbolic dims broadcast against 1 or an equal symbol. */
export function broadcastShapes(ctx: InferenceContext, shapes: readonly Dim[][]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const shape of shapes) {
      const d = shape[shape.length - rank + i] ?? 1;
      if (d === 1) continue;
      if (dim === 1 || dim === d) dim = d;
      else if (typeof dim === 'string' || typeof d === 'string') dim = typeof dim === 'number' ? dim : d;
      else throw ctx.fail(`shapes ${shapes.map((s) => `[${s.join(', ')}]`).join(' and ')} cannot be broadcast together`);
    }
    out.push(dim);
  }
  return out;
}

export function normalizeAxis(ctx: InferenceContext, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw ctx.fail(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** The integer values of a constant int64/int32 input, or undefined when unknown. */
export function constantInts(ctx: InferenceContext, i: number): number[] | undefined {
  const t = ctx.constant(i);
  if (!t) return undefined;
  if (t.dtype !== 'int64' && t.dtype !== 'int32') throw ctx.fail(`input ${i} must be int64, found ${t.dtype}`);
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

export function product(dims: readonly Dim[]): Dim {
  let n = 1;
  for (const d of dims) {
    if (typeof d !== 'number') return '?';
    n *= d;
  }
  return n;
}
