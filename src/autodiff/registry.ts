/**
 * The gradient rules: one per ONNX op, registered by op type. A rule receives the forward node, the builder that
 * the backward nodes are appended to, the upstream gradients of the node's outputs and which inputs need a
 * gradient; it returns one gradient per input (undefined where none is wanted or none flows).
 */
import type { GraphBuilder, Node, Value } from '../onnx/index.js';

/** Per channel (axis 1) of a forward value x: slope * x + offset, with slope and offset vectors of its channel count. */
export interface ChannelAffine {
  slope: Value;
  offset: Value;
}

/**
 * A gradient of the form tensor + slope * x + offset, x being the forward input it is the gradient of. BatchNorm's
 * training-mode backward has this form. Kept apart, the affine terms of every layer that normalises the same tensor
 * (each earlier feature map, in DenseNet's concatenations) are summed as vectors and applied to it once.
 */
export interface AffineGradient extends ChannelAffine {
  tensor?: Value;
}

export type InputGradient = Value | AffineGradient | undefined;

export interface GradientContext {
  readonly b: GraphBuilder;
  readonly node: Node;
  /** Forward inputs in order; undefined where an optional input is omitted. */
  readonly inputs: readonly (Value | undefined)[];
  /** Forward outputs in order; undefined where an optional output is omitted. */
  readonly outputs: readonly (Value | undefined)[];
  /**
   * The upstream gradient of each output; undefined where none flows back into it. For rules registered with
   * `affine`, only its tensor part: the per-channel affine part, if any, is in `affines`.
   */
  readonly grads: readonly (Value | undefined)[];
  /** The per-channel affine part of each output's upstream gradient (rules registered with `affine` only). */
  readonly affines: readonly (ChannelAffine | undefined)[];
  /** Whether input i needs a gradient; rules emit no work for the others. */
  readonly wants: readonly boolean[];
  /**
   * How many stacked copies of the batch the gradients carry ([replicas * batch, ...], one per seed, e.g. one per
   * explained class) while forward values have the plain batch. 1 in ordinary graphs.
   */
  readonly replicas: number;
  /** The forward pass runs in ONNX Runtime's blocked layout (constant weights); see GradientRequest.blockedLayout. */
  readonly blockedLayout: boolean;
  /** A binary op between a gradient and a forward value of the plain batch (broadcast over the replicas). */
  withForward(opType: string, grad: Value, forward: Value): Value;
  /** Adds a backward node named after the forward node. */
  op(opType: string, inputs: readonly (Value | undefined)[], attributes?: Record<string, unknown>, outputs?: number): Value;
  /** Like op, for nodes with several outputs. */
  ops(opType: string, inputs: readonly (Value | undefined)[], attributes: Record<string, unknown>, outputs: number): Value[];
  /** The required upstream gradient of output i. */
  grad(i?: number): Value;
  /** Forward input i, which must be present. */
  input(i: number): Value;
  /** An Error that names the forward node. */
  fail(message: string): Error;
}

export type GradientRule = (ctx: GradientContext) => InputGradient[];

export interface RuleOptions {
  /** The rule handles replicated gradients (GradientContext.replicas > 1) for the inputs it is asked for. */
  replicas?: boolean;
  /** The rule passes per-channel affine upstream gradients on (GradientContext.affines); for others they are applied. */
  affine?: boolean;
}

const rules = new Map<string, { rule: GradientRule; options: RuleOptions }>();

export function registerGradient(opType: string, rule: GradientRule, options: RuleOptions = {}): void {
  rules.set(opType, { rule, options });
}

export function gradientRule(opType: string): GradientRule | undefined {
  return rules.get(opType)?.rule;
}

export function supportsReplicas(opType: string): boolean {
  return rules.get(opType)?.options.replicas === true;
}

export function passesAffine(opType: string): boolean {
  return rules.get(opType)?.options.affine === true;
}

export function differentiableOps(): string[] {
  return [...rules.keys()].sort();
}
