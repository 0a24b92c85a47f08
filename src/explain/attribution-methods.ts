/**
 * Methods beyond the CAM and input-gradient families by name, each one file over attribution.ts's base: FullGrad,
 * guided backpropagation and the Grad-CAM hybrids. A new one is its class plus one entry here.
 */
import type { AttributionMethod } from './attribution.js';
import { FullGrad } from './fullgrad.js';
import { GradCamIntegratedGradients } from './gradcam-ig.js';
import { GuidedBackprop } from './guided-backprop.js';
import { GuidedGradCam } from './guided-gradcam.js';

const METHODS = {
  fullgrad: new FullGrad(),
  'guided-backprop': new GuidedBackprop(),
  'guided-gradcam': new GuidedGradCam(),
  'gradcam-ig': new GradCamIntegratedGradients(),
} satisfies Record<string, AttributionMethod>;

export type AttributionMethodName = keyof typeof METHODS;

export const ATTRIBUTION_METHODS = Object.keys(METHODS) as AttributionMethodName[];

export function isAttributionMethod(method: string): method is AttributionMethodName {
  return Object.hasOwn(METHODS, method);
}

export function attributionMethod(name: AttributionMethodName): AttributionMethod {
  return METHODS[name];
}
