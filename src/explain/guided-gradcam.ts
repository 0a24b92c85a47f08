/**
 * Guided Grad-CAM (Selvaraju et al., ICCV 2017, sec. 3.1): guided backpropagation multiplied pointwise by Grad-CAM
 * upsampled to the input, as pytorch-grad-cam's example computes it (cam_mask * GuidedBackpropReLUModel's
 * gradient, the CAM scaled to [0, 1]). Its map is max over channels of |guided gradient| x CAM: the CAM is the
 * same for every channel and not negative. Pure.
 */
import { AttributionMethod, type AttributionRequest, type Attributions, gradCamOnInput } from './attribution.js';
import { guidedGradients } from './guided-backprop.js';

export class GuidedGradCam extends AttributionMethod {
  readonly name = 'guided-gradcam';
  readonly graphs = ['cam', 'guided'] as const;

  async attribute(request: AttributionRequest): Promise<Attributions> {
    const cam = await gradCamOnInput(request);
    const guided = await guidedGradients(request);
    const maps = guided.map(({ map }, k) => ({ width: map.width, height: map.height, data: map.data.map((v, i) => v * cam.maps[k][i]) }));
    return { logits: cam.logits, maps, layer: cam.layer };
  }
}
