/**
 * Optimizer updates as graph pieces over flat parameter vectors, op for op as PyTorch 1.13 computes them:
 * - `adamw`: torch.optim.AdamW (decoupled weight decay: p *= 1 - lr * wd before the Adam step);
 * - `sgd`: torch.optim.SGD with momentum, dampening and Nesterov (weight decay added to the gradient; the momentum
 *   buffer starts as the first gradient, which a zero buffer and the step number reproduce).
 * The learning rate and the 1-based step number are graph inputs, so schedules need no new graph.
 */
import type { GraphBuilder, Value } from '../../onnx/index.js';

/** Unset fields take torch.optim's defaults (AdamW: betas 0.9/0.999, eps 1e-8, weight decay 1e-2; SGD: none). */
export type OptimizerSpec =
  | { kind: 'adamw'; beta1?: number; beta2?: number; eps?: number; weightDecay?: number }
  | { kind: 'sgd'; momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number };

/** Names of the flat state vectors the optimizer keeps, each as long as the parameter vector. */
export function optimizerStateNames(spec: OptimizerSpec): string[] {
  if (spec.kind === 'adamw') return ['adam.exp_avg', 'adam.exp_avg_sq'];
  return (spec.momentum ?? 0) !== 0 ? ['sgd.momentum_buffer'] : [];
}

export function validateOptimizer(spec: OptimizerSpec): void {
  const fail = (what: string): never => {
    throw new Error(`optimizer "${spec.kind}": ${what}`);
  };
  if ((spec.weightDecay ?? 0) < 0) fail(`weightDecay must be >= 0, got ${spec.weightDecay}`);
  if (spec.kind === 'adamw') {
    for (const [k, v] of [['beta1', spec.beta1 ?? 0.9], ['beta2', spec.beta2 ?? 0.999]] as const) if (!(v >= 0 && v < 1)) fail(`${k} must be in [0, 1), got ${v}`);
    if (!((spec.eps ?? 1e-8) > 0)) fail(`eps must be > 0, got ${spec.eps}`);
  } else if (spec.kind === 'sgd') {
    if ((spec.momentum ?? 0) < 0) fail(`momentum must be >= 0, got ${spec.momentum}`);
    if (spec.nesterov && ((spec.momentum ?? 0) <= 0 || (spec.dampening ?? 0) !== 0)) fail('Nesterov momentum requires a momentum and zero dampening');
  } else fail('unknown optimizer; choose adamw or sgd');
}

export interface OptimizerInputs {
  params: Value;
  grads: Value;
  /** Current state vectors, in optimizerStateNames order. */
  state: Value[];
  learningRate: Value;
  /** The 1-based number of this update. */
  step: Value;
  /** Per-element 1 (decayed) / 0 (not decayed); all parameters are decayed when omitted, as PyTorch's default. */
  decayMask?: Value;
  /**
   * Names for the new parameter and state vectors. A graph output named otherwise is an Identity copy of a value
   * the update also reads (two 28 MB copies a DenseNet-121 step for AdamW's moments).
   */
  names?: { params: string; state: string[] };
}

export function addOptimizerUpdate(b: GraphBuilder, inputs: OptimizerInputs, spec: OptimizerSpec): { params: Value; state: Value[] } {
  validateOptimizer(spec);
  const op = (type: string, ...args: Value[]) => b.op(type, args, {}, { name: b.uniqueValueName(`optimizer.${type}`) });
  const named = (output: string | undefined, type: string, ...args: Value[]) =>
    output === undefined ? op(type, ...args) : b.op(type, args, {}, { name: `optimizer.${output}`, outputs: [output] });
  const names = inputs.names;
  const c = (v: number) => b.scalar(v);
  const { params: p, grads: g, learningRate: lr, step } = inputs;
  // PyTorch's defaults: AdamW decays by 1e-2, SGD not at all.
  const wd = spec.weightDecay ?? (spec.kind === 'adamw' ? 1e-2 : 0);
  const decay = (scale: Value) => (inputs.decayMask ? op('Mul', inputs.decayMask, scale) : scale);
  if (spec.kind === 'adamw') {
    const [beta1, beta2, eps] = [spec.beta1 ?? 0.9, spec.beta2 ?? 0.999, spec.eps ?? 1e-8];
    const [m, v] = inputs.state;
    const decayed = wd === 0 ? p : op('Mul', p, op('Sub', c(1), decay(op('Mul', lr, c(wd)))));
    const m2 = named(names?.state[0], 'Add', op('Mul', m, c(beta1)), op('Mul', g, c(1 - beta1)));
    const v2 = named(names?.state[1], 'Add', op('Mul', v, c(beta2)), op('Mul', op('Mul', g, g), c(1 - beta2)));
    const correction1 = op('Sub', c(1), op('Pow', c(beta1), step));
    const correction2Sqrt = op('Sqrt', op('Sub', c(1), op('Pow', c(beta2), step)));
    const denom = op('Add', op('Div', op('Sqrt', v2), correction2Sqrt), c(eps));
    const update = op('Mul', op('Div', m2, denom), op('Div', lr, correction1));
    return { params: named(names?.params, 'Sub', decayed, update), state: [m2, v2] };
  }
  const momentum = spec.momentum ?? 0;
  const dampening = spec.dampening ?? 0;
  let d = wd === 0 ? g : op('Add', g, op('Mul', p, decay(c(wd))));
  const state: Value[] = [];
  if (momentum !== 0) {
    const [buffer] = inputs.state;
    // On the first step PyTorch starts the buffer as the gradient itself (no dampening): buffer is zero then.
    const first = b.op('Equal', [step, c(1)], {}, { name: b.uniqueValueName('optimizer.first_step') });
    const share = b.op('Where', [first, c(1), c(1 - dampening)], {}, { name: b.uniqueValueName('optimizer.dampening') });
    const next = named(names?.state[0], 'Add', op('Mul', buffer, c(momentum)), op('Mul', d, share));
    state.push(next);
    d = spec.nesterov ? op('Add', d, op('Mul', next, c(momentum))) : next;
  }
  return { params: named(names?.params, 'Sub', p, op('Mul', d, lr)), state };
}
