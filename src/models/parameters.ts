/**
 * Which initializers of a model are learned parameters, with their role, and which are constants. Import,
 * structural alignment, training (what is trained, what gets weight decay) and `cxr info` all use this one
 * definition.
 *
 * Models built here declare them: every layer registers each parameter it creates with its role (Layers.param)
 * and the graph builder knows its constants (pooling matrices, clip bounds), both stored in the model's metadata.
 * A new layer's weights (a LayerNorm's, an attention bias table) are then parameters because the layer says so,
 * not because this file knows its op, and training refuses a float initializer that is neither (it would be
 * silently frozen). Files from elsewhere carry no declaration: their roles are derived from the ops that read
 * them (Conv, Gemm, BatchNormalization weights), which covers every architecture import maps onto.
 */
import type { Graph, Model, Node } from '../onnx/index.js';

export interface RoleTraits {
  /** Learned by gradients (running statistics are state, updated otherwise). */
  trainable: boolean;
  /** Decayed under weightDecayOn: 'weights' (weights of convolutions and linear layers, not norms or biases). */
  weightDecay: boolean;
}

export const PARAMETER_ROLES = {
  'conv.weight': { trainable: true, weightDecay: true },
  'conv.bias': { trainable: true, weightDecay: false },
  'linear.weight': { trainable: true, weightDecay: true },
  'linear.bias': { trainable: true, weightDecay: false },
  'bn.weight': { trainable: true, weightDecay: false },
  'bn.bias': { trainable: true, weightDecay: false },
  'bn.running_mean': { trainable: false, weightDecay: false },
  'bn.running_var': { trainable: false, weightDecay: false },
  'ln.weight': { trainable: true, weightDecay: false },
  'ln.bias': { trainable: true, weightDecay: false },
  // Swin's relative position bias: learned, and kept out of weight decay as the Swin authors do.
  'attn.relative_position_bias_table': { trainable: true, weightDecay: false },
} satisfies Record<string, RoleTraits>;

export type ParameterRole = keyof typeof PARAMETER_ROLES;

export interface ParameterSlot {
  name: string;
  role: ParameterRole;
  /** The first node that reads it. */
  node: Node;
}

/** What a built model declares: each parameter's role, and the names of its float constants. */
export interface ParameterDeclarations {
  parameters: Record<string, ParameterRole>;
  constants: string[];
}

const DECLARATIONS_KEY = 'cxr.parameters';

export function declarationsMetadata(declarations: ParameterDeclarations): Record<string, string> {
  return { [DECLARATIONS_KEY]: JSON.stringify(declarations) };
}

/** The model's declarations, or undefined for a file that has none (one not built here). */
export function readDeclarations(model: Pick<Model, 'metadata'>): ParameterDeclarations | undefined {
  const text = model.metadata[DECLARATIONS_KEY];
  if (text === undefined) return undefined;
  const parsed = JSON.parse(text) as ParameterDeclarations;
  for (const [name, role] of Object.entries(parsed.parameters)) {
    if (!Object.hasOwn(PARAMETER_ROLES, role)) throw new Error(`the model declares parameter "${name}" with the unknown role "${role}"`);
  }
  return parsed;
}

const ROLES_BY_OP: Record<string, (ParameterRole | undefined)[]> = {
  Conv: [undefined, 'conv.weight', 'conv.bias'],
  Gemm: [undefined, 'linear.weight', 'linear.bias'],
  BatchNormalization: [undefined, 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'],
};

/** The model's parameters in the order the graph reads them: declared roles where the model has them, else derived. */
export function parameterSlots(model: Pick<Model, 'graph' | 'metadata'>): ParameterSlot[] {
  const declared = readDeclarations(model)?.parameters;
  return slotsOf(model.graph, (node, i, name) => (declared ? declared[name] : ROLES_BY_OP[node.opType]?.[i])).filter((slot) =>
    model.graph.initializers.has(slot.name),
  );
}

/** The values read in parameter positions of Conv, Gemm and BatchNormalization, initializers or not (in foreign files they may be aliases). */
export function parameterInputs(graph: Graph): ParameterSlot[] {
  return slotsOf(graph, (node, i) => ROLES_BY_OP[node.opType]?.[i]);
}

function slotsOf(graph: Graph, roleOf: (node: Node, input: number, name: string) => ParameterRole | undefined): ParameterSlot[] {
  const slots: ParameterSlot[] = [];
  const seen = new Set<string>();
  for (const node of graph.nodes) {
    node.inputs.forEach((name, i) => {
      if (!name || seen.has(name)) return;
      const role = roleOf(node, i, name);
      if (!role) return;
      seen.add(name);
      slots.push({ name, role, node });
    });
  }
  return slots;
}

export function isTrainable(role: ParameterRole): boolean {
  return PARAMETER_ROLES[role].trainable;
}

export function takesWeightDecay(role: ParameterRole): boolean {
  return PARAMETER_ROLES[role].weightDecay;
}

/**
 * For a model with declarations: throws naming any float initializer that is neither a declared parameter nor a
 * declared constant, which training would otherwise leave frozen and undecayed without a word.
 */
export function assertParametersDeclared(model: Pick<Model, 'graph' | 'metadata'>): void {
  const declared = readDeclarations(model);
  if (!declared) return;
  const constants = new Set(declared.constants);
  const undeclared = [...model.graph.initializers]
    .filter(([name, t]) => t.dtype === 'float32' && !Object.hasOwn(declared.parameters, name) && !constants.has(name))
    .map(([name]) => name);
  if (undeclared.length > 0) {
    throw new Error(
      `${undeclared.length} float initializer(s) of the model are neither declared parameters nor constants (${undeclared.slice(0, 5).join(', ')}${undeclared.length > 5 ? ', ...' : ''}): ` +
        'a layer must create its weights with Layers.param(name, dims, role) so training knows to learn them',
    );
  }
}
