import type { Value } from '../../onnx/index.js';
import type { Layers } from '../layers.js';
import type { ActivationLayout } from '../layouts.js';

/** What an architecture function adds to the graph. */
export interface ArchitectureGraph {
  logits: Value;
  /** The last feature map (torchvision's `features` output, `layer4` for ResNets, the final norm for Swin). */
  features: Value;
  /** Parameter-name prefixes of the stages, stem first, head last; `a|b` groups several prefixes in one stage. */
  blocks: string[];
  /** Activations that are not NCHW (a transformer's channels-last stages), by value name. */
  layouts?: Record<string, ActivationLayout>;
}

export type Architecture = (layers: Layers, image: Value, numClasses: number) => ArchitectureGraph;
