/**
 * Methods beyond the CAM and input-gradient families by name, each one file over attribution.ts's base: FullGrad,
 * guided backpropagation, the Grad-CAM hybrids and the transformer-native attention methods. A new one is its class plus one entry here.
 */
import { AttentionRollout } from './attention-rollout.js';
import type { AttributionMethod } from './attribution.js';
import { Chefer } from './chefer.js';
import { FullGrad } from './fullgrad.js';
import { GradCamIntegratedGradients } from './gradcam-ig.js';
import { GuidedBackprop } from './guided-backprop.js';
import { GuidedGradCam } from './guided-gradcam.js';

const METHODS = {
  fullgrad: new FullGrad(),
  'guided-backprop': new GuidedBackprop(),
  'guided-gradcam': new GuidedGradCam(),
  'gradcam-ig': new GradCamIntegratedGradients(),
  'attention-rollout': new AttentionRollout(),
  chefer: new Chefer(),
} satisfies Record<string, AttributionMethod>;

export type AttributionMethodName = keyof typeof METHODS;

export const ATTRIBUTION_METHODS = Object.keys(METHODS) as AttributionMethodName[];

export function isAttributionMethod(method: string): method is AttributionMethodName {
  return Object.hasOwn(METHODS, method);
}

export function attributionMethod(name: AttributionMethodName): AttributionMethod {
  return METHODS[name];
}
