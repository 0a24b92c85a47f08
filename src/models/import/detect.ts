/** Recognising which architecture a set of weights belongs to, from parameter names or from layer counts. */
import type { ArchitectureName } from '../zoo/index.js';
import type { ForeignLayer } from './foreign-layers.js';

/** A parameter name only that architecture has (torchvision naming). */
const SIGNATURE_KEYS: [ArchitectureName, string][] = [
  ['densenet121', 'features.denseblock1.denselayer1.conv1.weight'],
  ['resnet50', 'layer1.0.conv3.weight'],
  ['mobilenet_v2', 'features.1.conv.0.0.weight'],
  ['alexnet', 'classifier.6.weight'],
  ['swin_t', 'features.1.0.attn.relative_position_bias_table'],
];

/** Convolution counts of each architecture, for files whose names are lost. */
const CONV_COUNTS: [ArchitectureName, number][] = [
  ['densenet121', 120],
  ['resnet50', 53],
  ['mobilenet_v2', 52],
  ['alexnet', 5],
];

/** The architecture whose signature key the names hold, also behind a wrapper prefix (torchxrayvision's `model.`). */
export function architectureFromNames(names: Iterable<string>): ArchitectureName | undefined {
  const list = [...names];
  return SIGNATURE_KEYS.find(([, key]) => list.some((name) => name === key || name.endsWith(`.${key}`)))?.[0];
}

export function architectureFromLayers(layers: ForeignLayer[]): ArchitectureName | undefined {
  const convs = layers.filter((l) => l.kind === 'conv').length;
  return CONV_COUNTS.find(([, count]) => count === convs)?.[0];
}
