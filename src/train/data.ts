/** The training data of a recipe: its datasets read, put on one label set, and split by patient without leakage. */
import { resolve } from 'node:path';
import {
  type Dataset,
  type DatasetRecord,
  type LabelSet,
  NIH_LABEL_SET,
  alignDataset,
  checkNoLeakage,
  concatDatasets,
  officialNihSplit,
  DATASET_FORMATS,
  readNihOfficialLists,
  splitByPatient,
} from '../data/index.js';
import type { DatasetConfig, TrainConfig } from './config.js';

export interface SplitData {
  labelSet: LabelSet;
  train: Dataset;
  validation: Dataset;
  /** Held out: touched only once, by the final evaluation of the chosen model. */
  test: Dataset;
  /** The test patients of `heldOut: apart` sets: in no metric, reported on their own. */
  apart: Dataset;
}

export function labelSetOf(config: TrainConfig): LabelSet {
  return config.labels === 'nih' ? NIH_LABEL_SET : { name: 'custom', labels: config.labels };
}

export async function readDatasets(config: TrainConfig): Promise<Dataset> {
  const target = labelSetOf(config);
  const parts = await Promise.all(config.datasets.map((d) => readOne(d, target)));
  return concatDatasets(
    parts.map((d) => (sameLabels(d.labelSet, target) ? d : alignDataset(d, target))),
    { duplicates: 'keep-first' },
  );
}

function readOne(d: DatasetConfig, target: LabelSet): Promise<Dataset> {
  return DATASET_FORMATS[d.format].read(d, target);
}

function sameLabels(a: LabelSet, b: LabelSet): boolean {
  return a.labels.length === b.labels.length && a.labels.every((l, i) => l === b.labels[i]);
}

/** Train / validation / test by patient (seeded), checked for patients on two sides. */
export async function splitData(dataset: Dataset, config: TrainConfig): Promise<SplitData> {
  const s = config.split;
  let parts: Record<string, Dataset>;
  if (s.method === 'official') {
    parts = officialNihSplit(dataset, await readNihOfficialLists(s.lists), { validationFraction: s.validation, seed: config.seed });
  } else {
    parts = splitByPatient(dataset, { fractions: { train: s.train, validation: s.validation, test: s.test }, seed: config.seed });
  }
  const { train, validation, test } = parts;
  checkNoLeakage({ train: train.records, validation: validation.records, test: test.records });
  if (train.records.length === 0 || validation.records.length === 0) {
    throw new Error(`the split left ${train.records.length} training and ${validation.records.length} validation images; more data or other fractions are needed`);
  }
  const apartFiles = new Set(config.datasets.filter((d) => d.heldOut === 'apart').map((d) => resolve(d.csv)));
  const isApart = (r: DatasetRecord) => apartFiles.has(resolve(r.source.file));
  return {
    labelSet: dataset.labelSet,
    train,
    validation,
    test: { ...test, records: test.records.filter((r) => !isApart(r)) },
    apart: { ...test, records: test.records.filter(isApart) },
  };
}
