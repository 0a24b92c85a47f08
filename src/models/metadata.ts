/**
 * What makes an ONNX file a cxr-lens model: its description in metadata_props. Label names, the pixel contract,
 * the names of its inputs and outputs and its block structure travel inside the file, so any consumer (CLI,
 * server, browser) can use it correctly without side files.
 */
import type { Model } from '../onnx/index.js';
import { type PreprocessingSpec, validatePreprocessingSpec } from '../imaging/spec.js';

export const MODEL_FORMAT = 'cxr-lens-model/1';

export interface ModelIO {
  /** The image tensor, float32 [batch, channels, height, width], already preprocessed. */
  input: string;
  /** Per-finding logits [batch, labels]; probabilities are their sigmoid (multi-label, never a softmax). */
  logits: string;
  /** The last convolutional feature map [batch, channels, h, w], the default layer for Grad-CAM. */
  features: string;
  /** Patient metadata [batch, 9] (see patient-metadata.ts), when the model takes it. */
  metadata?: string;
}

export interface ModelInfo {
  architecture: string;
  labels: string[];
  preprocessing: PreprocessingSpec;
  io: ModelIO;
  /** Parameter-name prefixes of the network's stages, stem first and classifier head last (for freezing). */
  blocks: string[];
  /** Where the weights came from, in words (e.g. "random init, seed 0", "imported from model.pth"). */
  weights: string;
  /** Per-label operating points: the probability from which a finding is called positive, and how they were chosen. */
  thresholds?: Thresholds;
}

export interface Thresholds {
  /** The rule in words, e.g. "Youden's J (max sensitivity + specificity - 1)". */
  rule: string;
  /** The data they were chosen on, e.g. "validation split: 208 images, 141 patients". */
  source: string;
  /** Label -> probability threshold; a label without one has no validated operating point. */
  values: Record<string, number>;
}

const KEY = {
  format: 'cxr.format',
  architecture: 'cxr.architecture',
  labels: 'cxr.labels',
  preprocessing: 'cxr.preprocessing',
  io: 'cxr.io',
  blocks: 'cxr.blocks',
  weights: 'cxr.weights',
  thresholds: 'cxr.thresholds',
} as const;

export function modelInfoToMetadata(info: ModelInfo): Record<string, string> {
  return {
    [KEY.format]: MODEL_FORMAT,
    [KEY.architecture]: info.architecture,
    [KEY.labels]: JSON.stringify(info.labels),
    [KEY.preprocessing]: JSON.stringify(info.preprocessing),
    [KEY.io]: JSON.stringify(info.io),
    [KEY.blocks]: JSON.stringify(info.blocks),
    [KEY.weights]: info.weights,
    ...(info.thresholds ? { [KEY.thresholds]: JSON.stringify(info.thresholds) } : {}),
  };
}

/** Stores operating points in the model (replacing any it had). */
export function setThresholds(model: Pick<Model, 'metadata'>, thresholds: Thresholds): void {
  model.metadata[KEY.thresholds] = JSON.stringify(thresholds);
}

/** Records where a model's weights now come from (after import, training, ...). */
export function setWeightsDescription(model: Pick<Model, 'metadata'>, text: string): void {
  model.metadata[KEY.weights] = text;
}

/** Reads and validates a model's description; errors say which key is wrong and how to get a proper model. */
export function readModelInfo(model: Pick<Model, 'metadata'>, source = 'model'): ModelInfo {
  const meta = model.metadata;
  if (meta[KEY.format] === undefined) {
    throw new Error(`${source}: not a cxr-lens model (its metadata has no "${KEY.format}"); convert it with \`cxr import\``);
  }
  if (meta[KEY.format] !== MODEL_FORMAT) {
    throw new Error(`${source}: model format "${meta[KEY.format]}" is not supported by this version (expects "${MODEL_FORMAT}")`);
  }
  const json = (key: string): unknown => {
    const text = meta[key];
    if (text === undefined) throw new Error(`${source}: metadata "${key}" is missing`);
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${source}: metadata "${key}" is not valid JSON`);
    }
  };
  const labels = json(KEY.labels);
  if (!Array.isArray(labels) || labels.length === 0 || !labels.every((l) => typeof l === 'string' && l.length > 0)) {
    throw new Error(`${source}: metadata "${KEY.labels}" must be a non-empty list of names`);
  }
  if (new Set(labels).size !== labels.length) throw new Error(`${source}: metadata "${KEY.labels}" repeats a label`);
  const io = json(KEY.io) as Record<string, unknown>;
  for (const k of ['input', 'logits', 'features'] as const) {
    if (typeof io?.[k] !== 'string') throw new Error(`${source}: metadata "${KEY.io}" must name the "${k}" tensor`);
  }
  if (io.metadata !== undefined && typeof io.metadata !== 'string') throw new Error(`${source}: metadata "${KEY.io}" names a non-text "metadata" tensor`);
  const blocks = json(KEY.blocks);
  if (!Array.isArray(blocks) || !blocks.every((b) => typeof b === 'string')) throw new Error(`${source}: metadata "${KEY.blocks}" must be a list of names`);
  return {
    architecture: meta[KEY.architecture] ?? 'unknown',
    labels: labels as string[],
    preprocessing: validatePreprocessingSpec(json(KEY.preprocessing), `${source}: metadata "${KEY.preprocessing}"`),
    io: io as unknown as ModelIO,
    blocks: blocks as string[],
    weights: meta[KEY.weights] ?? 'unknown',
    thresholds: meta[KEY.thresholds] === undefined ? undefined : validThresholds(json(KEY.thresholds), labels as string[], source),
  };
}

function validThresholds(value: unknown, labels: string[], source: string): Thresholds {
  const t = value as Partial<Thresholds>;
  const fail = (why: string): never => {
    throw new Error(`${source}: metadata "${KEY.thresholds}" ${why}`);
  };
  if (typeof t !== 'object' || t === null || typeof t.rule !== 'string' || typeof t.source !== 'string' || typeof t.values !== 'object' || t.values === null) {
    fail('must have a rule, a source and values');
  }
  for (const [label, v] of Object.entries(t.values as Record<string, unknown>)) {
    if (!labels.includes(label)) fail(`names "${label}", which is not one of the model's labels`);
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) fail(`gives "${label}" the threshold ${JSON.stringify(v)}, not a probability`);
  }
  return t as Thresholds;
}
