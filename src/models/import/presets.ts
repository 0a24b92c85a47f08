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

/**
 * torchxrayvision's published weights, by file name: their releases hold no operating points (its models.py adds
 * them by weights name) and some outputs were never trained (its labels say '', its op_threshs NaN). Values from
 * mlmed/torchxrayvision models.py `model_urls` (Apache-2.0).
 */
const N = NaN;
const D = [...XRV_PATHOLOGIES];
const blank = (keep: number[]) => D.map((name, i) => (keep.includes(i) ? name : ''));
const RELEASE_NAMES = (prefix: string) => `${prefix}-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt`;
export const XRV_RELEASES: Record<string, { weights: string; labels: string[]; opThreshs: number[] }> = {
  [RELEASE_NAMES('nih-pc-chex-mimic_ch-google-openi-kaggle')]: {
    weights: 'densenet121-res224-all',
    labels: D,
    opThreshs: [0.07422872, 0.038290843, 0.09814756, 0.0098118475, 0.023601074, 0.0022490358, 0.010060724, 0.103246614, 0.056810737, 0.026791653, 0.050318155, 0.023985857, 0.01939503, 0.042889766, 0.053369623, 0.035975814, 0.20204692, 0.05015312],
  },
  [RELEASE_NAMES('nih')]: {
    weights: 'densenet121-res224-nih',
    labels: blank([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
    opThreshs: [0.039117552, 0.0034529066, 0.11396341, 0.0057298196, 0.00045666535, 0.0018880932, 0.012037827, 0.038744126, 0.0037213727, 0.014730946, 0.016149804, 0.054241467, 0.037198864, 0.0004403434, N, N, N, N],
  },
  [RELEASE_NAMES('pc')]: {
    weights: 'densenet121-res224-pc',
    labels: blank([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]),
    opThreshs: [0.031012505, 0.013347598, 0.081435576, 0.001262615, 0.002587246, 0.0035944257, 0.0023071, 0.055412333, 0.044385884, 0.042766232, 0.043258056, 0.037629247, 0.005658899, 0.0091741895, N, 0.026507627, N, N],
  },
  [RELEASE_NAMES('chex')]: {
    weights: 'densenet121-res224-chex',
    labels: blank([0, 1, 3, 4, 7, 8, 10, 14, 15, 16, 17]),
    opThreshs: [0.1988969, 0.05710573, N, 0.0531293, 0.1435217, N, N, 0.27212676, 0.07749717, N, 0.19712369, N, N, N, 0.09932402, 0.09273402, 0.3270967, 0.10888247],
  },
  [RELEASE_NAMES('kaggle')]: {
    weights: 'densenet121-res224-rsna',
    labels: blank([8, 16]),
    opThreshs: [N, N, N, N, N, N, N, N, 0.13486601, N, N, N, N, N, N, N, 0.13511065, N],
  },
  [RELEASE_NAMES('mimic_nb')]: {
    weights: 'densenet121-res224-mimic_nb',
    labels: blank([0, 1, 3, 4, 7, 8, 10, 14, 15, 16, 17]),
    opThreshs: [0.08558747, 0.011884617, N, 0.0040595434, 0.010733786, N, N, 0.118761964, 0.022924708, N, 0.06358637, N, N, N, 0.022143636, 0.017476924, 0.1258702, 0.014020768],
  },
  [RELEASE_NAMES('mimic_ch')]: {
    weights: 'densenet121-res224-mimic_ch',
    labels: blank([0, 1, 3, 4, 7, 8, 10, 14, 15, 16, 17]),
    opThreshs: [0.09121389, 0.010573786, N, 0.005023008, 0.003698257, N, N, 0.08001232, 0.037242252, N, 0.05006329, N, N, N, 0.019866971, 0.03823637, 0.11303808, 0.0069147074],
  },
  'pc-nih-rsna-siim-vin-resnet50-test512-e400-state.pt': {
    weights: 'resnet50-res512-all',
    labels: D,
    opThreshs: [0.51570356, 0.50444704, 0.53787947, 0.50723547, 0.5025118, 0.5035252, 0.5038076, 0.51862943, 0.5078151, 0.50724894, 0.5056339, 0.510706, 0.5053923, 0.5020846, N, 0.5080557, 0.5138526, N],
  },
};

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
 * torchxrayvision's output names for a head of `classes` outputs: its own `targets` where the file (or its release
 * entry) has them, else xrv's default 18. An untrained output ('') keeps xrv's default name at that place and is
 * listed in `untrained`.
 */
export function xrvSourceLabels(classes: number, fromFile: readonly string[] | undefined): { labels: string[]; untrained: string[] } | undefined {
  if (fromFile?.length === classes) {
    const labels = fromFile.map((name, i) => name || (XRV_PATHOLOGIES[i] ?? `output_${i}`));
    return { labels, untrained: labels.filter((_, i) => !fromFile[i]) };
  }
  return classes === XRV_PATHOLOGIES.length ? { labels: [...XRV_PATHOLOGIES], untrained: [] } : undefined;
}

/** NIH's findings first, in NIH's order, then the other outputs in the file's order: the model's output order. */
export function nihFirstOrder(sourceLabels: readonly string[]): number[] {
  const nih = NIH_FINDINGS.map((name) => sourceLabels.indexOf(name)).filter((i) => i >= 0);
  return [...nih, ...sourceLabels.map((_, i) => i).filter((i) => !nih.includes(i))];
}

/**
 * op_threshs as the model's thresholds: the probability from which torchxrayvision's op_norm output is >= 0.5.
 * `source` says where the values came from (the file, or xrv's table for its published file).
 */
export function operatingPointThresholds(labels: readonly string[], points: readonly number[], source: string, untrained: readonly string[] = []): Thresholds {
  const values: Record<string, number> = {};
  const withheld: Record<string, string> = {};
  labels.forEach((label, i) => {
    const p = points[i];
    if (untrained.includes(label)) withheld[label] = 'torchxrayvision marks this output as not trained for these weights';
    else if (Number.isFinite(p) && p > 0 && p < 1) values[label] = p;
    else withheld[label] = Number.isNaN(p) ? 'torchxrayvision gives no operating point for this output (op_threshs is NaN)' : `the operating point ${p} is not a probability`;
  });
  return {
    rule: "torchxrayvision's operating point (op_threshs: where its op_norm output crosses 0.5)",
    source,
    values,
    ...(Object.keys(withheld).length ? { withheld } : {}),
  };
}
