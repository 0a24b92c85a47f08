/**
 * Methods that differentiate a finding's score with respect to the input image, sharing one base: each chooses
 * the images at which the gradient is taken (the image itself, noisy copies, a path from a baseline) and how the
 * averaged gradient becomes an attribution; the base batches every (image, finding) pair through the runner and
 * applies the chain rule for probability targets per row. Pure.
 */
import { SeededRandom } from '../eval/random.js';
import { float32 } from '../onnx/tensor.js';
import type { PreprocessingSpec } from '../imaging/spec.js';
import type { ExplanationTarget, GradientRunner, GridMap, Rectifiers } from './types.js';

export const INPUT_GRADIENT_METHODS = ['gradient', 'smoothgrad', 'integrated-gradients'] as const;
export type InputGradientMethodName = (typeof INPUT_GRADIENT_METHODS)[number];

export interface SmoothGradOptions {
  /** Noisy copies averaged; default 25. */
  samples?: number;
  /** Noise standard deviation as a fraction of the input's range (max - min); default 0.15 (Smilkov et al.). */
  noise?: number;
  /** Seed of the noise; default 0. */
  seed?: number;
}

export interface IntegratedGradientsOptions {
  /** Points on the path from the baseline to the image (midpoint Riemann sum); default 32. */
  steps?: number;
  /**
   * The reference image: 'black' (intensity 0), 'mean' (zero after normalisation: the dataset's mean gray), or a
   * gray level in [0, 1]; default 'black'.
   */
  baseline?: 'black' | 'mean' | number;
}

export interface InputGradientOptions {
  target?: ExplanationTarget;
  /** (image, finding) rows per run of the gradient graph; default 8. */
  batchSize?: number;
  smoothgrad?: SmoothGradOptions;
  integratedGradients?: IntegratedGradientsOptions;
  /** The model's pixel contract, needed for baselines given as intensities. */
  preprocessing?: Pick<PreprocessingSpec, 'mean' | 'std'>;
  /** How the gradients pass rectifiers; default 'plain' ('guided': guided backpropagation). */
  rectifiers?: Rectifiers;
}

type Dims = readonly [channels: number, height: number, width: number];

/** A per-finding attribution over the input [C, H, W] and its map over the input grid. */
export interface InputAttribution {
  attribution: Float32Array;
  map: GridMap;
}

export abstract class InputGradientMethod {
  abstract readonly name: InputGradientMethodName;

  /** The images [C, H, W] at which gradients are taken (the same for every finding) and their weights (sum 1). */
  protected abstract points(input: Float32Array, dims: Dims, options: InputGradientOptions): { images: Float32Array[]; weights: number[] };

  /** The attribution from the weighted mean gradient; by default the gradient itself. */
  protected attribution(meanGradient: Float32Array, _input: Float32Array, _dims: Dims, _options: InputGradientOptions): Float32Array {
    return meanGradient;
  }

  /** One value per pixel; by default max_c |a_c| (Simonyan et al. 2014). */
  protected reduce(attribution: Float32Array, [channels, height, width]: Dims): Float32Array {
    const plane = height * width;
    const out = new Float32Array(plane);
    for (let c = 0; c < channels; c++) {
      for (let i = 0; i < plane; i++) {
        const v = Math.abs(attribution[c * plane + i]);
        if (v > out[i]) out[i] = v;
      }
    }
    return out;
  }

  async attributions(runner: GradientRunner, input: Float32Array, dims: Dims, labels: readonly number[], options: InputGradientOptions = {}): Promise<InputAttribution[]> {
    const size = dims[0] * dims[1] * dims[2];
    if (input.length !== size) throw new Error(`${this.name}: the input has ${input.length} values, expected ${dims.join('x')}`);
    const batchSize = options.batchSize ?? 8;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`${this.name}: batch size must be a positive whole number, got ${batchSize}`);
    const { images, weights } = this.points(input, dims, options);
    const sums = labels.map(() => new Float64Array(size));
    const rows = labels.length * images.length;
    for (let first = 0; first < rows; first += batchSize) {
      const count = Math.min(batchSize, rows - first);
      const batch = float32([count, ...dims]);
      const rowLabels: number[] = [];
      for (let r = 0; r < count; r++) {
        const row = first + r;
        batch.data.set(images[row % images.length], r * size);
        rowLabels.push(labels[Math.floor(row / images.length)]);
      }
      const { gradients, logits } = await runner.inputGradients(batch, rowLabels, options.rectifiers);
      for (let r = 0; r < count; r++) {
        const row = first + r;
        const p = 1 / (1 + Math.exp(-logits[r]));
        const scale = weights[row % images.length] * (options.target === 'probability' ? p * (1 - p) : 1);
        const sum = sums[Math.floor(row / images.length)];
        for (let i = 0; i < size; i++) sum[i] += scale * gradients[r * size + i];
      }
    }
    return sums.map((sum) => {
      const attribution = this.attribution(Float32Array.from(sum), input, dims, options);
      return { attribution, map: { width: dims[2], height: dims[1], data: this.reduce(attribution, dims) } };
    });
  }
}

/** The plain input gradient ("vanilla" saliency, Simonyan et al. 2014). */
export class InputGradient extends InputGradientMethod {
  readonly name = 'gradient';

  protected points(input: Float32Array) {
    return { images: [input], weights: [1] };
  }
}

/** SmoothGrad (Smilkov et al. 2017): the gradient averaged over copies of the image with Gaussian noise. */
export class SmoothGrad extends InputGradientMethod {
  readonly name = 'smoothgrad';

  protected points(input: Float32Array, _dims: Dims, options: InputGradientOptions) {
    const samples = options.smoothgrad?.samples ?? 25;
    const level = options.smoothgrad?.noise ?? 0.15;
    if (!Number.isInteger(samples) || samples < 1) throw new Error(`smoothgrad: samples must be a positive whole number, got ${samples}`);
    if (!(level >= 0)) throw new Error(`smoothgrad: noise must be >= 0, got ${level}`);
    let min = Infinity;
    let max = -Infinity;
    for (const v of input) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const sigma = level * (max - min);
    const normal = gaussian(options.smoothgrad?.seed ?? 0);
    const images = Array.from({ length: samples }, () => input.map((v) => v + sigma * normal()));
    return { images, weights: images.map(() => 1 / samples) };
  }
}

/**
 * Integrated Gradients (Sundararajan et al. 2017): (x - x') times the mean gradient along the straight path from
 * a baseline x' to x. Attributions are signed and add up to score(x) - score(x') (completeness) as the steps
 * grow; the map sums the channels.
 */
export class IntegratedGradients extends InputGradientMethod {
  readonly name = 'integrated-gradients';

  protected points(input: Float32Array, dims: Dims, options: InputGradientOptions) {
    const steps = options.integratedGradients?.steps ?? 32;
    if (!Number.isInteger(steps) || steps < 1) throw new Error(`integrated-gradients: steps must be a positive whole number, got ${steps}`);
    const baseline = integratedGradientsBaseline(dims, options);
    const images = Array.from({ length: steps }, (_, k) => {
      const alpha = (k + 0.5) / steps;
      return input.map((v, i) => baseline[i] + alpha * (v - baseline[i]));
    });
    return { images, weights: images.map(() => 1 / steps) };
  }

  protected override attribution(meanGradient: Float32Array, input: Float32Array, dims: Dims, options: InputGradientOptions): Float32Array {
    const baseline = integratedGradientsBaseline(dims, options);
    return meanGradient.map((g, i) => g * (input[i] - baseline[i]));
  }

  protected override reduce(attribution: Float32Array, [channels, height, width]: Dims): Float32Array {
    const plane = height * width;
    const out = new Float32Array(plane);
    for (let c = 0; c < channels; c++) for (let i = 0; i < plane; i++) out[i] += attribution[c * plane + i];
    return out;
  }
}

/** The baseline image of Integrated Gradients in the model's normalised units, [C, H, W] flattened. */
export function integratedGradientsBaseline([channels, height, width]: Dims, options: InputGradientOptions): Float32Array {
  const choice = options.integratedGradients?.baseline ?? 'black';
  const plane = height * width;
  const out = new Float32Array(channels * plane);
  if (choice === 'mean') return out;
  const level = choice === 'black' ? 0 : choice;
  if (typeof level !== 'number' || !(level >= 0 && level <= 1)) throw new Error(`integrated-gradients: baseline must be "black", "mean" or a gray level in [0, 1], got ${JSON.stringify(choice)}`);
  const spec = options.preprocessing;
  if (!spec || spec.mean.length !== channels) throw new Error('integrated-gradients: a baseline given as an intensity needs the model\'s preprocessing (mean and std per channel)');
  for (let c = 0; c < channels; c++) out.fill((level - spec.mean[c]) / spec.std[c], c * plane, (c + 1) * plane);
  return out;
}

/** Standard normal draws (Box-Muller) from a seeded uniform generator. */
function gaussian(seed: number): () => number {
  const random = new SeededRandom(seed);
  const uniform = () => (random.uint32() + 0.5) / 4294967296;
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const v = spare;
      spare = undefined;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const theta = 2 * Math.PI * uniform();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
}

const METHODS: Record<InputGradientMethodName, InputGradientMethod> = {
  gradient: new InputGradient(),
  smoothgrad: new SmoothGrad(),
  'integrated-gradients': new IntegratedGradients(),
};

export function isInputGradientMethod(method: string): method is InputGradientMethodName {
  return (INPUT_GRADIENT_METHODS as readonly string[]).includes(method);
}

export function inputGradientMethod(name: InputGradientMethodName): InputGradientMethod {
  return METHODS[name];
}
