/**
 * Explaining one preprocessed image with whatever runs the model: ONNX Runtime in Node (explainer.ts) or
 * onnxruntime-web in the browser's private mode. Methods that need gradients need a runner that computes them
 * (the explain graphs); occlusion needs forward passes only. Pure: no ONNX Runtime here.
 */
import type { Geometry } from '../imaging/geometry.js';
import type { PreprocessingSpec } from '../imaging/spec.js';
import { float32 } from '../onnx/tensor.js';
import { ModelScoredCam } from './cam.js';
import { CAM_METHODS, camMethod, isCamMethod } from './cam-methods.js';
import { INPUT_GRADIENT_METHODS, type IntegratedGradientsOptions, type SmoothGradOptions, inputGradientMethod, isInputGradientMethod } from './input-gradients.js';
import { type OcclusionOptions, occlusionMaps } from './occlusion.js';
import { type Explanation, type ExplanationTarget, type GridMap, type ModelRunner, hasGradients } from './types.js';

/**
 * Every method; the first, Grad-CAM, is the default everywhere (library, CLI, server and viewer). Occlusion needs
 * only forward passes, so it is what the browser's private mode runs.
 */
export const EXPLANATION_METHODS = [...CAM_METHODS, ...INPUT_GRADIENT_METHODS, 'occlusion'] as const;
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
  /** CAM methods: the tensor to read; default the model's last feature map (see graphs.ts's defaultLayer). */
  layer?: string;
  occlusion?: OcclusionOptions;
  smoothgrad?: SmoothGradOptions;
  integratedGradients?: IntegratedGradientsOptions;
  /** Input-gradient methods: (image, finding) rows per run, default 8; Score-CAM and Ablation-CAM: rows per forward run, default 16. */
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
  if (isCamMethod(method)) {
    const layer = await runner.layerGradients(batch, labels, options.layer);
    const cam = camMethod(method);
    if (cam instanceof ModelScoredCam) {
      const { headLogits } = runner;
      const maps = await cam.maps(layer.activation, layer.dims, {
        input: image.tensor,
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
      });
      return result(layer.logits, maps, layer.layer);
    }
    const maps = layer.gradients.map((gradient, i) => {
      const p = 1 / (1 + Math.exp(-layer.logits[labels[i]]));
      const scaled = target === 'probability' ? gradient.map((g) => g * p * (1 - p)) : gradient;
      return cam.map(layer.activation, scaled, layer.dims);
    });
    return result(layer.logits, maps, layer.layer);
  }
  if (isInputGradientMethod(method)) {
    const logits = await runner.logits(batch);
    const attributions = await inputGradientMethod(method).attributions(runner, data, dims, labels, { ...options, target, preprocessing });
    return result(logits, attributions.map((a) => a.map));
  }
  throw new Error(`explanation method "${method}" has no implementation`);
}
