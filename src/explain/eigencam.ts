/**
 * Eigen-CAM (Bany Muhammad and Yeasin 2020), as pytorch-grad-cam's eigen_cam.py defines it: the layer's activation
 * projected on its first principal component (cam.ts firstComponentProjection, oriented towards where the layer
 * fires), then the ReLU. It uses neither the gradient nor the finding, so every finding gets the same map: what the
 * layer sees most strongly, not why a finding was called. Pure.
 */
import { BaseCam, type CamOptions, type Dims } from './cam.js';
import type { GridMap } from './types.js';

export class EigenCam extends BaseCam {
  readonly name = 'eigencam';

  protected weighted(activation: Float32Array): Float64Array {
    return Float64Array.from(activation);
  }

  /** Always the projection: it is the method, so eigen-smoothing changes nothing. */
  override map(activation: Float32Array, gradient: Float32Array, dims: Dims, _options: CamOptions = {}): GridMap {
    return super.map(activation, gradient, dims, { eigenSmooth: true });
  }
}
