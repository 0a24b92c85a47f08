import type { Value } from '../../onnx/index.js';
import type { Layers } from '../layers.js';

/** What an architecture function adds to the graph. */
export interface ArchitectureGraph {
  logits: Value;
  /** The last convolutional feature map (torchvision's `features` output, `layer4` for ResNets). */
  features: Value;
  /** Parameter-name prefixes of the stages, stem first, head last; `a|b` groups several prefixes in one stage. */
  blocks: string[];
}

export type Architecture = (layers: Layers, image: Value, numClasses: number) => ArchitectureGraph;
