/**
 * How much an image's overall layout looks like a chest film: the squared Mahalanobis distance of its standardised
 * 32 x 32 thumbnail (orientation.ts) to a PPCA Gaussian of real films' thumbnails, divided by the number of
 * pixels (real films score about 1). It needs no network and judges what the model's features can miss: a
 * photograph or a document page has light and dark in the wrong places whatever the features make of it.
 */
import type { StoredGaussian } from '../models/metadata.js';
import { type GaussianModel, mahalanobisScore } from './detector.js';
import { decodeFloats, encodeFloats } from './encoding.js';

export const LAYOUT_COMPONENTS = 64;

export function encodeGaussian(g: GaussianModel): StoredGaussian {
  return {
    channels: g.channels,
    components: g.components,
    mean: encodeFloats(g.mean),
    basis: encodeFloats(g.basis),
    variances: encodeFloats(g.variances),
    residualVariance: g.residualVariance,
  };
}

export function decodeGaussian(s: StoredGaussian): GaussianModel {
  const what = 'the input checks\' thumbnail Gaussian';
  return {
    channels: s.channels,
    components: s.components,
    mean: decodeFloats(s.mean, s.channels, what),
    basis: decodeFloats(s.basis, s.channels * s.components, what),
    variances: decodeFloats(s.variances, s.components, what),
    residualVariance: s.residualVariance,
  };
}

export function layoutScore(g: GaussianModel, standardisedThumbnail: Float32Array): number {
  return mahalanobisScore(g, standardisedThumbnail);
}
