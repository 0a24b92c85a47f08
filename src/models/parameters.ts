/**
 * Which initializers of a graph are learned parameters (and which are BatchNorm running statistics), derived from
 * the nodes that read them: Conv weight/bias, Gemm weight/bias, BatchNormalization scale/bias/mean/variance.
 * Everything else (pooling matrices, shape constants) is a constant. Import, structural alignment and training
 * all use this one definition.
 */
import type { Graph, Node } from '../onnx/index.js';

export type SlotRole = 'conv.weight' | 'conv.bias' | 'linear.weight' | 'linear.bias' | 'bn.weight' | 'bn.bias' | 'bn.running_mean' | 'bn.running_var';

export interface ParameterSlot {
  name: string;
  role: SlotRole;
  node: Node;
}

const ROLES_BY_OP: Record<string, (SlotRole | undefined)[]> = {
  Conv: [undefined, 'conv.weight', 'conv.bias'],
  Gemm: [undefined, 'linear.weight', 'linear.bias'],
  BatchNormalization: [undefined, 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'],
};

export function parameterSlots(graph: Graph): ParameterSlot[] {
  return parameterInputs(graph).filter((slot) => graph.initializers.has(slot.name));
}

/** The values read in parameter positions, initializers or not (in foreign files they may be aliases). */
export function parameterInputs(graph: Graph): ParameterSlot[] {
  const slots: ParameterSlot[] = [];
  const seen = new Set<string>();
  for (const node of graph.nodes) {
    const roles = ROLES_BY_OP[node.opType];
    if (!roles) continue;
    node.inputs.forEach((name, i) => {
      const role = roles[i];
      if (!role || !name || seen.has(name)) return;
      seen.add(name);
      slots.push({ name, role, node });
    });
  }
  return slots;
}

/** Running statistics are state, not trained by gradients. */
export function isTrainable(role: SlotRole): boolean {
  return role !== 'bn.running_mean' && role !== 'bn.running_var';
}
