/**
 * Initial parameter values for freshly built models. Import replaces them; training from scratch uses them.
 * Roles follow torchvision's init: convolutions Kaiming-normal (fan-out, as ResNet and MobileNetV2 do), batch norm
 * weight 1 / bias 0 with running statistics 0 / 1, layer norm weight 1 / bias 0, linear layers uniform(+-1/sqrt(fan_in))
 * like nn.Linear, biases 0, Swin's relative position bias table truncated normal (std 0.02).
 */
import { seededRandom } from '../random.js';

import type { ParameterRole } from './parameters.js';

/** Supplies a parameter's initial values from its name, shape and role. */
export type ParameterInit = (name: string, dims: readonly number[], role: ParameterRole) => Float32Array;

export const zeroInit: ParameterInit = (_name, dims, role) => {
  const values = new Float32Array(dims.reduce((a, b) => a * b, 1));
  if (role === 'bn.weight' || role === 'bn.running_var' || role === 'ln.weight') values.fill(1);
  return values;
};

/** Seeded torchvision-style initialisation; the same seed gives the same weights. */
export function torchvisionInit(seed = 0): ParameterInit {
  const random = seededRandom(seed);
  const normal = () => {
    // Box-Muller; 1 - u keeps the logarithm finite.
    const u = 1 - random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
  return (name, dims, role) => {
    const values = zeroInit(name, dims, role);
    const receptive = dims.slice(2).reduce((a, b) => a * b, 1);
    if (role === 'conv.weight') {
      const std = Math.sqrt(2 / (dims[0] * receptive));
      for (let i = 0; i < values.length; i++) values[i] = normal() * std;
    } else if (role === 'linear.weight') {
      const bound = 1 / Math.sqrt(dims[1]);
      for (let i = 0; i < values.length; i++) values[i] = (random() * 2 - 1) * bound;
    } else if (role === 'attn.relative_position_bias_table') {
      // trunc_normal_(std=0.02) as torchvision's Swin: redrawn beyond two standard deviations.
      for (let i = 0; i < values.length; i++) {
        let z = normal();
        while (Math.abs(z) > 2) z = normal();
        values[i] = z * 0.02;
      }
    }
    return values;
  };
}
