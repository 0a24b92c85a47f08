/**
 * Uncertainty policies for CheXpert-style labels (Irvin et al. 2019; label smoothing from Pham et al. 2021):
 * - U-Ignore: uncertain entries are masked out of the loss.
 * - U-Zeros / U-Ones: uncertain entries become 0 / 1.
 * - LSR-Zeros / LSR-Ones: uncertain entries become a seeded uniform draw in [0, 0.3] / [0.55, 0.85].
 * - U-MultiClass: a three-state target per label (see `threeStateTargets`); its binary view is U-Ignore's.
 * - U-SelfTrained: train with U-Ignore, then `relabelUncertain` with that model's probabilities, then train again.
 * Blank (unmentioned) entries are negatives unless `blank: 'ignore'` masks them.
 */
import { tensor, type HostTensor } from '../onnx/tensor.js';
import { LabelState, type Dataset, type DatasetRecord, type UncertaintyPolicy } from './dataset.js';
import { seededRandom } from '../random.js';

export const UNCERTAINTY_POLICIES: readonly UncertaintyPolicy[] = [
  'U-Ignore',
  'U-Zeros',
  'U-Ones',
  'U-MultiClass',
  'LSR-Ones',
  'LSR-Zeros',
  'U-SelfTrained',
];

export interface PolicyOptions {
  /** What an unmentioned label means: a negative (CheXpert's convention, the default) or unknown. */
  blank?: 'negative' | 'ignore';
  /** Seed for the LSR draws. */
  seed?: number;
  lsrOnesRange?: readonly [number, number];
  lsrZerosRange?: readonly [number, number];
}

export const LSR_ONES_RANGE = [0.55, 0.85] as const;
export const LSR_ZEROS_RANGE = [0, 0.3] as const;

/** Fills `labels` and `mask` from `states` under a policy. */
export function targetsFromStates(
  states: Int8Array,
  policy: UncertaintyPolicy,
  options: PolicyOptions,
  random: () => number,
  labels: Float32Array,
  mask: Uint8Array,
): void {
  const [onesLow, onesHigh] = options.lsrOnesRange ?? LSR_ONES_RANGE;
  const [zerosLow, zerosHigh] = options.lsrZerosRange ?? LSR_ZEROS_RANGE;
  for (let j = 0; j < states.length; j++) {
    const state = states[j];
    let label = 0;
    let known = 1;
    if (state === LabelState.positive) label = 1;
    else if (state === LabelState.blank) known = options.blank === 'ignore' ? 0 : 1;
    else if (state === LabelState.unavailable) known = 0;
    else if (state === LabelState.uncertain) {
      switch (policy) {
        case 'U-Ignore':
        case 'U-MultiClass':
          known = 0;
          break;
        case 'U-Zeros':
          break;
        case 'U-Ones':
          label = 1;
          break;
        case 'LSR-Ones':
          label = onesLow + (onesHigh - onesLow) * random();
          break;
        case 'LSR-Zeros':
          label = zerosLow + (zerosHigh - zerosLow) * random();
          break;
        case 'U-SelfTrained':
          throw new Error(selfTrainedHint);
      }
    }
    labels[j] = label;
    mask[j] = known;
  }
}

const selfTrainedHint =
  'U-SelfTrained needs a model: read the dataset with U-Ignore, train, then call relabelUncertain(dataset, probabilities)';

export function checkPolicy(policy: unknown): UncertaintyPolicy {
  if (!UNCERTAINTY_POLICIES.includes(policy as UncertaintyPolicy)) {
    throw new Error(`unknown uncertainty policy ${JSON.stringify(policy)}; expected one of ${UNCERTAINTY_POLICIES.join(', ')}`);
  }
  if (policy === 'U-SelfTrained') throw new Error(selfTrainedHint);
  return policy as UncertaintyPolicy;
}

/** The same records with targets recomputed from their source states under another policy. */
export function applyUncertaintyPolicy(dataset: Dataset, policy: UncertaintyPolicy, options: PolicyOptions = {}): Dataset {
  checkPolicy(policy);
  const random = seededRandom(options.seed ?? 0);
  const records = dataset.records.map((record): DatasetRecord => {
    const labels = new Float32Array(record.states.length);
    const mask = new Uint8Array(record.states.length);
    targetsFromStates(record.states, policy, options, random, labels, mask);
    return { ...record, labels, mask };
  });
  return { ...dataset, records, policy };
}

/** Class indices of the U-MultiClass target. */
export const THREE_STATE = { negative: 0, positive: 1, uncertain: 2 } as const;

/**
 * U-MultiClass targets: per record and label a class index (0 negative, 1 positive, 2 uncertain) as an int64 [N, C]
 * tensor (what a softmax cross-entropy over 3 classes per label takes), and a float32 [N, C] mask that is 0 for
 * unavailable labels and, with `blank: 'ignore'`, for blanks. At evaluation, p(positive) = p1 / (p0 + p1) gives the binary view.
 */
export function threeStateTargets(
  dataset: Dataset,
  options: Pick<PolicyOptions, 'blank'> = {},
): { classes: HostTensor<'int64'>; mask: HostTensor<'float32'> } {
  const n = dataset.records.length;
  const c = dataset.labelSet.labels.length;
  const classes = tensor('int64', [n, c]);
  const mask = tensor('float32', [n, c]);
  dataset.records.forEach((record, i) => {
    for (let j = 0; j < c; j++) {
      const state = record.states[j];
      const cls =
        state === LabelState.positive ? THREE_STATE.positive : state === LabelState.uncertain ? THREE_STATE.uncertain : THREE_STATE.negative;
      classes.data[i * c + j] = BigInt(cls);
      const ignored = state === LabelState.unavailable || (state === LabelState.blank && options.blank === 'ignore');
      mask.data[i * c + j] = ignored ? 0 : 1;
    }
  });
  return { classes, mask };
}

export interface RelabelOptions {
  /** `soft` (default) keeps the probability as the target; `hard` thresholds it. */
  mode?: 'soft' | 'hard';
  threshold?: number;
}

/**
 * The U-SelfTrained hook: replaces every uncertain entry's target with a model's probability for it (row-major
 * [N, C] in the dataset's record and label order) and counts it in the loss; every other entry keeps its target.
 */
export function relabelUncertain(
  dataset: Dataset,
  probabilities: HostTensor<'float32'> | ArrayLike<number>,
  options: RelabelOptions = {},
): Dataset {
  const n = dataset.records.length;
  const c = dataset.labelSet.labels.length;
  const values = 'dims' in probabilities ? probabilities.data : probabilities;
  if ('dims' in probabilities && (probabilities.dims.length !== 2 || probabilities.dims[0] !== n || probabilities.dims[1] !== c)) {
    throw new Error(`relabelUncertain: probabilities have shape [${probabilities.dims.join(', ')}], the dataset needs [${n}, ${c}]`);
  }
  if (values.length !== n * c) {
    throw new Error(`relabelUncertain: got ${values.length} probabilities, the dataset needs ${n} records x ${c} labels = ${n * c}`);
  }
  const mode = options.mode ?? 'soft';
  if (mode !== 'soft' && mode !== 'hard') throw new Error(`relabelUncertain: mode must be "soft" or "hard", got ${JSON.stringify(mode)}`);
  const threshold = options.threshold ?? 0.5;
  const records = dataset.records.map((record, i): DatasetRecord => {
    if (!record.states.includes(LabelState.uncertain)) return record;
    const labels = Float32Array.from(record.labels);
    const mask = Uint8Array.from(record.mask);
    for (let j = 0; j < c; j++) {
      if (record.states[j] !== LabelState.uncertain) continue;
      const p = values[i * c + j];
      if (!(p >= 0 && p <= 1)) {
        throw new Error(
          `relabelUncertain: probability for record ${i} ("${record.id}"), label "${dataset.labelSet.labels[j]}" is ${p}, not in [0, 1]`,
        );
      }
      labels[j] = mode === 'soft' ? p : p >= threshold ? 1 : 0;
      mask[j] = 1;
    }
    return { ...record, labels, mask };
  });
  return { ...dataset, records, policy: 'U-SelfTrained' };
}
