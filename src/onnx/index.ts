/** The ONNX toolkit: in-memory models, protobuf I/O, the typed graph builder, shape inference and checks. */
import './ops/index.js';

export * from './ir.js';
export * from './tensor.js';
export { decodeModel, encodeModel, type ModelSource } from './proto.js';
export { readModelFile, writeModelFile } from './file.js';
export { createModel } from './model.js';
export { GraphBuilder, type Value, type AttributeInput, type NodeOptions } from './builder.js';
export { inferGraph, inferNode, opSchema, registerOp, supportedOps, type OpSchema, type InferenceContext } from './shape-inference.js';
export { checkGraph } from './check.js';
