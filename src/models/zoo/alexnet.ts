/** AlexNet (Krizhevsky et al. 2012) as in torchvision/models/alexnet.py. */
import type { Value } from '../../onnx/index.js';
import type { Layers } from '../layers.js';
import type { ArchitectureGraph } from './types.js';

export function alexnet(l: Layers, image: Value, numClasses: number): ArchitectureGraph {
  let x = l.relu(l.conv2d('features.0', image, { out: 64, kernel: 11, stride: 4, padding: 2, bias: true }), 'features.1');
  x = l.maxPool(x, 'features.2', 3, 2);
  x = l.relu(l.conv2d('features.3', x, { out: 192, kernel: 5, padding: 2, bias: true }), 'features.4');
  x = l.maxPool(x, 'features.5', 3, 2);
  x = l.relu(l.conv2d('features.6', x, { out: 384, kernel: 3, padding: 1, bias: true }), 'features.7');
  x = l.relu(l.conv2d('features.8', x, { out: 256, kernel: 3, padding: 1, bias: true }), 'features.9');
  x = l.relu(l.conv2d('features.10', x, { out: 256, kernel: 3, padding: 1, bias: true }), 'features.11');
  const features = l.maxPool(x, 'features.12', 3, 2);
  const pooled = l.adaptiveAvgPool(features, 'avgpool', 6, 6);
  let h = l.b.op('Flatten', [pooled], { axis: 1 }, { name: 'flatten' });
  h = l.relu(l.linear('classifier.1', l.dropout(h, 'classifier.0', 0.5), 4096), 'classifier.2');
  h = l.relu(l.linear('classifier.4', l.dropout(h, 'classifier.3', 0.5), 4096), 'classifier.5');
  const logits = l.linear('classifier.6', h, numClasses);
  return { features, logits, blocks: ['features.0', 'features.3', 'features.6', 'features.8', 'features.10', 'classifier'] };
}
