/**
 * Moving labels between label sets through NIH_CHEXPERT_ALIGNMENT, so that a model trained on one dataset can be
 * scored on the other where their labels overlap.
 */
import { LabelState, type Dataset, type DatasetRecord, type LabelStateValue } from './dataset.js';
import { NIH_CHEXPERT_ALIGNMENT, NIH_FINDINGS, type LabelSet } from './labels.js';
import { seededRandom } from '../random.js';
import { checkPolicy, targetsFromStates, type PolicyOptions } from './uncertainty.js';

/** `narrower`: the source label is one kind of the target label (Mass -> Lung Lesion); `broader`: the reverse. */
export type Correspondence = 'same' | 'narrower' | 'broader';

export interface LabelPair {
  from: string;
  to: string;
  fromIndex: number;
  toIndex: number;
  kind: Correspondence;
}

/** How label `a` relates to label `b`: equal names, or a row of the alignment table read either way. */
export function relation(a: string, b: string): Correspondence | undefined {
  if (a === b) return 'same';
  for (const entry of NIH_CHEXPERT_ALIGNMENT) {
    if (entry.nih === a && entry.chexpert === b) return entry.kind;
    if (entry.chexpert === a && entry.nih === b) return entry.kind === 'same' ? 'same' : 'broader';
  }
  return undefined;
}

export type AlignmentScope = 'same' | 'approximate';

/**
 * The pairs of labels that correspond: `same` only (default; safe for scoring a model across datasets), or also
 * `narrower`/`broader` ones with `approximate`.
 */
export function labelCorrespondence(from: LabelSet, to: LabelSet, include: AlignmentScope = 'same'): LabelPair[] {
  const pairs: LabelPair[] = [];
  from.labels.forEach((a, fromIndex) =>
    to.labels.forEach((b, toIndex) => {
      const kind = relation(a, b);
      if (kind !== undefined && (kind === 'same' || include === 'approximate')) pairs.push({ from: a, to: b, fromIndex, toIndex, kind });
    }),
  );
  return pairs;
}

const NO_FINDING = 'No Finding';

export interface AlignOptions extends PolicyOptions {
  /** Default `same`: only equal findings carry over; the rest of the target's labels are unavailable (masked). */
  include?: AlignmentScope;
}

/**
 * The dataset's records with their labels moved onto another label set. Per target label:
 * - a `same` source label: its state is copied (uncertain stays uncertain, the policy is applied again);
 * - with `include: 'approximate'`: from narrower source labels, positive if any is positive, else uncertain if any
 *   is, else negative; from a broader source label, negative only where it is negative (a Lung Lesion negative
 *   means no Mass; a positive says nothing about which lesion) and unavailable otherwise; "No Finding" on the
 *   target is derived from NIH's 14 findings (positive when none is); a target label with no counterpart is
 *   negative where the source says "No Finding";
 * - otherwise unavailable: masked out of every loss and metric.
 * A U-SelfTrained dataset is refused: align before relabelling.
 */
export function alignDataset(dataset: Dataset, target: LabelSet, options: AlignOptions = {}): Dataset {
  if (dataset.policy === 'U-SelfTrained') throw new Error('alignDataset: align the dataset before relabelUncertain, not after');
  const include = options.include ?? 'same';
  if (include !== 'same' && include !== 'approximate') throw new Error(`alignDataset: include must be "same" or "approximate", got ${JSON.stringify(include)}`);
  const policy = checkPolicy(dataset.policy);
  const pairs = labelCorrespondence(dataset.labelSet, target, include);
  const sourceLabels = dataset.labelSet.labels;
  const hasAllNihFindings = NIH_FINDINGS.every((name) => sourceLabels.includes(name));
  const sourceNoFinding = sourceLabels.indexOf(NO_FINDING);
  const random = seededRandom(options.seed ?? 0);

  const records = dataset.records.map((record): DatasetRecord => {
    const states = new Int8Array(target.labels.length);
    target.labels.forEach((name, t) => {
      const sources = pairs.filter((pair) => pair.toIndex === t);
      const same = sources.find((pair) => pair.kind === 'same');
      let state: LabelStateValue = LabelState.unavailable;
      if (same !== undefined) state = record.states[same.fromIndex] as LabelStateValue;
      else if (include === 'approximate') {
        const narrower = sources.filter((pair) => pair.kind === 'narrower').map((pair) => record.states[pair.fromIndex]);
        const broader = sources.filter((pair) => pair.kind === 'broader').map((pair) => record.states[pair.fromIndex]);
        if (narrower.length > 0) state = combineNarrower(narrower);
        else if (broader.length > 0) state = broader.every((s) => s === LabelState.negative) ? LabelState.negative : LabelState.unavailable;
        else if (name === NO_FINDING && hasAllNihFindings) {
          const anyFinding = NIH_FINDINGS.some((finding) => record.states[sourceLabels.indexOf(finding)] === LabelState.positive);
          state = anyFinding ? LabelState.negative : LabelState.positive;
        } else if (sourceNoFinding >= 0 && record.states[sourceNoFinding] === LabelState.positive) state = LabelState.negative;
      }
      states[t] = state;
    });
    const labels = new Float32Array(target.labels.length);
    const mask = new Uint8Array(target.labels.length);
    targetsFromStates(states, policy, options, random, labels, mask);
    return { ...record, states, labels, mask };
  });
  return { ...dataset, labelSet: target, records };
}

function combineNarrower(states: number[]): LabelStateValue {
  if (states.includes(LabelState.positive)) return LabelState.positive;
  if (states.includes(LabelState.uncertain)) return LabelState.uncertain;
  if (states.includes(LabelState.negative)) return LabelState.negative;
  if (states.includes(LabelState.blank)) return LabelState.blank;
  return LabelState.unavailable;
}
