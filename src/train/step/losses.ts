/**
 * Multi-label losses as graph pieces, each exactly as PyTorch defines it, reduced over the entries the mask keeps
 * (mask 1 = labelled, 0 = ignored, e.g. CheXpert's uncertain labels under U-Ignore):
 * - `bce`: torch.nn.BCEWithLogitsLoss with per-class pos_weight;
 * - `focal`: torchvision.ops.sigmoid_focal_loss (Lin et al. 2017), alpha < 0 disables the class balance;
 * - `asymmetric`: Ridnik et al. 2021's AsymmetricLoss (official implementation), by default with the focusing
 *   weight treated as a constant as that implementation does (disable_torch_grad_focal_loss=True).
 * `mean` divides by the number of kept entries (at least 1); `sum` adds them up (the ASL paper's reduction).
 */
import type { GraphBuilder, Value } from '../../onnx/index.js';

export type LossSpec =
  | { kind: 'bce' }
  | { kind: 'focal'; alpha?: number; gamma?: number }
  | { kind: 'asymmetric'; gammaNeg?: number; gammaPos?: number; clip?: number; eps?: number; focusingGradient?: boolean };

export type Reduction = 'mean' | 'sum';

export interface LossInputs {
  logits: Value;
  targets: Value;
  mask: Value;
  /** [labels], BCE only. */
  posWeight?: Value;
}

export interface LossGraph {
  loss: Value;
  /** Values the gradient must treat as constants. */
  detached: string[];
}

export function validateLoss(spec: LossSpec): void {
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new Error(`loss "${spec.kind}": ${what}`);
  };
  if (spec.kind === 'focal') {
    check((spec.gamma ?? 2) >= 0, `gamma must be >= 0, got ${spec.gamma}`);
    check((spec.alpha ?? 0.25) <= 1, `alpha must be <= 1 (negative disables it), got ${spec.alpha}`);
  } else if (spec.kind === 'asymmetric') {
    check((spec.gammaNeg ?? 4) >= 0 && (spec.gammaPos ?? 1) >= 0, 'gammaNeg and gammaPos must be >= 0');
    check((spec.clip ?? 0.05) >= 0 && (spec.clip ?? 0.05) < 1, `clip must be in [0, 1), got ${spec.clip}`);
    check((spec.eps ?? 1e-8) > 0, `eps must be > 0, got ${spec.eps}`);
  } else if (spec.kind !== 'bce') throw new Error(`unknown loss "${(spec as { kind: string }).kind}"; choose bce, focal or asymmetric`);
}

export function addLoss(b: GraphBuilder, inputs: LossInputs, spec: LossSpec, reduction: Reduction = 'mean'): LossGraph {
  validateLoss(spec);
  const { logits: x, targets: y, mask } = inputs;
  const op = (type: string, ...args: Value[]) => b.op(type, args, {}, { name: b.uniqueValueName(`loss.${type}`) });
  const c = (v: number) => b.scalar(v);
  const oneMinus = (v: Value) => op('Sub', c(1), v);
  const detached: string[] = [];
  let perEntry: Value;
  if (spec.kind === 'bce' || spec.kind === 'focal') {
    // (1 - y) x + w softplus(-x), with w = 1 + (pos_weight - 1) y: PyTorch's stable form of BCE with logits.
    const softplus = op('Softplus', op('Neg', x));
    const weighted = inputs.posWeight && spec.kind === 'bce' ? op('Mul', softplus, op('Add', c(1), op('Mul', op('Sub', inputs.posWeight, c(1)), y))) : softplus;
    perEntry = op('Add', op('Mul', oneMinus(y), x), weighted);
    if (spec.kind === 'focal') {
      const gamma = spec.gamma ?? 2;
      const alpha = spec.alpha ?? 0.25;
      const p = op('Sigmoid', x);
      const pt = op('Add', op('Mul', p, y), op('Mul', oneMinus(p), oneMinus(y)));
      if (gamma !== 0) perEntry = op('Mul', perEntry, op('Pow', oneMinus(pt), c(gamma)));
      if (alpha >= 0) perEntry = op('Mul', perEntry, op('Add', op('Mul', c(alpha), y), op('Mul', c(1 - alpha), oneMinus(y))));
    }
  } else {
    const gammaNeg = spec.gammaNeg ?? 4;
    const gammaPos = spec.gammaPos ?? 1;
    const clip = spec.clip ?? 0.05;
    const eps = spec.eps ?? 1e-8;
    const probabilities = (logits: Value) => {
      const pos = op('Sigmoid', logits);
      let neg = oneMinus(pos);
      if (clip > 0) neg = op('Min', op('Add', neg, c(clip)), c(1));
      return { pos, neg };
    };
    const { pos, neg } = probabilities(x);
    const logLikelihood = op('Add', op('Mul', y, op('Log', op('Max', pos, c(eps)))), op('Mul', oneMinus(y), op('Log', op('Max', neg, c(eps)))));
    perEntry = op('Neg', logLikelihood);
    if (gammaNeg > 0 || gammaPos > 0) {
      let focus = { pos, neg };
      if (!spec.focusingGradient) {
        const constant = op('Identity', x);
        detached.push(constant.name);
        focus = probabilities(constant);
      }
      const pt = op('Add', op('Mul', focus.pos, y), op('Mul', focus.neg, oneMinus(y)));
      const gamma = op('Add', op('Mul', c(gammaPos), y), op('Mul', c(gammaNeg), oneMinus(y)));
      perEntry = op('Mul', perEntry, op('Pow', oneMinus(pt), gamma));
    }
  }
  const all = b.ints([0, 1]);
  const total = b.op('ReduceSum', [op('Mul', perEntry, mask), all], { keepdims: 0 }, { name: b.uniqueValueName('loss.sum') });
  if (reduction === 'sum') return { loss: total, detached };
  const kept = b.op('ReduceSum', [mask, all], { keepdims: 0 }, { name: b.uniqueValueName('loss.count') });
  return { loss: op('Div', total, op('Max', kept, c(1))), detached };
}
