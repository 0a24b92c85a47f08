/**
 * The in-memory form of an ONNX model that the rest of the project builds, transforms and differentiates.
 * It mirrors ONNX's ModelProto closely but with plain TypeScript values (typed arrays, numbers, strings),
 * so graph code never touches protobuf objects.
 */
import type { DType, HostTensor } from './tensor.js';

/** A dimension: a fixed size, or a symbolic name such as "batch" that is only known at run time. */
export type Dim = number | string;

export interface ValueType {
  dtype: DType;
  shape: Dim[];
}

export interface ValueInfo {
  name: string;
  type: ValueType;
}

export type Attribute =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'strings'; value: string[] }
  | { kind: 'tensor'; value: HostTensor };

export type AttributeKind = Attribute['kind'];

export interface Node {
  name: string;
  opType: string;
  /** '' (or undefined) is the default ai.onnx domain. */
  domain?: string;
  /** '' stands for an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attributes: Record<string, Attribute>;
}

export interface Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Map<string, HostTensor>;
  /** Types of intermediate values, where known. */
  valueInfo: ValueInfo[];
}

export interface OpsetImport {
  domain: string;
  version: number;
}

export interface Model {
  graph: Graph;
  irVersion: number;
  opsetImports: OpsetImport[];
  producerName: string;
  producerVersion: string;
  /** ONNX metadata_props: free-form string pairs. cxr-lens keeps its model description here (see models/metadata). */
  metadata: Record<string, string>;
}

/** The ONNX version this project writes: IR 8 with the default-domain opset 17. */
export const IR_VERSION = 8;
export const OPSET_VERSION = 17;

export function defaultOpsetVersion(model: Model): number | undefined {
  return model.opsetImports.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version;
}

export function attributeInt(node: Node, name: string, fallback: number): number {
  const a = node.attributes[name];
  if (!a) return fallback;
  if (a.kind !== 'int') throw new Error(`${describeNode(node)}: attribute "${name}" should be an int, found ${a.kind}`);
  return a.value;
}

export function attributeFloat(node: Node, name: string, fallback: number): number {
  const a = node.attributes[name];
  if (!a) return fallback;
  if (a.kind !== 'float') throw new Error(`${describeNode(node)}: attribute "${name}" should be a float, found ${a.kind}`);
  return a.value;
}

export function attributeInts(node: Node, name: string, fallback: number[]): number[];
export function attributeInts(node: Node, name: string): number[] | undefined;
export function attributeInts(node: Node, name: string, fallback?: number[]): number[] | undefined {
  const a = node.attributes[name];
  if (!a) return fallback;
  if (a.kind !== 'ints') throw new Error(`${describeNode(node)}: attribute "${name}" should be ints, found ${a.kind}`);
  return a.value;
}

export function attributeString(node: Node, name: string, fallback: string): string {
  const a = node.attributes[name];
  if (!a) return fallback;
  if (a.kind !== 'string') throw new Error(`${describeNode(node)}: attribute "${name}" should be a string, found ${a.kind}`);
  return a.value;
}

/** How errors name a node: its op type and name, e.g. `Conv "features.conv0"`. */
export function describeNode(node: Pick<Node, 'opType' | 'name'>): string {
  return `${node.opType} node "${node.name}"`;
}

/** Maps every value name to the node that produces it. */
export function producers(graph: Graph): Map<string, Node> {
  const map = new Map<string, Node>();
  for (const node of graph.nodes) for (const out of node.outputs) if (out) map.set(out, node);
  return map;
}

/** Maps every value name to the nodes that read it. */
export function consumers(graph: Graph): Map<string, Node[]> {
  const map = new Map<string, Node[]>();
  for (const node of graph.nodes) {
    for (const input of node.inputs) {
      if (!input) continue;
      const list = map.get(input);
      if (list) list.push(node);
      else map.set(input, [node]);
    }
  }
  return map;
}
