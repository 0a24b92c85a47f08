/**
 * Reading and writing .onnx files: protobuf bytes <-> the project's Model (ir.ts).
 * The schema comes from the onnx-proto package (generated from onnx.proto by protobufjs).
 */
import onnxProto from 'onnx-proto';
import type { Attribute, Dim, Graph, Model, Node, ValueInfo } from './ir.js';
import {
  type AnyTypedArray,
  type DType,
  type HostTensor,
  ONNX_DTYPE_CODE,
  bytesOf,
  dtypeFromOnnxCode,
  elementCount,
  tensor,
  typedArrayFromBytes,
} from './tensor.js';

const { onnx } = onnxProto;
type Long = { toNumber(): number };
type IntLike = number | Long;

const AttributeType = onnx.AttributeProto.AttributeType;

/** Where a model's bytes came from, for error messages and for resolving external tensor data. */
export interface ModelSource {
  /** File name or other label used in errors. */
  name: string;
  /** Reads a file that stores tensors outside the model (ONNX external data), relative to the model's folder. */
  readExternal?: (location: string) => Uint8Array;
}

export function decodeModel(bytes: Uint8Array, source: ModelSource = { name: 'model' }): Model {
  if (bytes.byteLength === 0) throw new Error(`${source.name}: the file is empty, not an ONNX model`);
  let proto: onnxProto.onnx.ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new Error(`${source.name}: not a readable ONNX model (protobuf decoding failed: ${(error as Error).message})`);
  }
  if (!proto.graph || ((proto.graph.node ?? []).length === 0 && (proto.graph.output ?? []).length === 0)) {
    throw new Error(`${source.name}: not an ONNX model (no graph found in the file)`);
  }
  try {
    return {
      graph: graphFromProto(proto.graph, source),
      irVersion: toNumber(proto.irVersion),
      opsetImports: proto.opsetImport.map((o) => ({ domain: o.domain ?? '', version: toNumber(o.version ?? 0) })),
      producerName: proto.producerName ?? '',
      producerVersion: proto.producerVersion ?? '',
      metadata: Object.fromEntries(proto.metadataProps.map((p) => [p.key ?? '', p.value ?? ''])),
    };
  } catch (error) {
    throw new Error(`${source.name}: ${(error as Error).message}`);
  }
}

export function encodeModel(model: Model): Uint8Array {
  const proto = onnx.ModelProto.create({
    irVersion: model.irVersion,
    opsetImport: model.opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    producerName: model.producerName,
    producerVersion: model.producerVersion,
    graph: graphToProto(model.graph),
    metadataProps: Object.entries(model.metadata).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(proto).finish();
}

function graphFromProto(g: onnxProto.onnx.IGraphProto, source: ModelSource): Graph {
  const initializers = new Map<string, HostTensor>();
  for (const t of g.initializer ?? []) initializers.set(t.name ?? '', tensorFromProto(t, source));
  const initializerNames = new Set(initializers.keys());
  return {
    name: g.name ?? 'graph',
    nodes: (g.node ?? []).map((n, i) => nodeFromProto(n, i, source)),
    // Older exporters list initializers among the inputs too; they are weights, not inputs a caller feeds.
    inputs: (g.input ?? []).filter((v) => !initializerNames.has(v.name ?? '')).map(valueInfoFromProto),
    outputs: (g.output ?? []).map(valueInfoFromProto),
    initializers,
    valueInfo: (g.valueInfo ?? []).map(valueInfoFromProto),
  };
}

function graphToProto(graph: Graph): onnxProto.onnx.IGraphProto {
  return {
    name: graph.name,
    node: graph.nodes.map(nodeToProto),
    input: graph.inputs.map(valueInfoToProto),
    output: graph.outputs.map(valueInfoToProto),
    initializer: [...graph.initializers].map(([name, t]) => tensorToProto(name, t)),
    valueInfo: graph.valueInfo.map(valueInfoToProto),
  };
}

function nodeFromProto(n: onnxProto.onnx.INodeProto, index: number, source: ModelSource): Node {
  const node: Node = {
    name: n.name || `${n.opType ?? 'node'}_${index}`,
    opType: n.opType ?? '',
    domain: n.domain ?? '',
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
    attributes: {},
  };
  for (const a of n.attribute ?? []) node.attributes[a.name ?? ''] = attributeFromProto(a, node, source);
  return node;
}

function nodeToProto(node: Node): onnxProto.onnx.INodeProto {
  return {
    name: node.name,
    opType: node.opType,
    domain: node.domain ?? '',
    input: node.inputs,
    output: node.outputs,
    attribute: Object.entries(node.attributes).map(([name, a]) => attributeToProto(name, a)),
  };
}

function attributeFromProto(a: onnxProto.onnx.IAttributeProto, node: Node, source: ModelSource): Attribute {
  switch (a.type) {
    case AttributeType.INT:
      return { kind: 'int', value: toNumber(a.i) };
    case AttributeType.FLOAT:
      return { kind: 'float', value: a.f ?? 0 };
    case AttributeType.STRING:
      return { kind: 'string', value: new TextDecoder().decode(a.s ?? new Uint8Array()) };
    case AttributeType.INTS:
      return { kind: 'ints', value: (a.ints ?? []).map(toNumber) };
    case AttributeType.FLOATS:
      return { kind: 'floats', value: [...(a.floats ?? [])] };
    case AttributeType.STRINGS:
      return { kind: 'strings', value: (a.strings ?? []).map((s) => new TextDecoder().decode(s)) };
    case AttributeType.TENSOR:
      return { kind: 'tensor', value: tensorFromProto(a.t ?? {}, source) };
    default:
      throw new Error(
        `${node.opType} node "${node.name}": attribute "${a.name}" has type ${AttributeType[a.type ?? 0] ?? a.type}, which cxr-lens does not read`,
      );
  }
}

function attributeToProto(name: string, a: Attribute): onnxProto.onnx.IAttributeProto {
  switch (a.kind) {
    case 'int':
      return { name, type: AttributeType.INT, i: a.value };
    case 'float':
      return { name, type: AttributeType.FLOAT, f: a.value };
    case 'string':
      return { name, type: AttributeType.STRING, s: new TextEncoder().encode(a.value) };
    case 'ints':
      return { name, type: AttributeType.INTS, ints: a.value };
    case 'floats':
      return { name, type: AttributeType.FLOATS, floats: a.value };
    case 'strings':
      return { name, type: AttributeType.STRINGS, strings: a.value.map((s) => new TextEncoder().encode(s)) };
    case 'tensor':
      return { name, type: AttributeType.TENSOR, t: tensorToProto('', a.value) };
  }
}

function valueInfoFromProto(v: onnxProto.onnx.IValueInfoProto): ValueInfo {
  const tensorType = v.type?.tensorType;
  const name = v.name ?? '';
  if (!tensorType) throw new Error(`value "${name}" is not a tensor (sequences and maps are not supported)`);
  const dims: Dim[] = (tensorType.shape?.dim ?? []).map((d) =>
    d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? toNumber(d.dimValue) : '?',
  );
  return { name, type: { dtype: dtypeFromOnnxCode(tensorType.elemType ?? 0), shape: dims } };
}

function valueInfoToProto(v: ValueInfo): onnxProto.onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: ONNX_DTYPE_CODE[v.type.dtype],
        // '?' is an unknown dimension: written with neither a value nor a name (a name would equate all of them).
        shape: { dim: v.type.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : d === '?' ? {} : { dimParam: d })) },
      },
    },
  };
}

export function tensorFromProto(t: onnxProto.onnx.ITensorProto, source: ModelSource): HostTensor {
  const name = t.name || '(unnamed tensor)';
  const dtype = dtypeFromOnnxCode(t.dataType ?? 0);
  const dims = (t.dims ?? []).map(toNumber);
  const count = elementCount(dims);
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    return tensor(dtype, dims, typedArrayFromBytes(dtype, readExternalData(t, name, source)));
  }
  if (t.rawData && t.rawData.byteLength > 0) {
    const data = typedArrayFromBytes(dtype, t.rawData);
    if (data.length !== count) {
      throw new Error(`tensor "${name}": shape [${dims.join(', ')}] needs ${count} values but its raw data holds ${data.length}`);
    }
    return tensor(dtype, dims, data);
  }
  const values = typedValues(t, dtype);
  if (values.length !== count) {
    throw new Error(`tensor "${name}": shape [${dims.join(', ')}] needs ${count} values but it stores ${values.length}`);
  }
  return tensor(dtype, dims, values);
}

function typedValues(t: onnxProto.onnx.ITensorProto, dtype: DType): AnyTypedArray {
  switch (dtype) {
    case 'float32':
      return Float32Array.from(t.floatData ?? []);
    case 'float64':
      return Float64Array.from(t.doubleData ?? []);
    case 'int64':
      return BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(toNumber(v))));
    case 'int32':
      return Int32Array.from(t.int32Data ?? []);
    case 'int8':
      return Int8Array.from(t.int32Data ?? []);
    case 'uint8':
    case 'bool':
      return Uint8Array.from(t.int32Data ?? []);
    case 'int16':
      return Int16Array.from(t.int32Data ?? []);
    case 'uint16':
    case 'float16':
      return Uint16Array.from(t.int32Data ?? []);
  }
}

function readExternalData(t: onnxProto.onnx.ITensorProto, name: string, source: ModelSource): Uint8Array {
  const entries = Object.fromEntries((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = entries.location;
  if (!location) throw new Error(`tensor "${name}" is stored externally but names no file`);
  if (!source.readExternal) {
    throw new Error(`tensor "${name}" is stored in the external file "${location}"; load the model from its file path so that file can be found`);
  }
  const file = source.readExternal(location);
  const offset = entries.offset ? Number(entries.offset) : 0;
  const length = entries.length ? Number(entries.length) : file.byteLength - offset;
  if (offset + length > file.byteLength) {
    throw new Error(`tensor "${name}": external file "${location}" is shorter (${file.byteLength} bytes) than the tensor needs`);
  }
  return file.subarray(offset, offset + length);
}

export function tensorToProto(name: string, t: HostTensor): onnxProto.onnx.ITensorProto {
  return { name, dataType: ONNX_DTYPE_CODE[t.dtype], dims: [...t.dims], rawData: bytesOf(t.data) };
}

function toNumber(v: IntLike | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}
