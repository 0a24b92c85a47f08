/**
 * Attention rollout (Abnar & Zuidema, ACL 2020) on a Swin Transformer: each block's attention averaged over heads,
 * the residual added as 0.5 A + 0.5 I, the blocks multiplied out (window-attention.ts places windows, shifts and
 * patch merges), and the relevance of the tokens the classifier pools read over the first stage's grid. It does not
 * depend on the finding: every finding gets the same map. Pure.
 */
import { AttentionMethod, type BlockAttention } from './attention-method.js';
import { type BlockMixing, headMean } from './window-attention.js';

export class AttentionRollout extends AttentionMethod {
  readonly name = 'attention-rollout';
  readonly findingSpecific = false;

  mixing({ block, attention }: BlockAttention): BlockMixing {
    const tokens = block.windowSize ** 2;
    return { geometry: block, mixed: headMean(block.heads, block.windows, tokens, (i) => attention[i]), self: 0.5, mixedWeight: 0.5 };
  }
}
