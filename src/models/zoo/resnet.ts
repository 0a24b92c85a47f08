/** ResNet with bottleneck blocks (He et al. 2016, torchvision's v1.5: stride on the 3x3 conv), as in torchvision. */
import type { Value } from '../../onnx/index.js';
import type { Layers } from '../layers.js';
import type { ArchitectureGraph } from './types.js';

const EXPANSION = 4;

export function resnetBottleneck(layers: number[]) {
  return (l: Layers, image: Value, numClasses: number): ArchitectureGraph => {
    let x = l.conv2d('conv1', image, { out: 64, kernel: 7, stride: 2, padding: 3 });
    x = l.relu(l.batchNorm('bn1', x), 'relu');
    x = l.maxPool(x, 'maxpool', 3, 2, 1);
    const blocks = ['conv1|bn1'];
    layers.forEach((count, i) => {
      const stage = `layer${i + 1}`;
      const planes = 64 * 2 ** i;
      for (let j = 0; j < count; j++) x = bottleneck(l, `${stage}.${j}`, x, planes, j === 0 && i > 0 ? 2 : 1);
      blocks.push(stage);
    });
    const logits = l.linear('fc', l.globalPoolFlatten(x, 'avgpool'), numClasses);
    blocks.push('fc');
    return { features: x, logits, blocks };
  };
}

function bottleneck(l: Layers, path: string, x: Value, planes: number, stride: number): Value {
  let y = l.relu(l.batchNorm(`${path}.bn1`, l.conv2d(`${path}.conv1`, x, { out: planes, kernel: 1 })), `${path}.relu1`);
  y = l.relu(l.batchNorm(`${path}.bn2`, l.conv2d(`${path}.conv2`, y, { out: planes, kernel: 3, stride, padding: 1 })), `${path}.relu2`);
  y = l.batchNorm(`${path}.bn3`, l.conv2d(`${path}.conv3`, y, { out: planes * EXPANSION, kernel: 1 }));
  const needsProjection = stride !== 1 || l.channels(x) !== planes * EXPANSION;
  const identity = needsProjection
    ? l.batchNorm(`${path}.downsample.1`, l.conv2d(`${path}.downsample.0`, x, { out: planes * EXPANSION, kernel: 1, stride }))
    : x;
  return l.relu(l.b.op('Add', [y, identity], {}, { name: `${path}.add` }), `${path}.relu`);
}
