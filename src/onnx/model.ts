/** Wrapping a graph into a Model that this project writes: fixed IR/opset, producer, metadata. */
import { VERSION } from '../version.js';
import { type Graph, IR_VERSION, type Model, OPSET_VERSION } from './ir.js';

export function createModel(graph: Graph, metadata: Record<string, string> = {}): Model {
  return {
    graph,
    irVersion: IR_VERSION,
    opsetImports: [{ domain: '', version: OPSET_VERSION }],
    producerName: 'cxr-lens',
    producerVersion: VERSION,
    metadata: { ...metadata },
  };
}
