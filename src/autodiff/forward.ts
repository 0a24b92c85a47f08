/** Small graph transformations shared by the gradient and training-step graph builders. */
import type { Graph, Node } from '../onnx/index.js';

/** A MaxPool node that also outputs its Indices, which its gradient rule scatters into (ENGINE.md). */
export function withPoolingIndices(node: Node): Node {
  if (node.opType !== 'MaxPool' || node.outputs[1]) return node;
  return { ...node, outputs: [node.outputs[0], `${node.outputs[0]}.indices`] };
}

/** Drops nodes and initializers that no graph output depends on. */
export function pruneGraph(graph: Graph): Graph {
  const needed = new Set(graph.outputs.map((o) => o.name));
  const kept: Node[] = [];
  for (let k = graph.nodes.length - 1; k >= 0; k--) {
    const node = graph.nodes[k];
    if (!node.outputs.some((o) => o && needed.has(o))) continue;
    kept.push(node);
    for (const i of node.inputs) if (i) needed.add(i);
  }
  const initializers = new Map([...graph.initializers].filter(([name]) => needed.has(name)));
  return { ...graph, nodes: kept.reverse(), initializers, valueInfo: graph.valueInfo.filter((v) => needed.has(v.name)) };
}
