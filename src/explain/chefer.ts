/**
 * Chefer, Gur & Wolf (ICCV 2021, "Generic Attention-model Explainability"), the self-attention rule on a Swin
 * Transformer: per block Ā = mean over heads of relu(dy/dA x A), for the finding's score y, and R = R + Ā R from
 * R = I; window-attention.ts places windows, shifts and patch merges. The map is the relevance of the tokens the
 * classifier pools, over the first stage's grid. Pure.
 */
import { AttentionMethod, type BlockAttention } from './attention-method.js';
import { type BlockMixing, headMean } from './window-attention.js';

export class Chefer extends AttentionMethod {
  readonly name = 'chefer';
  readonly findingSpecific = true;

  mixing({ block, attention, gradient, scale }: BlockAttention): BlockMixing {
    const tokens = block.windowSize ** 2;
    const mixed = headMean(block.heads, block.windows, tokens, (i) => Math.max(0, scale * gradient[i] * attention[i]));
    return { geometry: block, mixed, self: 1, mixedWeight: 1 };
  }
}
