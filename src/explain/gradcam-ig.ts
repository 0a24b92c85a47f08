/**
 * Grad-CAM x Integrated Gradients: Grad-CAM upsampled to the input (scaled to [0, 1], as Guided Grad-CAM's) times
 * the positive part of the Integrated Gradients map (the channel sum; input-gradients.ts, its steps and baseline).
 * Selvaraju et al. (2017) fuse Grad-CAM's class-discriminative localisation with a fine pixel-space map by this
 * pointwise product; here the pixel-space map is Sundararajan et al.'s (2017), which depends on the finding and
 * adds up to the score's change (guided backpropagation hardly depends on either: Adebayo et al. 2018). Not
 * Sattarzadeh et al.'s "Integrated Grad-CAM" (ICASSP 2021), which integrates the gradient at the CAM layer. Pure.
 */
import { AttributionMethod, type AttributionRequest, type Attributions, gradCamOnInput } from './attribution.js';
import { inputGradientMethod } from './input-gradients.js';

export class GradCamIntegratedGradients extends AttributionMethod {
  readonly name = 'gradcam-ig';
  readonly graphs = ['cam', 'input'] as const;

  async attribute(request: AttributionRequest): Promise<Attributions> {
    const { runner, input, dims, labels, target, gradients } = request;
    const cam = await gradCamOnInput(request);
    const integrated = await inputGradientMethod('integrated-gradients').attributions(runner, input, dims, labels, { ...gradients, target });
    const maps = integrated.map(({ map }, k) => ({ width: map.width, height: map.height, data: map.data.map((v, i) => (v > 0 ? v * cam.maps[k][i] : 0)) }));
    return { logits: cam.logits, maps, layer: cam.layer };
  }
}
