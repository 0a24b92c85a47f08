/**
 * Reverse-mode differentiation of an ONNX graph under construction: finds the nodes between the requested
 * sources and the seeded targets, walks them backwards applying each op's gradient rule, and sums the gradients
 * of values that have several consumers (per-channel affine terms, see AffineGradient, summed as vectors and
 * applied once). Nodes that do not lie on a path from a source to a target emit nothing, so frozen parameters cost
 * no weight-gradient work while gradients still flow through their layers.
 */
import './rules/index.js';
import { type AttributeInput, type GraphBuilder, type Node, type Value, describeNode } from '../onnx/index.js';
import { type AffineGradient, type ChannelAffine, type GradientContext, type GradientRule, type InputGradient, differentiableOps, gradientRule, passesAffine, supportsReplicas } from './registry.js';
import { applyChannelAffine } from './rules/helpers.js';

/** The contributions to one value's gradient so far: tensors, and per-channel affine terms of the value itself. */
interface Pending {
  tensors: Value[];
  affines: ChannelAffine[];
}

export interface GradientRequest {
  /** Target value name -> its cotangent (the gradient flowing into it, same shape). */
  seeds: ReadonlyMap<string, Value>;
  /** Names of the values (graph inputs, initializers, activations) whose gradients are wanted. */
  sources: readonly string[];
  /** Values treated as constants: no gradient flows through them (PyTorch's detach()). */
  detached?: readonly string[];
  /**
   * The seeds stack this many copies of the batch ([replicas * batch, ...]): one backward pass answers several
   * cotangents (classes) over one forward pass. Only ops whose rules support it may lie on the path.
   */
  replicas?: number;
  /**
   * The forward pass's weights are constants, so ONNX Runtime runs its image tensors in its blocked (NCHWc)
   * layout: rules then prefer forms that stay in that layout (explanation graphs; training graphs feed their weights).
   */
  blockedLayout?: boolean;
  /**
   * Rules used instead of the registered ones for some op types, in this request only (guided backpropagation's
   * rectifiers, in explanation graphs). Each must accept what the op's registered rule accepts (replicas, affines).
   */
  rules?: ReadonlyMap<string, GradientRule>;
}

/**
 * Appends the backward pass to `b` and returns the gradient of every source. A source that no seeded target
 * depends on is missing from the result.
 */
export function addGradients(b: GraphBuilder, request: GradientRequest): Map<string, Value> {
  const nodes = b.build().nodes;
  for (const name of [...request.seeds.keys(), ...request.sources]) {
    if (!b.has(name)) throw new Error(`gradient request: graph "${b.name}" has no value named "${name}"`);
  }
  const dependsOnSource = new Set(request.sources);
  const detached = new Set(request.detached ?? []);
  for (const node of nodes) {
    if (node.inputs.some((i) => i && dependsOnSource.has(i))) for (const o of node.outputs) if (o && !detached.has(o)) dependsOnSource.add(o);
  }
  const reachesTarget = new Set(request.seeds.keys());
  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k];
    if (node.outputs.some((o) => o && reachesTarget.has(o))) for (const i of node.inputs) if (i) reachesTarget.add(i);
  }
  const active = (name: string) => name !== '' && dependsOnSource.has(name) && reachesTarget.has(name);

  const pending = new Map<string, Pending>();
  const contribute = (name: string, g: Value | AffineGradient) => {
    let entry = pending.get(name);
    if (!entry) pending.set(name, (entry = { tensors: [], affines: [] }));
    if ('slope' in g) {
      if (g.tensor) entry.tensors.push(g.tensor);
      entry.affines.push({ slope: g.slope, offset: g.offset });
    } else entry.tensors.push(g);
  };
  for (const [name, seed] of request.seeds) contribute(name, seed);
  const sum = (values: Value[], name: string) => (values.length === 1 ? values[0] : b.op('Sum', values, {}, { name: uniqueName(b, name) }));
  /** The summed gradient of a value; its affine terms applied to it, unless the consuming rule passes them on. */
  const total = (name: string, keepAffine = false): { tensor?: Value; affine?: ChannelAffine } | undefined => {
    const entry = pending.get(name);
    if (!entry) return undefined;
    let affine: ChannelAffine | undefined;
    if (entry.affines.length > 0) {
      affine = {
        slope: sum(entry.affines.map((a) => a.slope), `${name}.grad.slope.sum`),
        offset: sum(entry.affines.map((a) => a.offset), `${name}.grad.offset.sum`),
      };
      if (!keepAffine) {
        const applied = applyChannelAffine(b, b.value(name), affine, uniqueName(b, `${name}.grad.affine`));
        // The other terms are added to the affine Conv's output by an Add, which ONNX Runtime fuses into the Conv
        // (its sum input), saving a pass over the tensor.
        const rest = entry.tensors.length > 0 ? sum(entry.tensors, `${name}.grad.sum`) : undefined;
        entry.tensors = [rest ? b.op('Add', [applied, rest], {}, { name: uniqueName(b, `${name}.grad.total`) }) : applied];
        affine = undefined;
      }
      entry.affines = affine ? [affine] : [];
    }
    const tensor = entry.tensors.length > 0 ? sum(entry.tensors, `${name}.grad.sum`) : undefined;
    entry.tensors = tensor ? [tensor] : [];
    return { tensor, affine };
  };

  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k];
    if (!node.outputs.some(active) || !node.inputs.some(active)) continue;
    const keepAffine = passesAffine(node.opType);
    const upstream = node.outputs.map((o) => (active(o) ? total(o, keepAffine) : undefined));
    const grads = upstream.map((u) => u?.tensor);
    const affines = upstream.map((u) => u?.affine);
    if (grads.every((g) => g === undefined) && affines.every((a) => a === undefined)) continue;
    const wants = node.inputs.map(active);
    const rule = request.rules?.get(node.opType) ?? gradientRule(node.opType);
    if (!rule) {
      throw new Error(
        `${describeNode(node)}: no gradient rule for the op "${node.opType}" (needed to differentiate through it); ` +
          `ops with rules: ${differentiableOps().join(', ')}`,
      );
    }
    const replicas = request.replicas ?? 1;
    if (replicas > 1 && !supportsReplicas(node.opType)) {
      throw new Error(`${describeNode(node)}: the gradient rule of "${node.opType}" does not support several cotangents in one backward pass`);
    }
    const inputGrads: InputGradient[] = rule(createContext(b, node, grads, affines, wants, replicas, request.blockedLayout ?? false));
    inputGrads.forEach((g, i) => {
      if (g && wants[i]) contribute(node.inputs[i], g);
    });
  }

  const result = new Map<string, Value>();
  for (const name of request.sources) {
    const g = total(name)?.tensor;
    if (g) result.set(name, g);
  }
  return result;
}

function createContext(
  b: GraphBuilder,
  node: Node,
  grads: (Value | undefined)[],
  affines: (ChannelAffine | undefined)[],
  wants: boolean[],
  replicas: number,
  blockedLayout: boolean,
): GradientContext {
  let count = 0;
  const add = (opType: string, inputs: readonly (Value | undefined)[], attributes: Record<string, unknown>, outputs: number): Value[] =>
    b.node(opType, inputs, attributes as Record<string, AttributeInput>, {
      name: uniqueName(b, `${node.name}.grad.${opType}${count++ === 0 ? '' : `_${count}`}`),
      outputs,
    });
  const fail = (message: string) => new Error(`${describeNode(node)}: gradient: ${message}`);
  const op = (opType: string, inputs: readonly (Value | undefined)[], attributes: Record<string, unknown> = {}, outputs = 1) => add(opType, inputs, attributes, outputs)[0];
  return {
    b,
    node,
    inputs: node.inputs.map((i) => (i ? b.value(i) : undefined)),
    outputs: node.outputs.map((o) => (o ? b.value(o) : undefined)),
    grads,
    affines,
    wants,
    replicas,
    blockedLayout,
    op,
    ops: add,
    withForward(opType, grad, forward) {
      if (replicas === 1) return op(opType, [grad, forward]);
      const tail = grad.type.shape.slice(1);
      if (!tail.every((d): d is number => typeof d === 'number')) throw fail(`replicated gradients need known dimensions after the batch, found [${grad.type.shape.join(', ')}]`);
      const split = op('Reshape', [grad, b.ints([replicas, -1, ...tail])]);
      return op('Reshape', [op(opType, [split, forward]), b.ints([-1, ...tail])]);
    },
    grad(i = 0) {
      const g = grads[i];
      if (!g) throw fail(`output ${i} has no upstream gradient`);
      return g;
    },
    input(i) {
      const name = node.inputs[i];
      if (!name) throw fail(`input ${i} is required`);
      return b.value(name);
    },
    fail,
  };
}

const usedNames = new WeakMap<GraphBuilder, Set<string>>();

/** Node names for backward nodes: readable (`<forward node>.grad.<op>`) and unique within the builder. */
function uniqueName(b: GraphBuilder, hint: string): string {
  let names = usedNames.get(b);
  if (!names) {
    names = new Set(b.build().nodes.map((n) => n.name));
    usedNames.set(b, names);
  }
  let name = hint;
  for (let i = 2; names.has(name) || b.has(name); i++) name = `${hint}_${i}`;
  names.add(name);
  return name;
}
