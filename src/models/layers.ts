/**
 * torchvision's building blocks as graph-building helpers. Parameters get torchvision's state-dict names
 * (`<module path>.weight`, `.running_mean`, ...) and nodes are named after the module path, so a PyTorch state dict
 * maps one-to-one and errors point at a familiar module.
 */
import { type GraphBuilder, type Value, float32 } from '../onnx/index.js';
import type { ParameterInit } from './init.js';
import type { ParameterRole } from './parameters.js';

export interface ConvOptions {
  out: number;
  kernel: number;
  stride?: number;
  padding?: number;
  groups?: number;
  bias?: boolean;
}

export class Layers {
  /** Every parameter created so far, with its role (stored in the model: models/parameters.ts). */
  readonly declared: Record<string, ParameterRole> = {};

  constructor(
    readonly b: GraphBuilder,
    private readonly init: ParameterInit,
  ) {}

  /** A learned parameter (or running statistic): initialised by role and declared, so training finds it whatever reads it. */
  param(name: string, dims: number[], role: ParameterRole): Value {
    this.declared[name] = role;
    return this.b.initializer(name, float32(dims, this.init(name, dims, role)));
  }

  channels(x: Value): number {
    const c = x.type.shape[1];
    if (typeof c !== 'number') throw new Error(`"${x.name}" has no fixed channel count`);
    return c;
  }

  conv2d(path: string, x: Value, o: ConvOptions): Value {
    const groups = o.groups ?? 1;
    const inChannels = this.channels(x);
    const weight = this.param(`${path}.weight`, [o.out, inChannels / groups, o.kernel, o.kernel], 'conv.weight');
    const bias = o.bias ? this.param(`${path}.bias`, [o.out], 'conv.bias') : undefined;
    const pad = o.padding ?? 0;
    const stride = o.stride ?? 1;
    return this.b.op(
      'Conv',
      [x, weight, bias],
      { kernel_shape: [o.kernel, o.kernel], strides: [stride, stride], pads: [pad, pad, pad, pad], group: groups },
      { name: path },
    );
  }

  batchNorm(path: string, x: Value, epsilon = 1e-5): Value {
    const c = this.channels(x);
    const params = (['weight', 'bias', 'running_mean', 'running_var'] as const).map((p) => this.param(`${path}.${p}`, [c], `bn.${p}`));
    return this.b.op('BatchNormalization', [x, ...params], { epsilon, momentum: 0.9 }, { name: path });
  }

  relu(x: Value, path: string): Value {
    return this.b.op('Relu', [x], {}, { name: path });
  }

  relu6(x: Value, path: string): Value {
    return this.b.op('Clip', [x, this.b.scalar(0), this.b.scalar(6)], {}, { name: path });
  }

  maxPool(x: Value, path: string, kernel: number, stride: number, padding = 0): Value {
    return this.b.op('MaxPool', [x], { kernel_shape: [kernel, kernel], strides: [stride, stride], pads: [padding, padding, padding, padding] }, { name: path });
  }

  avgPool(x: Value, path: string, kernel: number, stride: number): Value {
    return this.b.op('AveragePool', [x], { kernel_shape: [kernel, kernel], strides: [stride, stride] }, { name: path });
  }

  /**
   * torchvision's nn.Linear: y = x W^T + b with W stored [out, in], on the last axis. A matrix input is one Gemm; a
   * higher-rank one (a transformer's [batch, ..., features]) a MatMul with the transposed weight, which keeps the
   * leading axes (and the symbolic batch) as they are.
   */
  linear(path: string, x: Value, out: number, bias = true): Value {
    const inFeatures = x.type.shape.at(-1);
    if (typeof inFeatures !== 'number') throw new Error(`"${x.name}" has no fixed feature count`);
    const weight = this.param(`${path}.weight`, [out, inFeatures], 'linear.weight');
    const b = bias ? this.param(`${path}.bias`, [out], 'linear.bias') : undefined;
    if (x.type.shape.length === 2) return this.b.op('Gemm', [x, weight, b], { transB: 1 }, { name: path });
    const transposed = this.b.op('Transpose', [weight], { perm: [1, 0] }, { name: `${path}.weight_t` });
    const product = this.b.op('MatMul', [x, transposed], {}, { name: b ? `${path}.matmul` : path });
    return b ? this.b.op('Add', [product, b], {}, { name: path }) : product;
  }

  /** nn.LayerNorm over the last axis. */
  layerNorm(path: string, x: Value, epsilon = 1e-5): Value {
    const features = x.type.shape.at(-1);
    if (typeof features !== 'number') throw new Error(`"${x.name}" has no fixed feature count`);
    const weight = this.param(`${path}.weight`, [features], 'ln.weight');
    const bias = this.param(`${path}.bias`, [features], 'ln.bias');
    return this.b.op('LayerNormalization', [x, weight, bias], { axis: -1, epsilon }, { name: path });
  }

  /** nn.GELU(): the exact x * (1 + erf(x / sqrt 2)) / 2, in the form ONNX Runtime fuses into one Gelu kernel. */
  gelu(x: Value, path: string): Value {
    const erf = this.b.op('Erf', [this.b.op('Div', [x, this.b.scalar(Math.SQRT2)], {}, { name: `${path}.div` })], {}, { name: `${path}.erf` });
    const scaled = this.b.op('Mul', [x, this.b.op('Add', [erf, this.b.scalar(1)], {}, { name: `${path}.add` })], {}, { name: `${path}.mul` });
    return this.b.op('Mul', [scaled, this.b.scalar(0.5)], {}, { name: path });
  }

  /** AdaptiveAvgPool2d((1, 1)) + flatten, as every zoo head does. */
  globalPoolFlatten(x: Value, path: string): Value {
    const pooled = this.b.op('GlobalAveragePool', [x], {}, { name: path });
    return this.b.op('Flatten', [pooled], { axis: 1 }, { name: `${path}.flatten` });
  }

  /**
   * AdaptiveAvgPool2d((outH, outW)) for any input size, as one MatMul against a fixed pooling matrix built with
   * PyTorch's window rule (start = floor(i*in/out), end = ceil((i+1)*in/out)). Exact, and differentiable.
   */
  adaptiveAvgPool(x: Value, path: string, outH: number, outW: number): Value {
    const [, , h, w] = x.type.shape;
    if (typeof h !== 'number' || typeof w !== 'number') throw new Error(`"${x.name}" needs a fixed spatial size for adaptive pooling`);
    if (h === outH && w === outW) return x;
    const matrix = new Float32Array(h * w * outH * outW);
    for (let oy = 0; oy < outH; oy++) {
      const y0 = Math.floor((oy * h) / outH);
      const y1 = Math.ceil(((oy + 1) * h) / outH);
      for (let ox = 0; ox < outW; ox++) {
        const x0 = Math.floor((ox * w) / outW);
        const x1 = Math.ceil(((ox + 1) * w) / outW);
        const weight = 1 / ((y1 - y0) * (x1 - x0));
        for (let y = y0; y < y1; y++) for (let xx = x0; xx < x1; xx++) matrix[(y * w + xx) * outH * outW + oy * outW + ox] = weight;
      }
    }
    const flat = this.b.op('Reshape', [x, this.b.ints([0, 0, h * w])], {}, { name: `${path}.flatten` });
    const pooled = this.b.op('MatMul', [flat, this.b.constant(float32([h * w, outH * outW], matrix), `${path}.matrix`)], {}, { name: path });
    return this.b.op('Reshape', [pooled, this.b.ints([0, 0, outH, outW])], {}, { name: `${path}.unflatten` });
  }

  dropout(x: Value, path: string, ratio: number): Value {
    // Identity at inference; training graphs switch it on (autodiff). The ratio is recorded as a constant input.
    return this.b.op('Dropout', [x, this.b.scalar(ratio)], {}, { name: path });
  }
}
