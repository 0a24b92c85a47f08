/** DenseNet (Huang et al. 2017) as in torchvision/models/densenet.py; densenet121 is CheXNet's backbone. */
import type { Value } from '../../onnx/index.js';
import type { Layers } from '../layers.js';
import type { ArchitectureGraph } from './types.js';

export interface DenseNetConfig {
  growthRate: number;
  blockConfig: number[];
  numInitFeatures: number;
  bnSize: number;
}

export const DENSENET121: DenseNetConfig = { growthRate: 32, blockConfig: [6, 12, 24, 16], numInitFeatures: 64, bnSize: 4 };

export function densenet(config: DenseNetConfig) {
  return (l: Layers, image: Value, numClasses: number): ArchitectureGraph => {
    let x = l.conv2d('features.conv0', image, { out: config.numInitFeatures, kernel: 7, stride: 2, padding: 3 });
    x = l.relu(l.batchNorm('features.norm0', x), 'features.relu0');
    x = l.maxPool(x, 'features.pool0', 3, 2, 1);
    const blocks = ['features.conv0|features.norm0'];
    config.blockConfig.forEach((layers, i) => {
      const block = `features.denseblock${i + 1}`;
      x = denseBlock(l, block, x, layers, config);
      blocks.push(block);
      if (i < config.blockConfig.length - 1) {
        const t = `features.transition${i + 1}`;
        let y = l.relu(l.batchNorm(`${t}.norm`, x), `${t}.relu`);
        y = l.conv2d(`${t}.conv`, y, { out: Math.floor(l.channels(x) / 2), kernel: 1 });
        x = l.avgPool(y, `${t}.pool`, 2, 2);
        blocks.push(t);
      }
    });
    const features = l.batchNorm('features.norm5', x);
    blocks[blocks.length - 1] += '|features.norm5';
    const pooled = l.globalPoolFlatten(l.relu(features, 'relu'), 'avgpool');
    const logits = l.linear('classifier', pooled, numClasses);
    blocks.push('classifier');
    return { features, logits, blocks };
  };
}

/** Each layer sees the concatenation of the block input and every earlier layer's new features. */
function denseBlock(l: Layers, path: string, input: Value, count: number, c: DenseNetConfig): Value {
  const maps: Value[] = [input];
  for (let i = 1; i <= count; i++) {
    const p = `${path}.denselayer${i}`;
    const concatenated = maps.length === 1 ? maps[0] : l.b.op('Concat', maps, { axis: 1 }, { name: `${p}.cat` });
    let y = l.relu(l.batchNorm(`${p}.norm1`, concatenated), `${p}.relu1`);
    y = l.conv2d(`${p}.conv1`, y, { out: c.bnSize * c.growthRate, kernel: 1 });
    y = l.relu(l.batchNorm(`${p}.norm2`, y), `${p}.relu2`);
    y = l.conv2d(`${p}.conv2`, y, { out: c.growthRate, kernel: 3, padding: 1 });
    maps.push(y);
  }
  return l.b.op('Concat', maps, { axis: 1 }, { name: `${path}.cat` });
}
