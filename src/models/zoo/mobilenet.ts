/** MobileNetV2 (Sandler et al. 2018) as in torchvision/models/mobilenetv2.py, width multiplier 1.0. */
import type { Value } from '../../onnx/index.js';
import type { Layers } from '../layers.js';
import type { ArchitectureGraph } from './types.js';

/** Expansion t, output channels c, repeats n, first stride s. */
const INVERTED_RESIDUAL_SETTING = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
] as const;

const LAST_CHANNEL = 1280;

export function mobilenetV2(l: Layers, image: Value, numClasses: number): ArchitectureGraph {
  let x = convBnRelu6(l, 'features.0', image, 32, 3, 2);
  const blocks = ['features.0'];
  let index = 1;
  for (const [t, c, n, s] of INVERTED_RESIDUAL_SETTING) {
    for (let i = 0; i < n; i++) {
      x = invertedResidual(l, `features.${index}`, x, c, i === 0 ? s : 1, t);
      blocks.push(`features.${index++}`);
    }
  }
  const features = convBnRelu6(l, `features.${index}`, x, LAST_CHANNEL, 1, 1);
  blocks.push(`features.${index}`);
  const pooled = l.globalPoolFlatten(features, 'avgpool');
  const logits = l.linear('classifier.1', l.dropout(pooled, 'classifier.0', 0.2), numClasses);
  blocks.push('classifier');
  return { features, logits, blocks };
}

/** torchvision's Conv2dNormActivation: `<path>.0` conv, `<path>.1` batch norm, ReLU6. */
function convBnRelu6(l: Layers, path: string, x: Value, out: number, kernel: number, stride: number, groups = 1): Value {
  const conv = l.conv2d(`${path}.0`, x, { out, kernel, stride, padding: (kernel - 1) >> 1, groups });
  return l.relu6(l.batchNorm(`${path}.1`, conv), `${path}.2`);
}

function invertedResidual(l: Layers, path: string, x: Value, out: number, stride: number, expandRatio: number): Value {
  const inChannels = l.channels(x);
  const hidden = Math.round(inChannels * expandRatio);
  let y = x;
  let k = 0;
  if (expandRatio !== 1) y = convBnRelu6(l, `${path}.conv.${k++}`, y, hidden, 1, 1);
  y = convBnRelu6(l, `${path}.conv.${k++}`, y, hidden, 3, stride, hidden);
  y = l.conv2d(`${path}.conv.${k++}`, y, { out, kernel: 1 });
  y = l.batchNorm(`${path}.conv.${k}`, y);
  return stride === 1 && inChannels === out ? l.b.op('Add', [x, y], {}, { name: `${path}.add` }) : y;
}
