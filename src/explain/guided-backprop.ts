/**
 * Guided backpropagation (Springenberg et al., ICLR 2015 workshop, sec. 3.4): the input gradient with every
 * rectifier passing back only positive gradients where its input was positive (guided-rules.ts), as
 * pytorch-grad-cam's GuidedBackpropReLUModel computes it. Unlike that class, which swaps torch.nn.ReLU modules
 * only, every ReLU and ReLU6 is guided (MobileNetV2 has only ReLU6, DenseNet a functional ReLU before its pooling:
 * swapping modules would leave them plain). The map is max over channels of |a| as for the plain gradient. Pure.
 */
import { AttributionMethod, type AttributionRequest, type Attributions } from './attribution.js';
import { type InputAttribution, inputGradientMethod } from './input-gradients.js';
import { float32 } from '../onnx/tensor.js';

export class GuidedBackprop extends AttributionMethod {
  readonly name = 'guided-backprop';
  readonly graphs = ['guided', 'model'] as const;

  async attribute(request: AttributionRequest): Promise<Attributions> {
    const logits = await request.runner.logits(float32([1, ...request.dims], request.input));
    return { logits, maps: (await guidedGradients(request)).map((a) => a.map) };
  }
}

/** Each requested finding's guided-backpropagation gradient [C, H, W] and its map. */
export function guidedGradients({ runner, input, dims, labels, target, gradients }: AttributionRequest): Promise<InputAttribution[]> {
  return inputGradientMethod('gradient').attributions(runner, input, dims, labels, { ...gradients, target, rectifiers: 'guided' });
}
