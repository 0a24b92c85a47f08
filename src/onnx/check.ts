/** Whole-graph checks with errors that name the node: structure first, then types and shapes. */
import './ops/index.js';
import { type Graph, type ValueType, describeNode } from './ir.js';
import { inferGraph } from './shape-inference.js';

/** Throws one Error listing every structural problem, or the first type/shape problem, of a graph. */
export function checkGraph(graph: Graph): Map<string, ValueType> {
  const problems = structuralProblems(graph);
  if (problems.length > 0) {
    const shown = problems.slice(0, 20);
    const more = problems.length > shown.length ? `\n  ... and ${problems.length - shown.length} more` : '';
    throw new Error(`graph "${graph.name}" is malformed:\n  ${shown.join('\n  ')}${more}`);
  }
  const types = inferGraph(graph);
  for (const out of graph.outputs) {
    const inferred = types.get(out.name);
    if (!inferred) continue;
    if (inferred.dtype !== out.type.dtype) {
      throw new Error(`graph output "${out.name}" is declared ${out.type.dtype} but computes ${inferred.dtype}`);
    }
    const declared = out.type.shape;
    const fits =
      declared.length === 0 ||
      (declared.length === inferred.shape.length && declared.every((d, i) => typeof d !== 'number' || typeof inferred.shape[i] !== 'number' || d === inferred.shape[i]));
    if (!fits) {
      throw new Error(`graph output "${out.name}" is declared [${declared.join(', ')}] but computes [${inferred.shape.join(', ')}]`);
    }
  }
  return types;
}

function structuralProblems(graph: Graph): string[] {
  const problems: string[] = [];
  const defined = new Set<string>();
  const define = (name: string, by: string) => {
    if (defined.has(name)) problems.push(`value "${name}" is defined more than once (again by ${by})`);
    defined.add(name);
  };
  for (const input of graph.inputs) define(input.name, 'a graph input');
  for (const name of graph.initializers.keys()) define(name, 'an initializer');
  const nodeNames = new Set<string>();
  for (const node of graph.nodes) {
    if (nodeNames.has(node.name)) problems.push(`${describeNode(node)}: another node has the same name`);
    nodeNames.add(node.name);
    for (const input of node.inputs) {
      if (input && !defined.has(input)) {
        problems.push(`${describeNode(node)}: input "${input}" is not produced by any earlier node, graph input or initializer`);
      }
    }
    for (const out of node.outputs) if (out) define(out, describeNode(node));
  }
  for (const out of graph.outputs) {
    if (!defined.has(out.name)) problems.push(`graph output "${out.name}" is not produced by any node`);
  }
  return problems;
}
