/**
 * A typed graph builder. Each node is shape-checked as it is added (shape-inference.ts), so mistakes surface at the
 * line that made them with the node named; `build()` returns a plain Graph ready to be wrapped in a Model.
 */
import './ops/index.js';
import { type Attribute, type Dim, type Graph, type Node, type ValueType, describeNode } from './ir.js';
import { inferGraph, inferNode, opSchema } from './shape-inference.js';
import { type DType, type HostTensor, float32, int64 } from './tensor.js';

/** A value in the graph under construction: its name and its inferred type. */
export interface Value {
  readonly name: string;
  readonly type: ValueType;
}

/** Attribute values as plain JS values; the op's schema decides their ONNX kind (int vs float). */
export type AttributeInput = number | string | number[] | string[] | HostTensor | Attribute;

export interface NodeOptions {
  /** Node name; defaults to a unique `<OpType>_<n>`. */
  name?: string;
  /** Output value names, or how many outputs to create with generated names. */
  outputs?: number | string[];
  domain?: string;
}

export class GraphBuilder {
  private readonly nodes: Node[] = [];
  private readonly graphInputs: Value[] = [];
  private readonly graphOutputs: Value[] = [];
  private readonly initializers = new Map<string, HostTensor>();
  private readonly types = new Map<string, ValueType>();
  private readonly known = new Map<string, HostTensor>();
  private readonly nodeNames = new Set<string>();
  /** Initializers made by constant(), scalar() and ints(): fixed values, as opposed to named weights. */
  readonly constantNames = new Set<string>();
  private counter = 0;

  constructor(readonly name = 'main') {}

  /** Continues building on an existing graph (used by autodiff to append backward nodes). */
  static from(graph: Graph): GraphBuilder {
    const b = new GraphBuilder(graph.name);
    const types = inferGraph(graph);
    for (const [name, type] of types) b.types.set(name, type);
    for (const [name, t] of graph.initializers) {
      b.initializers.set(name, t);
      b.known.set(name, t);
    }
    for (const node of graph.nodes) {
      b.nodes.push(node);
      b.nodeNames.add(node.name);
    }
    for (const v of graph.inputs) b.graphInputs.push({ name: v.name, type: v.type });
    for (const v of graph.outputs) b.graphOutputs.push({ name: v.name, type: types.get(v.name) ?? v.type });
    return b;
  }

  input(name: string, dtype: DType, shape: Dim[]): Value {
    this.claim(name);
    const value = { name, type: { dtype, shape: [...shape] } };
    this.types.set(name, value.type);
    this.graphInputs.push(value);
    return value;
  }

  initializer(name: string, t: HostTensor): Value {
    this.claim(name);
    this.initializers.set(name, t);
    this.known.set(name, t);
    const type = { dtype: t.dtype, shape: [...t.dims] };
    this.types.set(name, type);
    return { name, type };
  }

  /** A constant tensor under a generated unique name. */
  constant(t: HostTensor, hint = 'const'): Value {
    const value = this.initializer(this.uniqueValueName(hint), t);
    this.constantNames.add(value.name);
    return value;
  }

  scalar(value: number, dtype: 'float32' | 'int64' = 'float32'): Value {
    return this.constant(dtype === 'float32' ? float32([], [value]) : int64([], [value]), 'scalar');
  }

  /** A 1-D int64 constant, the form ONNX wants for shapes, axes and pads. */
  ints(values: readonly number[]): Value {
    return this.constant(int64([values.length], values), 'ints');
  }

  value(name: string): Value {
    const type = this.types.get(name);
    if (!type) throw new Error(`graph "${this.name}" has no value named "${name}"`);
    return { name, type };
  }

  has(name: string): boolean {
    return this.types.has(name);
  }

  initializerValue(name: string): HostTensor | undefined {
    return this.initializers.get(name);
  }

  /** Adds a node and returns its outputs. */
  node(opType: string, inputs: readonly (Value | undefined)[], attributes: Record<string, AttributeInput> = {}, options: NodeOptions = {}): Value[] {
    const name = options.name ?? this.uniqueNodeName(opType);
    if (this.nodeNames.has(name)) throw new Error(`a node named "${name}" already exists in graph "${this.name}"`);
    const outputNames = Array.isArray(options.outputs)
      ? options.outputs
      : Array.from({ length: options.outputs ?? 1 }, (_, i) => this.uniqueValueName(i === 0 ? name : `${name}:${i}`));
    // Omitted optional inputs become '', and trailing ones are dropped: ONNX Runtime's fusions (Conv+BatchNorm,
    // NCHWc) skip a Conv whose absent bias is spelled out as ''.
    const inputNames = inputs.map((v) => v?.name ?? '');
    while (inputNames.length > 0 && inputNames[inputNames.length - 1] === '') inputNames.pop();
    const node: Node = {
      name,
      opType,
      domain: options.domain ?? '',
      inputs: inputNames,
      outputs: outputNames,
      attributes: toAttributes(opType, name, attributes),
    };
    for (const input of node.inputs) {
      if (input && !this.types.has(input)) throw new Error(`${describeNode(node)}: its input "${input}" does not exist in graph "${this.name}"`);
    }
    const { outputs, folded } = inferNode(
      node,
      inputNames.map((n) => (n ? this.types.get(n) : undefined)),
      (n) => this.known.get(n),
    );
    if (outputs.length < outputNames.length) throw new Error(`${describeNode(node)}: has ${outputs.length} outputs, ${outputNames.length} were asked for`);
    for (const out of outputNames) this.claim(out);
    this.nodeNames.add(name);
    this.nodes.push(node);
    return outputNames.map((out, i) => {
      this.types.set(out, outputs[i]);
      if (folded?.[i]) this.known.set(out, folded[i]);
      return { name: out, type: outputs[i] };
    });
  }

  /** Adds a single-output node and returns that output. */
  op(opType: string, inputs: readonly (Value | undefined)[], attributes: Record<string, AttributeInput> = {}, options: NodeOptions = {}): Value {
    return this.node(opType, inputs, attributes, options)[0];
  }

  /** Marks a value as a graph output, renaming it through an Identity node when another name is asked for. */
  output(value: Value, name = value.name): Value {
    const out = name === value.name ? value : this.op('Identity', [value], {}, { outputs: [name], name: `output.${name}` });
    if (this.graphOutputs.some((o) => o.name === out.name)) throw new Error(`"${out.name}" is already a graph output`);
    this.graphOutputs.push(out);
    return out;
  }

  /**
   * The graph. `valueTypes` also records the inferred type of every intermediate value: ONNX Runtime's own shape
   * inference loses symbolic dimensions at a Reshape or Expand, and without them it cannot prove two tensors the
   * same shape, which its blocked-layout (NCHWc) Mul needs.
   */
  build(options: { valueTypes?: boolean } = {}): Graph {
    const outputs = this.graphOutputs.map((v) => ({ name: v.name, type: v.type }));
    const declared = new Set(outputs.map((o) => o.name));
    const valueInfo = options.valueTypes
      ? this.nodes.flatMap((n) => n.outputs).filter((name) => name && !declared.has(name)).map((name) => ({ name, type: this.types.get(name) as ValueType }))
      : [];
    return {
      name: this.name,
      nodes: [...this.nodes],
      inputs: this.graphInputs.map((v) => ({ name: v.name, type: v.type })),
      outputs,
      initializers: new Map(this.initializers),
      valueInfo,
    };
  }

  uniqueValueName(hint: string): string {
    if (!this.types.has(hint)) return hint;
    for (;;) {
      const candidate = `${hint}_${++this.counter}`;
      if (!this.types.has(candidate)) return candidate;
    }
  }

  private uniqueNodeName(opType: string): string {
    for (;;) {
      const candidate = `${opType}_${++this.counter}`;
      if (!this.nodeNames.has(candidate)) return candidate;
    }
  }

  private claim(name: string): void {
    if (!name) throw new Error('value names cannot be empty');
    if (this.types.has(name)) throw new Error(`a value named "${name}" already exists in graph "${this.name}"`);
  }
}

function toAttributes(opType: string, nodeName: string, inputs: Record<string, AttributeInput>): Record<string, Attribute> {
  const schema = opSchema(opType);
  const out: Record<string, Attribute> = {};
  for (const [key, value] of Object.entries(inputs)) {
    if (value === undefined) continue;
    if (isAttribute(value)) {
      out[key] = value;
      continue;
    }
    const kind = schema?.attributes[key];
    if (!kind) throw new Error(`${opType} node "${nodeName}": unknown attribute "${key}"`);
    out[key] = toAttribute(kind, value, `${opType} node "${nodeName}": attribute "${key}"`);
  }
  return out;
}

function toAttribute(kind: Attribute['kind'], value: Exclude<AttributeInput, Attribute>, what: string): Attribute {
  const bad = (): never => {
    throw new Error(`${what} expects ${kind}, got ${JSON.stringify(value)}`);
  };
  switch (kind) {
    case 'int':
      return typeof value === 'number' && Number.isInteger(value) ? { kind, value } : bad();
    // ONNX stores float attributes as float32: round now so a model reads back exactly as it was built.
    case 'float':
      return typeof value === 'number' ? { kind, value: Math.fround(value) } : bad();
    case 'string':
      return typeof value === 'string' ? { kind, value } : bad();
    case 'ints':
      return Array.isArray(value) && value.every((v) => typeof v === 'number' && Number.isInteger(v)) ? { kind, value: value as number[] } : bad();
    case 'floats':
      return Array.isArray(value) && value.every((v) => typeof v === 'number') ? { kind, value: (value as number[]).map(Math.fround) } : bad();
    case 'strings':
      return Array.isArray(value) && value.every((v) => typeof v === 'string') ? { kind, value: value as string[] } : bad();
    case 'tensor':
      return typeof value === 'object' && !Array.isArray(value) && 'dims' in value ? { kind, value } : bad();
  }
}

function isAttribute(value: AttributeInput): value is Attribute {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && 'kind' in value && 'value' in value;
}

