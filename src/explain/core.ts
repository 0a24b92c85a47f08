/**
 * Explaining one preprocessed image with whatever runs the model: ONNX Runtime in Node (explainer.ts) or
 * onnxruntime-web in the browser's private mode. Methods that need gradients need a runner that computes them
 * (the explain graphs); occlusion needs forward passes only. Pure: no ONNX Runtime here.
 */
import type { Geometry } from '../imaging/geometry.js';
import type { PreprocessingSpec } from '../imaging/spec.js';
import { float32 } from '../onnx/tensor.js';
import { ATTRIBUTION_METHODS, attributionMethod, isAttributionMethod } from './attribution-methods.js';
import { ModelScoredCam } from './cam.js';
import { CAM_METHODS, camMethod, isCamMethod } from './cam-methods.js';
import { INPUT_GRADIENT_METHODS, type IntegratedGradientsOptions, type SmoothGradOptions, inputGradientMethod, isInputGradientMethod } from './input-gradients.js';
import { type OcclusionOptions, occlusionMaps } from './occlusion.js';
import { type Explanation, type ExplanationTarget, type GridMap, type ModelRunner, hasGradients } from './types.js';

/**
 * Every method; the first, Grad-CAM, is the default everywhere (library, CLI, server and viewer). Occlusion needs
 * only forward passes, so it is what the browser's private mode runs.
 */
export const EXPLANATION_METHODS = [...CAM_METHODS, ...INPUT_GRADIENT_METHODS, ...ATTRIBUTION_METHODS, 'occlusion'] as const;
export type ExplanationMethod = (typeof EXPLANATION_METHODS)[number];

/** Methods that need only forward passes of the inference model, so they run anywhere (the browser included). */
export const FORWARD_ONLY_METHODS: readonly ExplanationMethod[] = ['occlusion'];

export function isExplanationMethod(method: string): method is ExplanationMethod {
  return (EXPLANATION_METHODS as readonly string[]).includes(method);
}

export interface ExplainOptions {
  /** Finding names to explain; default all of the model's labels. */
  findings?: readonly string[];
  /** Default 'gradcam'. */
  method?: ExplanationMethod;
  /** Explain each finding's logit (default) or its probability. */
  target?: ExplanationTarget;
  /** CAM methods and the Grad-CAM hybrids: the tensor to read; default the model's last feature map (see graphs.ts's defaultLayer). */
  layer?: string;
  /** CAM methods: the weighted activations' first principal component instead of their sum (pytorch-grad-cam's eigen_smooth). */
  eigenSmooth?: boolean;
  /**
   * CAM methods: the mean of the maps of the image and its mirror image, each at intensities x0.9, x1 and x1.1
   * (pytorch-grad-cam's aug_smooth: six passes), each scaled to [0, 1] over its range and mirrored back; the
   * maps are then in [0, 1].
   */
  augSmooth?: boolean;
  occlusion?: OcclusionOptions;
  smoothgrad?: SmoothGradOptions;
  integratedGradients?: IntegratedGradientsOptions;
  /** Input-gradient methods: (image, finding) rows per run, default 8 (FullGrad 4); Score-CAM and Ablation-CAM: rows per forward run, default 16. */
  batchSize?: number;
}

/** A preprocessed image: [C, H, W] in the model's units, and how it maps back onto the original. */
export interface PreparedImage {
  tensor: { dims: [number, number, number]; data: Float32Array };
  geometry: Geometry;
}

/** Label indices of the requested findings, refusing unknown names with the list of known ones. */
export function findingIndices(labels: readonly string[], findings: readonly string[] = labels): number[] {
  if (findings.length === 0) throw new Error('no findings to explain were given');
  return findings.map((name) => {
    const index = labels.indexOf(name);
    if (index < 0) throw new Error(`the model has no finding "${name}"; it knows ${labels.join(', ')}`);
    return index;
  });
}

export function checkMethod(method: string): ExplanationMethod {
  if (!isExplanationMethod(method)) throw new Error(`unknown explanation method "${method}"; choose one of ${EXPLANATION_METHODS.join(', ')}`);
  return method;
}

export async function explainWithRunner(
  runner: ModelRunner,
  image: PreparedImage,
  preprocessing: Pick<PreprocessingSpec, 'mean' | 'std'>,
  options: ExplainOptions = {},
): Promise<Explanation> {
  const method = checkMethod(options.method ?? 'gradcam');
  const target = options.target ?? 'logit';
  if (target !== 'logit' && target !== 'probability') throw new Error(`explanation target must be "logit" or "probability", got "${String(target)}"`);
  const labels = findingIndices(runner.labels, options.findings);
  const { dims, data } = image.tensor;
  const batch = float32([1, ...dims], data);
  const result = (logits: ArrayLike<number>, maps: GridMap[], layer?: string): Explanation => ({
    method,
    target,
    ...(layer ? { layer } : {}),
    geometry: image.geometry,
    findings: labels.map((label, i) => ({ finding: runner.labels[label], logit: logits[label], probability: 1 / (1 + Math.exp(-logits[label])), map: maps[i] })),
  });

  if (method === 'occlusion') {
    const base = await runner.logits(batch);
    return result(base, await occlusionMaps(runner, data, dims, labels, base, { ...options.occlusion, target }));
  }
  if (!hasGradients(runner)) throw new Error(`"${method}" needs gradients, which this runner cannot compute (server only); methods that run here: ${FORWARD_ONLY_METHODS.join(', ')}`);
  if (!isCamMethod(method) && (options.eigenSmooth || options.augSmooth)) throw new Error(`eigen and augmentation smoothing apply to CAM methods only, not "${method}"`);
  if (isCamMethod(method)) {
    const cam = camMethod(method);
    const camOptions = { eigenSmooth: options.eigenSmooth };
    const camMaps = async (input: Float32Array): Promise<{ logits: Float32Array; maps: GridMap[]; layer: string }> => {
      const layer = await runner.layerGradients(float32([1, ...dims], input), labels, options.layer);
      if (cam instanceof ModelScoredCam) {
        const { headLogits } = runner;
        const maps = await cam.maps(
          layer.activation,
          layer.dims,
          {
            input: { dims, data: input },
            labels,
            labelCount: runner.labels.length,
            logits: layer.logits,
            score: target === 'probability' ? (logit) => 1 / (1 + Math.exp(-logit)) : (logit) => logit,
            batchSize: options.batchSize ?? 16,
            model: (rows) => runner.logits(rows),
            head: (activations) => {
              if (!headLogits) throw new Error(`"${method}" runs the network from layer ${layer.layer} on, which this runner cannot do`);
              return headLogits(activations, layer.layer);
            },
          },
          camOptions,
        );
        return { logits: layer.logits, maps, layer: layer.layer };
      }
      const maps = layer.gradients.map((gradient, i) => {
        const p = 1 / (1 + Math.exp(-layer.logits[labels[i]]));
        const scaled = target === 'probability' ? gradient.map((g) => g * p * (1 - p)) : gradient;
        return cam.map(layer.activation, scaled, layer.dims, camOptions);
      });
      return { logits: layer.logits, maps, layer: layer.layer };
    };
    if (!options.augSmooth) {
      const { logits, maps, layer } = await camMaps(data);
      return result(logits, maps, layer);
    }
    const plain = await camMaps(data);
    const sums = plain.maps.map((m) => ({ ...m, data: new Float32Array(m.data.length) }));
    for (const mirrored of [false, true]) {
      for (const factor of AUG_SMOOTH_FACTORS) {
        const pass = !mirrored && factor === 1 ? plain : await camMaps(augmented(data, dims, mirrored, factor));
        pass.maps.forEach((m, k) => {
          // Twice, as pytorch-grad-cam scales per layer and again after aggregating layers (not quite idempotent: 1e-7).
          const scaled = scaledToRange(scaledToRange(m.data));
          for (let y = 0; y < m.height; y++) {
            for (let x = 0; x < m.width; x++) sums[k].data[y * m.width + x] += scaled[y * m.width + (mirrored ? m.width - 1 - x : x)] / (2 * AUG_SMOOTH_FACTORS.length);
          }
        });
      }
    }
    return result(plain.logits, sums, plain.layer);
  }
  if (isInputGradientMethod(method)) {
    const logits = await runner.logits(batch);
    const attributions = await inputGradientMethod(method).attributions(runner, data, dims, labels, { ...options, target, preprocessing });
    return result(logits, attributions.map((a) => a.map));
  }
  if (isAttributionMethod(method)) {
    const { logits, maps, layer } = await attributionMethod(method).attribute({
      runner,
      input: data,
      dims,
      labels,
      target,
      layer: options.layer,
      gradients: { batchSize: options.batchSize, integratedGradients: options.integratedGradients, preprocessing },
    });
    return result(logits, maps, layer);
  }
  throw new Error(`explanation method "${method}" has no implementation`);
}

/** pytorch-grad-cam's aug_smooth intensities (ttach's Multiply factors). */
const AUG_SMOOTH_FACTORS = [0.9, 1, 1.1] as const;

/** The image [C, H, W] mirrored left-right (or not) and multiplied by `factor`, as ttach's HorizontalFlip and Multiply. */
function augmented(data: Float32Array, [channels, height, width]: readonly [number, number, number], mirrored: boolean, factor: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < height; y++) {
      const row = (c * height + y) * width;
      for (let x = 0; x < width; x++) out[row + x] = factor * data[row + (mirrored ? width - 1 - x : x)];
    }
  }
  return out;
}

/** pytorch-grad-cam's scale_cam_image without the resize: (m - min) / (max - min + 1e-7). */
function scaledToRange(map: ArrayLike<number>): Float64Array {
  const values = Float64Array.from(map);
  let min = Infinity;
  for (const v of values) if (v < min) min = v;
  let max = -Infinity;
  for (const v of values) if (v - min > max) max = v - min;
  return values.map((v) => (v - min) / (1e-7 + max));
}
