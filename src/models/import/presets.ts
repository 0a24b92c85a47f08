/**
 * How the chest X-ray field's published checkpoints want their pixels, and how to recognise them:
 * - `xrv`: torchxrayvision (Cohen et al. 2022): 1 channel scaled to [-1024, 1024] (its datasets.normalize), a centre
 *   square crop (XRayCenterCrop), 224 px for its DenseNets and 512 px for its ResNet-50; 18 outputs in its order and
 *   operating points in `op_threshs`, where its op_norm puts the output at 0.5;
 * - `chexnet`: CheXNet re-implementations (arnoweng/CheXNet, jrzech/reproduce-chexnet): torchvision's DenseNet-121
 *   with ImageNet statistics on the gray film replicated to RGB, shorter side resized to 224 and centre-cropped;
 * - `imagenet`: torchvision's ImageNet statistics, 224 px, letterboxed: what any other torchvision checkpoint gets.
 */
import { NIH_FINDINGS } from '../../data/labels.js';
import { IMAGENET_MEAN, IMAGENET_STD, type PreprocessingSpec } from '../../imaging/spec.js';
import type { Thresholds } from '../metadata.js';
import type { ArchitectureName } from '../zoo/index.js';
import type { StateDict } from './state-dict.js';

export const PRESET_NAMES = ['xrv', 'chexnet', 'imagenet'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export type PixelContract = Pick<PreprocessingSpec, 'channels' | 'mean' | 'std' | 'resize'> & { size: number };

/** torchxrayvision's outputs, in its order (`xrv.datasets.default_pathologies`, its models' `targets`). */
export const XRV_PATHOLOGIES = [
  'Atelectasis',
  'Consolidation',
  'Infiltration',
  'Pneumothorax',
  'Edema',
  'Emphysema',
  'Fibrosis',
  'Effusion',
  'Pneumonia',
  'Pleural_Thickening',
  'Cardiomegaly',
  'Nodule',
  'Mass',
  'Hernia',
  'Lung Lesion',
  'Fracture',
  'Lung Opacity',
  'Enlarged Cardiomediastinum',
] as const;

/** [0, 1] intensities to [lo, hi] as (x - mean) / std. */
export function rangeToMeanStd(lo: number, hi: number): { mean: number; std: number } {
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) throw new Error(`a pixel range needs two finite numbers, low < high; got ${lo},${hi}`);
  return { mean: -lo / (hi - lo), std: 1 / (hi - lo) };
}

export function presetContract(name: PresetName, architecture: ArchitectureName): PixelContract {
  if (name === 'xrv') {
    const { mean, std } = rangeToMeanStd(-1024, 1024);
    return { channels: 1, mean: [mean], std: [std], resize: 'crop', size: architecture === 'resnet50' ? 512 : 224 };
  }
  const imagenet = { channels: 3 as const, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD], size: 224 };
  return name === 'chexnet' ? { ...imagenet, resize: 'crop' } : { ...imagenet, resize: 'pad' };
}

export interface Evidence {
  architecture: ArchitectureName;
  /** The state dict after DataParallel prefixes and legacy names were normalised, before wrapper prefixes went. */
  dict: StateDict;
  moduleClass?: string;
  hasOperatingPoints: boolean;
  /** The wrapper prefix removed from the keys (e.g. `densenet121.`), '' when none. */
  wrapperPrefix: string;
  /** The classifier was a Sequential(Linear, ...) (`classifier.0.weight`). */
  sequentialHead: boolean;
  firstConvChannels?: number;
  headClasses?: number;
}

/** The preset a file's own layout points to, and why, in words. */
export function recognisePreset(e: Evidence): { name: PresetName; reason: string } {
  if (e.moduleClass?.startsWith('torchxrayvision.')) return { name: 'xrv', reason: `the file pickles a ${e.moduleClass}` };
  if (e.hasOperatingPoints) return { name: 'xrv', reason: "the file holds torchxrayvision's op_threshs" };
  if (e.firstConvChannels === 1 && e.headClasses === XRV_PATHOLOGIES.length) {
    return { name: 'xrv', reason: `a 1-channel first convolution and ${XRV_PATHOLOGIES.length} outputs, torchxrayvision's layout` };
  }
  if (e.architecture === 'densenet121' && e.headClasses === NIH_FINDINGS.length && (e.wrapperPrefix === 'densenet121.' || e.sequentialHead)) {
    const how = [e.wrapperPrefix ? `a "${e.wrapperPrefix}" wrapper` : '', e.sequentialHead ? 'a Sequential(Linear, Sigmoid) classifier' : ''].filter(Boolean).join(' and ');
    return { name: 'chexnet', reason: `a 14-output DenseNet-121 with ${how}, CheXNet's layout` };
  }
  return { name: 'imagenet', reason: "no chest X-ray project's layout recognised: torchvision's ImageNet statistics" };
}

/**
 * torchxrayvision's output names for a head of `classes` outputs: the module's own `targets` where the file has them
 * (an untrained output, '', keeps xrv's default name at that place), else xrv's default 18.
 */
export function xrvSourceLabels(classes: number, fromFile: readonly string[] | undefined): string[] | undefined {
  if (fromFile?.length === classes) return fromFile.map((name, i) => name || (XRV_PATHOLOGIES[i] ?? `output_${i}`));
  return classes === XRV_PATHOLOGIES.length ? [...XRV_PATHOLOGIES] : undefined;
}

/** NIH's findings first, in NIH's order, then the other outputs in the file's order: the model's output order. */
export function nihFirstOrder(sourceLabels: readonly string[]): number[] {
  const nih = NIH_FINDINGS.map((name) => sourceLabels.indexOf(name)).filter((i) => i >= 0);
  return [...nih, ...sourceLabels.map((_, i) => i).filter((i) => !nih.includes(i))];
}

/** op_threshs as the model's thresholds: the probability from which torchxrayvision's op_norm output is >= 0.5. */
export function operatingPointThresholds(labels: readonly string[], points: readonly number[], fileName: string): Thresholds {
  const values: Record<string, number> = {};
  const withheld: Record<string, string> = {};
  labels.forEach((label, i) => {
    const p = points[i];
    if (Number.isFinite(p) && p > 0 && p < 1) values[label] = p;
    else withheld[label] = Number.isNaN(p) ? 'the file gives no operating point for this output (op_threshs is NaN: not trained on it)' : `the file's operating point ${p} is not a probability`;
  });
  return {
    rule: "torchxrayvision's operating point (op_threshs: where its op_norm output crosses 0.5)",
    source: `op_threshs stored in ${fileName}`,
    values,
    ...(Object.keys(withheld).length ? { withheld } : {}),
  };
}
