/** The shapes explanations take, whatever method made them. */
import type { Geometry } from '../imaging/index.js';
import type { HostTensor } from '../onnx/index.js';

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

export interface Explanation {
  method: string;
  /** Maps model-input coordinates back onto the original image (see imaging's heatmapToSource). */
  geometry: Geometry;
  findings: FindingMap[];
}

/** What a method may ask of the model. */
export interface ModelRunner {
  labels: readonly string[];
  /** Logits [batch, labels] of a batch of preprocessed images [batch, C, H, W]. */
  logits(batch: HostTensor<'float32'>): Promise<Float32Array>;
}
