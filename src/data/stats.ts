/** Class statistics for training: prevalence, positive weights for weighted BCE, a class-balanced sampler. */
import { LabelState, type Dataset } from './dataset.js';
import { seededRandom } from '../random.js';

export interface ClassStatistics {
  label: string;
  /** Sum of the targets over the entries that count (soft targets count fractionally). */
  positives: number;
  /** Entries that count minus `positives`. */
  negatives: number;
  /** Entries masked out of the loss. */
  ignored: number;
  /** Entries the source marked uncertain (whatever the policy made of them). */
  uncertain: number;
  /** positives / (positives + negatives); NaN when no entry counts. */
  prevalence: number;
}

export function classStatistics(dataset: Dataset): ClassStatistics[] {
  return dataset.labelSet.labels.map((label, j) => {
    let positives = 0;
    let known = 0;
    let uncertain = 0;
    for (const record of dataset.records) {
      if (record.states[j] === LabelState.uncertain) uncertain++;
      if (record.mask[j] === 0) continue;
      known++;
      positives += record.labels[j];
    }
    return { label, positives, negatives: known - positives, ignored: dataset.records.length - known, uncertain, prevalence: known > 0 ? positives / known : NaN };
  });
}

export interface PositiveWeightOptions {
  /**
   * A class without positives has no defined weight: `error` (default) throws naming the classes, `unweighted`
   * gives them weight 1.
   */
  ifNoPositives?: 'error' | 'unweighted';
}

/** Per-class `pos_weight` for weighted binary cross-entropy: negatives / positives over the entries that count. */
export function positiveWeights(dataset: Dataset, options: PositiveWeightOptions = {}): Float32Array {
  const stats = classStatistics(dataset);
  const empty = stats.filter((s) => !(s.positives > 0));
  if (empty.length > 0 && (options.ifNoPositives ?? 'error') === 'error') {
    throw new Error(
      `positiveWeights: no positives for ${empty.map((s) => `"${s.label}"`).join(', ')} among ${dataset.records.length} records; ` +
        'pass ifNoPositives: "unweighted" to give them weight 1',
    );
  }
  return Float32Array.from(stats, (s) => (s.positives > 0 ? s.negatives / s.positives : 1));
}

export interface SamplerOptions {
  seed: number;
  /** Records with no positive label form one more class of their own (default true). */
  includeNoFinding?: boolean;
}

/**
 * Class-aware sampling (Shen et al. 2016) for multi-label data: each draw picks a class uniformly, then a record
 * uniformly among that class's positives (a record counts as positive where its target is >= 0.5 and counts in the
 * loss). Records with no positive form their own class unless `includeNoFinding` is false. Epochs are seeded by
 * (seed, epoch number), so a run can be resumed mid-training with the same order.
 */
export class ClassBalancedSampler {
  /** Record indices per class that has at least one positive; the last list is the no-finding class, if kept. */
  readonly classes: { name: string; records: Uint32Array }[];

  constructor(
    readonly dataset: Dataset,
    private readonly options: SamplerOptions,
  ) {
    const c = dataset.labelSet.labels.length;
    const members: number[][] = Array.from({ length: c }, () => []);
    const none: number[] = [];
    dataset.records.forEach((record, r) => {
      let any = false;
      for (let j = 0; j < c; j++) {
        if (record.mask[j] === 1 && record.labels[j] >= 0.5) {
          members[j].push(r);
          any = true;
        }
      }
      if (!any) none.push(r);
    });
    this.classes = members
      .map((records, j) => ({ name: dataset.labelSet.labels[j], records: Uint32Array.from(records) }))
      .filter((entry) => entry.records.length > 0);
    if (options.includeNoFinding ?? true) {
      if (none.length > 0) this.classes.push({ name: 'no positive label', records: Uint32Array.from(none) });
    }
    if (this.classes.length === 0) throw new Error('ClassBalancedSampler: the dataset has no record to sample from');
  }

  /** `size` record indices (default: as many as the dataset has) for epoch `epoch`, drawn with replacement. */
  epoch(epoch: number, size = this.dataset.records.length): Uint32Array {
    if (!Number.isInteger(size) || size < 0) throw new Error(`ClassBalancedSampler: size must be a whole number >= 0, got ${size}`);
    const random = seededRandom(((this.options.seed >>> 0) ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
    const indices = new Uint32Array(size);
    for (let i = 0; i < size; i++) {
      const cls = this.classes[Math.floor(random() * this.classes.length)].records;
      indices[i] = cls[Math.floor(random() * cls.length)];
    }
    return indices;
  }
}
