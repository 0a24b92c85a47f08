/** The model zoo: one readable function per architecture, all built the same way into a self-describing Model. */
import { NIH_FINDINGS } from '../../data/labels.js';
import { type PreprocessingSpec, imagenetPreprocessing, validatePreprocessingSpec } from '../../imaging/spec.js';
import { GraphBuilder, type Model, createModel } from '../../onnx/index.js';
import { type ParameterInit, torchvisionInit } from '../init.js';
import { Layers } from '../layers.js';
import { type ModelInfo, modelInfoToMetadata } from '../metadata.js';
import { layoutsMetadata } from '../layouts.js';
import { declarationsMetadata } from '../parameters.js';
import { METADATA_FEATURES } from '../patient-metadata.js';
import { alexnet } from './alexnet.js';
import { DENSENET121, densenet } from './densenet.js';
import { mobilenetV2 } from './mobilenet.js';
import { resnetBottleneck } from './resnet.js';
import { SWIN_T, swin } from './swin.js';
import type { Architecture } from './types.js';

export const ARCHITECTURES = {
  densenet121: densenet(DENSENET121),
  resnet50: resnetBottleneck([3, 4, 6, 3]),
  alexnet,
  mobilenet_v2: mobilenetV2,
  swin_t: swin(SWIN_T),
} satisfies Record<string, Architecture>;

export type ArchitectureName = keyof typeof ARCHITECTURES;

export const ARCHITECTURE_NAMES = Object.keys(ARCHITECTURES) as ArchitectureName[];

export const INPUT_NAME = 'image';
export const LOGITS_NAME = 'logits';
export const FEATURES_NAME = 'features';
export const METADATA_NAME = 'metadata';
const METADATA_HEAD = 'metadata_head';

/** The patient-metadata layer is ours alone: no torchvision or imported file has it. */
export function isMetadataHead(name: string): boolean {
  return name === METADATA_HEAD || name.startsWith(`${METADATA_HEAD}.`);
}

export interface BuildOptions {
  /** Output labels, one logit each; defaults to NIH's 14 findings. */
  labels?: readonly string[];
  /** 1 (gray) or 3 (gray replicated, as ImageNet weights expect); default 3. */
  channels?: 1 | 3;
  /** Input height and width in pixels; default 224. */
  height?: number;
  width?: number;
  /** Initial parameter values; default torchvision-style with seed 0. */
  init?: ParameterInit;
  /** Overrides of the pixel contract (mean/std, resize rule); size and channels always follow the options above. */
  preprocessing?: Partial<Pick<PreprocessingSpec, 'mean' | 'std' | 'resize'>>;
  /** Where the weights come from, recorded in the model. */
  weights?: string;
  /**
   * Take patient metadata (age, sex, view; see patient-metadata.ts) as a second input: a linear layer on it adds
   * to the image's logits, which is a concatenation of image and metadata features before one linear head, while
   * the image classifier keeps torchvision's shape (so pretrained weights still import).
   */
  metadata?: boolean;
}

export function isArchitecture(name: string): name is ArchitectureName {
  return Object.hasOwn(ARCHITECTURES, name);
}

export function buildModel(architecture: string, options: BuildOptions = {}): Model {
  if (!isArchitecture(architecture)) {
    throw new Error(`unknown architecture "${architecture}"; choose one of ${ARCHITECTURE_NAMES.join(', ')}`);
  }
  const labels = [...(options.labels ?? NIH_FINDINGS)];
  if (labels.length === 0) throw new Error('a model needs at least one label');
  if (new Set(labels).size !== labels.length) throw new Error(`labels must be unique, got ${labels.join(', ')}`);
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) throw new Error(`channels must be 1 or 3, got ${String(channels)}`);
  const height = options.height ?? 224;
  const width = options.width ?? height;
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new Error(`input size must be positive whole pixels, got ${height}x${width}`);
  }
  const seedDescription = options.init ? 'custom initialisation' : 'random initialisation (torchvision-style, seed 0)';
  const b = new GraphBuilder(architecture);
  const image = b.input(INPUT_NAME, 'float32', ['batch', channels, height, width]);
  const layers = new Layers(b, options.init ?? torchvisionInit(0));
  let graph;
  try {
    graph = ARCHITECTURES[architecture](layers, image, labels.length);
  } catch (error) {
    throw new Error(`${architecture} cannot take ${height}x${width} inputs: ${(error as Error).message}`);
  }
  let logits = graph.logits;
  if (options.metadata) {
    const metadata = b.input(METADATA_NAME, 'float32', ['batch', METADATA_FEATURES.length]);
    logits = b.op('Add', [logits, layers.linear(METADATA_HEAD, metadata, labels.length)], {}, { name: 'metadata_fusion' });
    graph.blocks[graph.blocks.length - 1] += `|${METADATA_HEAD}`;
  }
  b.output(logits, LOGITS_NAME);
  b.output(graph.features, FEATURES_NAME);
  const info: ModelInfo = {
    architecture,
    labels,
    preprocessing: validatePreprocessingSpec({ ...imagenetPreprocessing(height, width, channels), ...options.preprocessing }, 'preprocessing option'),
    io: { input: INPUT_NAME, logits: LOGITS_NAME, features: FEATURES_NAME, ...(options.metadata ? { metadata: METADATA_NAME } : {}) },
    blocks: graph.blocks,
    weights: options.weights ?? seedDescription,
  };
  const built = b.build();
  const constants = [...b.constantNames].filter((name) => built.initializers.get(name)?.dtype === 'float32');
  const layouts = { ...graph.layouts };
  const featuresLayout = layouts[graph.features.name];
  if (featuresLayout) layouts[FEATURES_NAME] = featuresLayout;
  return createModel(built, { ...modelInfoToMetadata(info), ...declarationsMetadata({ parameters: layers.declared, constants }), ...layoutsMetadata(layouts) });
}
