/** The dataset contract shared by every reader: records over a named label set, plus a report of what was skipped. */
import { tensor, type HostTensor } from '../onnx/tensor.js';
import type { LabelSet } from './labels.js';
import type { DatasetReport } from './report.js';

/**
 * What the source said about one label of one image, before any uncertainty policy: positive, negative, uncertain
 * (CheXpert's -1), blank (not mentioned; CheXpert's empty cell), or unavailable (the source has no such label, e.g.
 * NIH's Emphysema on a CheXpert image after `alignDataset`; always masked out).
 */
export const LabelState = { negative: 0, positive: 1, uncertain: -1, blank: -2, unavailable: -3 } as const;
export type LabelStateValue = (typeof LabelState)[keyof typeof LabelState];

/** A box around a finding, in the pixel space of an image of size `space` (NIH: its 1024 x 1024 PNGs). */
export interface Box {
  finding: string;
  x: number;
  y: number;
  width: number;
  height: number;
  space: { width: number; height: number };
}

export interface RecordMetadata {
  /** In years (NIH ages given in months or days are converted). */
  age?: number;
  sex?: 'M' | 'F';
  /** NIH: PA or AP; CheXpert: Frontal or Lateral. */
  view?: string;
  /** CheXpert's AP/PA column (AP, PA, LL, RL). */
  projection?: string;
  followUp?: number;
  study?: string;
  originalSize?: { width: number; height: number };
  pixelSpacing?: { x: number; y: number };
}

export interface DatasetRecord {
  /** The image file name (NIH) or the path as written in the CSV (CheXpert, generic); unique in a dataset. */
  readonly id: string;
  readonly patientId: string;
  /** Where the image is (checked to exist unless the reader was told not to). */
  readonly imagePath: string;
  /** The file and 1-based data row this record came from. */
  readonly source: { file: string; row: number };
  /** Per label, a `LabelState` value as the source gave it. */
  readonly states: Int8Array;
  /** Per label, the training target after the uncertainty policy (0..1, soft for LSR and self-training). */
  readonly labels: Float32Array;
  /** Per label, 1 where the target counts, 0 where it is ignored. */
  readonly mask: Uint8Array;
  readonly metadata: RecordMetadata;
  readonly boxes?: readonly Box[];
}

/** How uncertain (and blank) labels become targets; see uncertainty.ts. */
export type UncertaintyPolicy = 'U-Ignore' | 'U-Zeros' | 'U-Ones' | 'U-MultiClass' | 'LSR-Ones' | 'LSR-Zeros' | 'U-SelfTrained';

export interface Dataset {
  readonly labelSet: LabelSet;
  readonly records: readonly DatasetRecord[];
  readonly policy: UncertaintyPolicy;
  /** Shared by the splits of a dataset: it describes the reading, not the split. */
  readonly report: DatasetReport;
}

/** Targets and mask as [N, C] float32 tensors, the form the training graphs take them in. */
export function toTargets(dataset: Dataset): { targets: HostTensor<'float32'>; mask: HostTensor<'float32'> } {
  const n = dataset.records.length;
  const c = dataset.labelSet.labels.length;
  const targets = tensor('float32', [n, c]);
  const mask = tensor('float32', [n, c]);
  dataset.records.forEach((record, i) => {
    targets.data.set(record.labels, i * c);
    for (let j = 0; j < c; j++) mask.data[i * c + j] = record.mask[j];
  });
  return { targets, mask };
}

/** A dataset made of some of another's records (in the order given), same label set, policy and report. */
export function subsetOf(dataset: Dataset, records: readonly DatasetRecord[]): Dataset {
  return { labelSet: dataset.labelSet, records, policy: dataset.policy, report: dataset.report };
}

/**
 * Several datasets over one label set as one (e.g. NIH's subset and its 64 px set). The same image id twice would
 * be one image counted twice: by default that is refused with both sources named; with `duplicates: 'keep-first'`
 * the first dataset's copy is kept (list the better copy first) and each dropped one is named in the report.
 */
export function concatDatasets(datasets: readonly Dataset[], options: { duplicates?: 'error' | 'keep-first' } = {}): Dataset {
  if (datasets.length === 0) throw new Error('concatDatasets: no datasets given');
  const [first] = datasets;
  const labels = first.labelSet.labels.join('|');
  const seen = new Map<string, DatasetRecord>();
  const records: DatasetRecord[] = [];
  const dropped: string[] = [];
  for (const dataset of datasets) {
    if (dataset.labelSet.labels.join('|') !== labels) {
      throw new Error(`concatDatasets: label sets differ (${first.labelSet.name} and ${dataset.labelSet.name}); align them first (alignDataset)`);
    }
    for (const record of dataset.records) {
      const earlier = seen.get(record.id);
      if (!earlier) {
        seen.set(record.id, record);
        records.push(record);
        continue;
      }
      const where = `image "${record.id}" appears in ${earlier.source.file} (row ${earlier.source.row}) and in ${record.source.file} (row ${record.source.row})`;
      if (options.duplicates !== 'keep-first') throw new Error(where);
      dropped.push(`${where}: the second copy is left out`);
    }
  }
  const filtered: Record<string, number> = {};
  for (const d of datasets) for (const [reason, count] of Object.entries(d.report.filtered)) filtered[reason] = (filtered[reason] ?? 0) + count;
  return {
    labelSet: first.labelSet,
    records,
    // Targets were made per dataset; the first one's policy names the whole.
    policy: first.policy,
    report: { skipped: datasets.flatMap((d) => d.report.skipped), filtered, warnings: [...datasets.flatMap((d) => d.report.warnings), ...dropped] },
  };
}
