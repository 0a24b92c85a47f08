/**
 * Guided backpropagation's rectifiers (Springenberg et al. 2015, sec. 3.4): through a ReLU the gradient passes only
 * where the forward input was positive (the plain rule) AND the gradient arriving from above is positive. ReLU6
 * (Clip from 0) is a rectifier too and is guided the same way, inside its (0, 6) window. These rules serve only
 * the explanation graphs that ask for them (graphs.ts); the registered autodiff rules stay the plain ones.
 */
import { type GradientContext, type GradientRule, gradientRule } from '../autodiff/registry.js';

/** The op's plain rule applied to the positive part of the upstream gradient. */
function guided(opType: string): GradientRule {
  const plain = gradientRule(opType);
  if (!plain) throw new Error(`guided backpropagation: autodiff has no rule for ${opType}`);
  return (ctx: GradientContext) => {
    const positive = ctx.grads.map((g) => g && ctx.op('Relu', [g]));
    return plain({
      ...ctx,
      grads: positive,
      grad: (i = 0) => {
        const g = positive[i];
        if (!g) throw ctx.fail(`output ${i} has no upstream gradient`);
        return g;
      },
    });
  };
}

/** Relu and Clip (ReLU6 and other clipped rectifiers) differentiated the guided way. */
export function guidedRectifierRules(): ReadonlyMap<string, GradientRule> {
  return new Map([
    ['Relu', guided('Relu')],
    ['Clip', guided('Clip')],
  ]);
}
