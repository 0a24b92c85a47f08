/**
 * The training recipe: a JSON or YAML file, validated against a schema with errors that name the field, merged
 * with command-line overrides, every default filled in, so a run's resolved config describes it completely.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import YAML from 'yaml';
import type { LossSpec } from './step/losses.js';
import type { OptimizerSpec } from './step/optimizers.js';
import { DATASET_FORMAT_NAMES, type DatasetFormatName, type DatasetSource } from '../data/formats.js';
import { RESIZE_RULES } from '../imaging/spec.js';
import { ARCHITECTURE_NAMES } from '../models/zoo/index.js';
import { type AugmentationSpec, DEFAULT_AUGMENTATION } from '../imaging/index.js';

export interface DatasetConfig extends DatasetSource {
  /** One of data/formats.ts's DATASET_FORMATS (nih, chexpert, csv). */
  format: DatasetFormatName;
  /**
   * Where the set's test patients go: `test` (default) into the test metrics; `apart`: out of every metric, reported
   * on their own, for a set unlike the images the model is for (NIH's 64 px thumbnails), trained on all the same.
   */
  heldOut?: 'test' | 'apart';
}

export type SplitConfig =
  | { method: 'patient'; train: number; validation: number; test: number }
  | { method: 'official'; lists: string; validation: number };

export type ScheduleConfig =
  | { type: 'constant' }
  | { type: 'cosine'; warmupEpochs: number; minLr: number }
  | { type: 'plateau'; factor: number; patience: number; minLr: number };

export interface TrainConfig {
  datasets: DatasetConfig[];
  /** Trained labels: NIH's 14 findings, or a list. */
  labels: 'nih' | string[];
  split: SplitConfig;
  model: {
    architecture: string;
    /** Weights to start from (any file `cxr import` reads); omitted: random initialisation. */
    pretrained?: string;
    size: number;
    channels: 1 | 3;
    resize: 'pad' | 'crop' | 'stretch';
    /** Patient age, sex and view as a second input. */
    metadata: boolean;
  };
  loss: LossSpec & { posWeight?: 'auto' | 'none' };
  sampler: 'shuffle' | 'balanced';
  /**
   * `weightDecayOn: weights` decays only convolution and linear weights (not norms, biases or Swin's bias table), as
   * Swin's and SwinCheX's training does; default `all`, PyTorch's AdamW on every parameter.
   */
  optimizer: OptimizerSpec & { lr: number; weightDecayOn?: 'all' | 'weights' };
  schedule: ScheduleConfig;
  epochs: number;
  batchSize: number;
  /** Train only the classifier for `headEpochs` epochs, then `then` (all blocks, or the last n). */
  freeze: { headEpochs: number; then: 'all' | number };
  /** Stop when validation mean AUROC has not improved for `patience` epochs (0: never). */
  earlyStopping: { patience: number };
  augmentation: AugmentationSpec | 'none';
  seed: number;
  /** Threads for ONNX Runtime; default all cores. */
  threads?: number;
  /** Where preprocessed images are cached. */
  cacheDir: string;
}

export const DEFAULTS = {
  labels: 'nih',
  split: { method: 'patient', train: 0.7, validation: 0.15, test: 0.15 },
  model: { architecture: 'densenet121', size: 224, channels: 3, resize: 'pad', metadata: false },
  loss: { kind: 'bce', posWeight: 'none' },
  sampler: 'shuffle',
  optimizer: { kind: 'adamw', lr: 1e-4, weightDecay: 1e-4 },
  schedule: { type: 'cosine', warmupEpochs: 1, minLr: 0 },
  epochs: 10,
  batchSize: 16,
  freeze: { headEpochs: 0, then: 'all' },
  earlyStopping: { patience: 3 },
  augmentation: DEFAULT_AUGMENTATION,
  seed: 0,
  cacheDir: '.cache/cxr-lens',
} as const;

const positive = { type: 'number', exclusiveMinimum: 0 };
const fraction = { type: 'number', minimum: 0, maximum: 1 };
const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['datasets'],
  properties: {
    datasets: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['format', 'csv'],
        properties: {
          format: { enum: DATASET_FORMAT_NAMES },
          csv: { type: 'string', minLength: 1 },
          images: { type: 'string', minLength: 1 },
          uncertainty: { enum: ['U-Ignore', 'U-Zeros', 'U-Ones', 'U-MultiClass', 'LSR-Ones', 'LSR-Zeros', 'U-SelfTrained'] },
          imageColumn: { type: 'string' },
          patientColumn: { type: 'string' },
          metadata: { type: 'string', minLength: 1 },
          heldOut: { enum: ['test', 'apart'] },
        },
      },
    },
    labels: { anyOf: [{ const: 'nih' }, { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', minLength: 1 } }] },
    split: {
      oneOf: [
        { type: 'object', additionalProperties: false, required: ['method'], properties: { method: { const: 'patient' }, train: fraction, validation: fraction, test: fraction } },
        { type: 'object', additionalProperties: false, required: ['method', 'lists'], properties: { method: { const: 'official' }, lists: { type: 'string' }, validation: fraction } },
      ],
    },
    model: {
      type: 'object',
      additionalProperties: false,
      properties: {
        architecture: { enum: ARCHITECTURE_NAMES },
        pretrained: { type: 'string', minLength: 1 },
        size: { type: 'integer', minimum: 32, maximum: 1024 },
        channels: { enum: [1, 3] },
        resize: { enum: RESIZE_RULES },
        metadata: { type: 'boolean' },
      },
    },
    loss: {
      oneOf: [
        { type: 'object', additionalProperties: false, required: ['kind'], properties: { kind: { const: 'bce' }, posWeight: { enum: ['auto', 'none'] } } },
        { type: 'object', additionalProperties: false, required: ['kind'], properties: { kind: { const: 'focal' }, alpha: { type: 'number', maximum: 1 }, gamma: { type: 'number', minimum: 0 } } },
        {
          type: 'object',
          additionalProperties: false,
          required: ['kind'],
          properties: { kind: { const: 'asymmetric' }, gammaNeg: { type: 'number', minimum: 0 }, gammaPos: { type: 'number', minimum: 0 }, clip: { type: 'number', minimum: 0, exclusiveMaximum: 1 } },
        },
      ],
    },
    sampler: { enum: ['shuffle', 'balanced'] },
    optimizer: {
      oneOf: [
        {
          type: 'object',
          additionalProperties: false,
          required: ['kind'],
          properties: { kind: { const: 'adamw' }, lr: positive, weightDecay: { type: 'number', minimum: 0 }, weightDecayOn: { enum: ['all', 'weights'] }, beta1: fraction, beta2: fraction, eps: positive },
        },
        {
          type: 'object',
          additionalProperties: false,
          required: ['kind'],
          properties: { kind: { const: 'sgd' }, lr: positive, momentum: { type: 'number', minimum: 0 }, nesterov: { type: 'boolean' }, weightDecay: { type: 'number', minimum: 0 }, weightDecayOn: { enum: ['all', 'weights'] } },
        },
      ],
    },
    schedule: {
      oneOf: [
        { type: 'object', additionalProperties: false, required: ['type'], properties: { type: { const: 'constant' } } },
        { type: 'object', additionalProperties: false, required: ['type'], properties: { type: { const: 'cosine' }, warmupEpochs: { type: 'number', minimum: 0 }, minLr: { type: 'number', minimum: 0 } } },
        {
          type: 'object',
          additionalProperties: false,
          required: ['type'],
          properties: { type: { const: 'plateau' }, factor: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 }, patience: { type: 'integer', minimum: 0 }, minLr: { type: 'number', minimum: 0 } },
        },
      ],
    },
    epochs: { type: 'integer', minimum: 1 },
    batchSize: { type: 'integer', minimum: 1, maximum: 1024 },
    freeze: {
      type: 'object',
      additionalProperties: false,
      properties: { headEpochs: { type: 'integer', minimum: 0 }, then: { anyOf: [{ const: 'all' }, { type: 'integer', minimum: 1 }] } },
    },
    earlyStopping: { type: 'object', additionalProperties: false, properties: { patience: { type: 'integer', minimum: 0 } } },
    augmentation: {
      anyOf: [
        { const: 'none' },
        {
          type: 'object',
          additionalProperties: false,
          properties: {
            rotationDeg: { type: 'number', minimum: 0, maximum: 45 },
            translate: { type: 'number', minimum: 0, maximum: 0.5 },
            scale: { type: 'number', minimum: 0, maximum: 0.5 },
            flipProbability: fraction,
            brightness: { type: 'number', minimum: 0, maximum: 1 },
            contrast: { type: 'number', minimum: 0, maximum: 1 },
          },
        },
      ],
    },
    seed: { type: 'integer', minimum: 0 },
    threads: { type: 'integer', minimum: 1 },
    cacheDir: { type: 'string', minLength: 1 },
  },
} as const;

const validate = new Ajv({ allErrors: true, strict: false }).compile(SCHEMA);

/** Reads a JSON or YAML recipe; relative paths in it are taken relative to the file's folder. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`${path}: cannot read the config (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let parsed: unknown;
  try {
    parsed = path.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (error) {
    throw new Error(`${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${path}: the config must be a mapping of settings`);
  return resolvePaths(parsed as Record<string, unknown>, dirname(resolve(path)));
}

/** Validates a raw recipe (file + overrides) and fills in every default. */
export function resolveConfig(input: Record<string, unknown>, source = 'config'): TrainConfig {
  // A partial section (e.g. only --lr) takes the default kind, so the schema can tell which settings it may have.
  const raw = { ...input };
  for (const [section, field, kind] of [['optimizer', 'kind', 'adamw'], ['loss', 'kind', 'bce'], ['schedule', 'type', 'cosine']] as const) {
    const value = raw[section];
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && !(field in value)) raw[section] = { [field]: kind, ...value };
  }
  if (!validate(raw)) throw new Error(`${source} is not a valid training recipe:\n${describeErrors(validate.errors ?? [])}`);
  const r = raw as Partial<TrainConfig>;
  const split = { ...(r.split?.method === 'official' ? { validation: 0.1 } : DEFAULTS.split), ...r.split } as SplitConfig;
  if (split.method === 'patient' && !(split.train > 0 && split.validation > 0)) {
    throw new Error(`${source}: split.train and split.validation must both be above 0`);
  }
  const config: TrainConfig = {
    datasets: r.datasets ?? [],
    labels: r.labels ?? DEFAULTS.labels,
    split,
    model: { ...DEFAULTS.model, ...r.model },
    loss: r.loss ?? { ...DEFAULTS.loss },
    sampler: r.sampler ?? DEFAULTS.sampler,
    optimizer: { ...(r.optimizer?.kind === 'sgd' ? { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 } : DEFAULTS.optimizer), ...r.optimizer } as TrainConfig['optimizer'],
    schedule: { ...(r.schedule?.type === 'plateau' ? { factor: 0.1, patience: 1, minLr: 0 } : r.schedule?.type === 'constant' ? {} : DEFAULTS.schedule), ...r.schedule } as ScheduleConfig,
    epochs: r.epochs ?? DEFAULTS.epochs,
    batchSize: r.batchSize ?? DEFAULTS.batchSize,
    freeze: { ...DEFAULTS.freeze, ...r.freeze },
    earlyStopping: { ...DEFAULTS.earlyStopping, ...r.earlyStopping },
    augmentation: r.augmentation === 'none' ? 'none' : { ...DEFAULTS.augmentation, ...r.augmentation },
    seed: r.seed ?? DEFAULTS.seed,
    threads: r.threads,
    cacheDir: r.cacheDir ?? DEFAULTS.cacheDir,
  };
  return config;
}

/** Sets a dotted key (`optimizer.lr`) to a command-line value, parsed as JSON where it is JSON. */
export function applyOverride(raw: Record<string, unknown>, key: string, value: string): void {
  const parts = key.split('.');
  let node = raw;
  for (const part of parts.slice(0, -1)) {
    if (typeof node[part] !== 'object' || node[part] === null) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  let parsed: unknown = value;
  try {
    parsed = JSON.parse(value);
  } catch {
    // plain text
  }
  node[parts[parts.length - 1]] = parsed;
}

function resolvePaths(raw: Record<string, unknown>, base: string): Record<string, unknown> {
  const at = (p: unknown) => (typeof p === 'string' ? resolve(base, p) : p);
  const out = { ...raw };
  if (Array.isArray(out.datasets)) {
    out.datasets = out.datasets.map((d) => (typeof d === 'object' && d !== null ? { ...d, csv: at((d as DatasetConfig).csv), images: at((d as DatasetConfig).images), metadata: at((d as DatasetConfig).metadata) } : d));
  }
  if (typeof out.model === 'object' && out.model !== null && 'pretrained' in out.model) out.model = { ...out.model, pretrained: at((out.model as { pretrained?: string }).pretrained) };
  if (typeof out.split === 'object' && out.split !== null && 'lists' in out.split) out.split = { ...out.split, lists: at((out.split as { lists: string }).lists) };
  if (typeof out.cacheDir === 'string') out.cacheDir = at(out.cacheDir);
  return out;
}

function describeErrors(errors: ErrorObject[]): string {
  // oneOf/anyOf failures repeat each alternative's complaint; keep the most specific message per field.
  const byField = new Map<string, string>();
  for (const e of errors) {
    const field = e.instancePath.slice(1).replace(/\//g, '.') || '(top level)';
    const detail =
      e.keyword === 'additionalProperties'
        ? `unknown setting "${(e.params as { additionalProperty: string }).additionalProperty}"`
        : e.keyword === 'enum'
          ? `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`
          : e.keyword === 'required'
            ? `needs "${(e.params as { missingProperty: string }).missingProperty}"`
            : `${e.message ?? 'is invalid'}`;
    if (!byField.has(field) || e.keyword !== 'oneOf') byField.set(field, detail);
  }
  return [...byField].map(([field, detail]) => `  ${field}: ${detail}`).join('\n');
}
