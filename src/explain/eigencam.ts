/**
 * Eigen-CAM (Bany Muhammad and Yeasin 2020), as pytorch-grad-cam's eigen_cam.py and svd_on_activations.py define
 * it: the layer's activation as a (locations x channels) matrix, centred per channel, projected on its first
 * principal component; then the ReLU. It uses neither the gradient nor the finding, so every finding gets the
 * same map: what the layer sees most strongly, not why a finding was called.
 * A principal component has no sign (pytorch-grad-cam takes whatever LAPACK's SVD returns); we orient it so that
 * the projection correlates positively with the summed activation per location, so that the ReLU keeps the side
 * where the layer fires. Pure.
 */
import { BaseCam, type Dims } from './cam.js';

export class EigenCam extends BaseCam {
  readonly name = 'eigencam';

  protected weightedSum(activation: Float32Array, _gradient: Float32Array, dims: Dims): Float64Array {
    return firstComponentProjection(activation, dims);
  }
}

/**
 * X v1, with X the centred (locations x channels) activation and v1 its first right singular vector: computed as
 * sqrt(lambda) u for the top eigenvector u of X X^T (locations x locations), by power iteration applied as
 * X (X^T u), so neither covariance is formed.
 */
export function firstComponentProjection(activation: Float32Array, [channels, height, width]: Dims): Float64Array {
  const plane = height * width;
  const x = new Float64Array(channels * plane);
  for (let c = 0; c < channels; c++) {
    let mean = 0;
    for (let i = 0; i < plane; i++) mean += Number.isNaN(activation[c * plane + i]) ? 0 : activation[c * plane + i];
    mean /= plane;
    for (let i = 0; i < plane; i++) x[c * plane + i] = (Number.isNaN(activation[c * plane + i]) ? 0 : activation[c * plane + i]) - mean;
  }
  const total = new Float64Array(plane);
  for (let c = 0; c < channels; c++) for (let i = 0; i < plane; i++) total[i] += activation[c * plane + i];
  // Start from the summed activation (centred): near the component in practice, and deterministic.
  let u = Float64Array.from(total, (v, i) => v - total.reduce((a, b) => a + b, 0) / plane + (i === 0 ? 1e-3 : 0));
  let lambda = 0;
  const xtu = new Float64Array(channels);
  for (let iteration = 0; iteration < 10000; iteration++) {
    const norm = Math.hypot(...u);
    if (norm === 0) return new Float64Array(plane);
    for (let i = 0; i < plane; i++) u[i] /= norm;
    for (let c = 0; c < channels; c++) {
      let sum = 0;
      for (let i = 0; i < plane; i++) sum += x[c * plane + i] * u[i];
      xtu[c] = sum;
    }
    const next = new Float64Array(plane);
    for (let c = 0; c < channels; c++) for (let i = 0; i < plane; i++) next[i] += x[c * plane + i] * xtu[c];
    let rayleigh = 0;
    for (let i = 0; i < plane; i++) rayleigh += next[i] * u[i];
    let moved = 0;
    const nextNorm = Math.hypot(...next);
    for (let i = 0; i < plane; i++) moved = Math.max(moved, Math.abs(next[i] / (nextNorm || 1) - u[i]));
    u = next;
    const settled = Math.abs(rayleigh - lambda) <= 1e-13 * Math.abs(rayleigh) && moved < 1e-10;
    lambda = rayleigh;
    if (settled) break;
  }
  const norm = Math.hypot(...u);
  const scale = Math.sqrt(Math.max(lambda, 0)) / (norm || 1);
  let agreement = 0;
  for (let i = 0; i < plane; i++) agreement += u[i] * total[i];
  const sign = agreement < 0 ? -1 : 1;
  return Float64Array.from(u, (v) => sign * scale * v);
}
