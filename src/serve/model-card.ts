/** The model card the server shows: what the loaded model is, where its weights came from, what it can explain. */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type { LoadedModel } from '../api.js';
import { EXPLANATION_METHODS } from '../explain/index.js';
import type { PreprocessingSpec } from '../imaging/spec.js';
import type { Calibration, ModelIO, SafetyInfo, Thresholds } from '../models/metadata.js';
import { encodeModel } from '../onnx/index.js';
import { RESEARCH_NOTICE } from './analysis.js';

export interface ModelCard {
  file: string;
  bytes: number;
  sha256: string;
  architecture: string;
  /** Where the weights came from, in words: read it before trusting any probability. */
  weights: string;
  labels: string[];
  preprocessing: PreprocessingSpec;
  io: ModelIO;
  explanationMethods: string[];
  /** Validated per-finding thresholds (with the rule and data that chose them), or null: no decisions are made. */
  thresholds: Thresholds | null;
  /** Per-finding recalibration of the logits (and ECE before/after), or null: probabilities are the plain sigmoid. */
  calibration: Calibration | null;
  /** The input checks' thresholds and measurements, or null: only image and DICOM-tag checks run (no detector). */
  inputChecks: SafetyInfo | null;
  /** Where the browser's private mode fetches the same model file. */
  modelUrl: string;
  notice: string;
}

export const MODEL_URL = '/models/current.onnx';

/**
 * The card and the bytes served to private mode: the model the workers load, as one self-contained ONNX file
 * (external data embedded), so the browser runs exactly what the server runs. `sha256` is of these bytes.
 */
export function modelCard(loaded: LoadedModel): { card: ModelCard; bytes: Uint8Array } {
  const bytes = encodeModel(loaded.model);
  const { info } = loaded;
  const card: ModelCard = {
    file: basename(loaded.path),
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    architecture: info.architecture,
    weights: info.weights,
    labels: info.labels,
    preprocessing: info.preprocessing,
    io: info.io,
    explanationMethods: [...EXPLANATION_METHODS],
    thresholds: info.thresholds ?? null,
    calibration: info.calibration ?? null,
    inputChecks: info.safety ?? null,
    modelUrl: MODEL_URL,
    notice: RESEARCH_NOTICE,
  };
  return { card, bytes };
}
