/**
 * The base of the transformer-native methods (attention rollout, Chefer et al.): they read every attention block's
 * probabilities, and for a finding-specific method their gradients, from the runner (GradientRunner.
 * attentionGradients), turn each block into a token-mixing matrix and roll those out over the first stage's token
 * grid (window-attention.ts). A model without attention blocks (a CNN) is refused. Pure.
 */
import { AttributionMethod, type AttributionRequest, type Attributions, type RunnerGraph } from './attribution.js';
import type { AttentionBlock, AttentionGradients, GridMap } from './types.js';
import { type BlockMixing, rollOut } from './window-attention.js';
import { float32 } from '../onnx/tensor.js';

/** One block's attention of the image and the gradient of one finding's score with respect to it (times `scale`). */
export interface BlockAttention {
  block: AttentionBlock;
  /** [windows, heads, tokens, tokens]. */
  attention: Float32Array;
  /** [windows, heads, tokens, tokens] of the finding's logit; multiply by `scale` for the explained score. */
  gradient: Float32Array;
  /** 1 for the logit, p(1 - p) for the probability. */
  scale: number;
}

export abstract class AttentionMethod extends AttributionMethod {
  /** Whether the map depends on the finding (gradients); rollout's does not, so it runs the attention graph once. */
  abstract readonly findingSpecific: boolean;
  get graphs(): readonly RunnerGraph[] {
    return this.findingSpecific ? ['attention'] : ['attention', 'model'];
  }

  abstract mixing(block: BlockAttention): BlockMixing;

  async attribute({ runner, input, dims, labels, target, gradients }: AttributionRequest): Promise<Attributions> {
    if (!runner.attentionGradients) throw new Error(`${this.name} reads a transformer's attention, which this runner cannot do (server only)`);
    const size = dims[0] * dims[1] * dims[2];
    const logits = new Float32Array(runner.labels.length);
    const maps = [];
    if (!this.findingSpecific) {
      const image = float32([1, ...dims], input);
      logits.set(await runner.logits(image));
      const map = this.map(await runner.attentionGradients(image, [labels[0]]), 0, 1);
      return { logits, maps: labels.map(() => map) };
    }
    // Rows hold the gradient at every block: few per run.
    const batchSize = gradients.batchSize ?? 4;
    for (let first = 0; first < labels.length; first += batchSize) {
      const rows = labels.slice(first, first + batchSize);
      const batch = float32([rows.length, ...dims]);
      rows.forEach((_, r) => batch.data.set(input, r * size));
      const result = await runner.attentionGradients(batch, rows);
      for (const [r, label] of rows.entries()) {
        logits[label] = result.logits[r];
        const p = 1 / (1 + Math.exp(-result.logits[r]));
        maps.push(this.map(result, r, target === 'probability' ? p * (1 - p) : 1));
      }
    }
    return { logits, maps };
  }

  /** Row `row`'s map over the first stage's token grid. */
  private map({ blocks }: AttentionGradients, row: number, scale: number): GridMap {
    const mixings = blocks.map((block) => {
      const size = block.attention.length;
      return this.mixing({ block, attention: block.attention, gradient: block.gradients.subarray(row * size, (row + 1) * size), scale });
    });
    const { width, height, data } = rollOut(mixings);
    return { width, height, data: Float32Array.from(data) };
  }
}
