/** The shapes explanations take, whatever method made them, and what a method may ask of the model. Pure. */
import type { Geometry } from '../imaging/geometry.js';
import type { HostTensor } from '../onnx/tensor.js';

/** A map laid over the whole model input (any resolution: a 7x7 CAM or a 224x224 gradient map alike). */
export interface GridMap {
  width: number;
  height: number;
  data: Float32Array;
}

export interface FindingMap {
  finding: string;
  probability: number;
  logit: number;
  map: GridMap;
}

/**
 * What is explained for each finding: its own logit (default), or its probability sigmoid(logit), whose gradient
 * is the logit's times p(1 - p). Never a softmax across findings: they are independent (multi-label).
 */
export type ExplanationTarget = 'logit' | 'probability';

export interface Explanation {
  method: string;
  target: ExplanationTarget;
  /** The layer a CAM method read (a tensor name of the model); absent for methods on the input. */
  layer?: string;
  /** Maps model-input coordinates back onto the original image (see imaging's heatmapToSource). */
  geometry: Geometry;
  /**
   * Input pixels per cell of the model's last feature map (its receptive-field scale): readable maps smooth the
   * gradient methods at this scale (readable.ts). Absent where the runner does not know the model's layers.
   */
  featureStride?: number;
  findings: FindingMap[];
}

/** What every method may ask of the model: forward passes. */
export interface ModelRunner {
  labels: readonly string[];
  /** Logits [batch, labels] of a batch of preprocessed images [batch, C, H, W]. */
  logits(batch: HostTensor<'float32'>): Promise<Float32Array>;
}

/** One image's activation at a layer and the gradient of each requested finding's logit with respect to it. */
export interface LayerGradients {
  /** The tensor the activation was read from. */
  layer: string;
  /** Logits of the image [labels]. */
  logits: Float32Array;
  /** [channels, height, width] of the activation. */
  dims: [number, number, number];
  activation: Float32Array;
  /** One [channels, height, width] gradient per requested label index, in request order. */
  gradients: Float32Array[];
}

/** Gradients with respect to the model input, which Grad-CAM-style methods do not need (they need a runner that also has these). */
export interface GradientRunner extends ModelRunner {
  /** The layer CAM methods read when none is named. */
  readonly defaultLayer: string;
  /** `input` is one preprocessed image [1, C, H, W]; `layer` defaults to `defaultLayer`. */
  layerGradients(input: HostTensor<'float32'>, labels: readonly number[], layer?: string): Promise<LayerGradients>;
  /**
   * Row r of `batch` [rows, C, H, W] differentiated for the label `labels[r]`: gradients [rows, C, H, W] of each
   * row's own logit, and that logit.
   */
  inputGradients(batch: HostTensor<'float32'>, labels: readonly number[], rectifiers?: Rectifiers): Promise<{ gradients: Float32Array; logits: Float32Array }>;
  /**
   * FullGrad's ingredients for row r of `batch` [rows, C, H, W] and the label `labels[r]`: the input gradient, and
   * the gradient at every layer that adds a bias (graphs.ts biasLayers) with that bias; absent where the runner
   * cannot differentiate at those layers.
   */
  biasGradients?(batch: HostTensor<'float32'>, labels: readonly number[]): Promise<BiasGradients>;
  /**
   * Logits [rows, labels] of activations of `layer` [rows, c, h, w] run through the rest of the network (what
   * Ablation-CAM needs); absent where the runner cannot cut the model there.
   */
  headLogits?(activations: HostTensor<'float32'>, layer: string): Promise<Float32Array>;
  /**
   * A transformer's attention for row r of `batch` [rows, C, H, W] and the label `labels[r]`: every attention
   * block's probabilities and the gradient of the row's logit with respect to them; absent where the runner has no
   * such graph.
   */
  attentionGradients?(batch: HostTensor<'float32'>, labels: readonly number[]): Promise<AttentionGradients>;
}

/** Gradients of each row's own logit with respect to every attention block's probabilities (see GradientRunner.attentionGradients). */
export interface AttentionGradients {
  /** Each row's logit [rows]. */
  logits: Float32Array;
  /** In graph order: the block's windows, its attention of the first row [windows, heads, tokens, tokens] and the gradients [rows, windows, heads, tokens, tokens]. */
  blocks: (AttentionBlock & { attention: Float32Array; gradients: Float32Array })[];
}

/** A window-attention block: its probabilities (a Softmax output) and where its windows lie on its token grid. */
export interface AttentionBlock {
  tensor: string;
  /** The block's token grid, before padding to whole windows. */
  height: number;
  width: number;
  /** Tokens per window side. */
  windowSize: number;
  /** The cyclic shift (torch.roll by minus these) before partitioning, per axis; 0 where unshifted. */
  shift: readonly [number, number];
  heads: number;
  windows: number;
}

/** How rectifiers (ReLU, ReLU6) pass gradients back: the derivative ('plain'), or guided backpropagation's rule ('guided'). */
export type Rectifiers = 'plain' | 'guided';

/** Gradients of each row's own logit (see GradientRunner.biasGradients). */
export interface BiasGradients {
  /** [rows, C, H, W]. */
  input: Float32Array;
  /** Each row's logit [rows]. */
  logits: Float32Array;
  /** In graph order: the layer's output tensor, its bias [c], its [c, h, w] and the gradients [rows, c, h, w] (channels first). */
  layers: { tensor: string; bias: Float32Array; dims: [number, number, number]; gradients: Float32Array }[];
}

export function hasGradients(runner: ModelRunner): runner is GradientRunner {
  return typeof (runner as Partial<GradientRunner>).layerGradients === 'function' && typeof (runner as Partial<GradientRunner>).inputGradients === 'function';
}
