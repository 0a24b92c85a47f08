/**
 * The dataset formats a recipe or `--data format:labels.csv[:images]` may name, one entry each: adding a format is
 * its reader plus one entry here (and its test); the recipe schema, the CLI and the training data follow this list.
 */
import { readChexpertDataset } from './chexpert.js';
import type { Dataset, UncertaintyPolicy } from './dataset.js';
import { readCsvDataset } from './generic.js';
import type { LabelSet } from './labels.js';
import { readNihDataset } from './nih.js';

/** Where a dataset is and how to read it (a recipe's dataset entry). */
export interface DatasetSource {
  /** The labels file. */
  csv: string;
  /** Folder of images (NIH: the folder holding images/ or images_001...; CheXpert: the folder Path is relative to). */
  images?: string;
  /** CheXpert and generic CSV: how uncertain labels become targets. */
  uncertainty?: UncertaintyPolicy;
  /** Generic CSV: the column with image file names, and the one with patient ids. */
  imageColumn?: string;
  patientColumn?: string;
  /** NIH: a file in Data_Entry_2017's layout (.csv or .csv.gz) filling in the age, sex and view the labels file lacks. */
  metadata?: string;
}

export interface DatasetFormat {
  /** One line for help texts. */
  description: string;
  /** Reads the dataset; `target` is the label set the recipe trains (a generic CSV reads those columns). */
  read(source: DatasetSource, target: LabelSet): Promise<Dataset>;
}

const FORMATS = {
  nih: {
    description: "NIH ChestX-ray14's Data_Entry_2017.csv layout",
    read: (d) => readNihDataset({ csvPath: d.csv, imageRoot: d.images, metadataPath: d.metadata }),
  },
  chexpert: {
    description: "CheXpert's train.csv/valid.csv (uncertain labels by the recipe's policy)",
    read: (d) => readChexpertDataset({ csvPath: d.csv, imageRoot: d.images, policy: d.uncertainty }),
  },
  csv: {
    description: 'any CSV with an image column and one column per label',
    read: async (d, target) => {
      if (!d.imageColumn) throw new Error(`${d.csv}: a "csv" dataset needs "imageColumn" (the column with image file names)`);
      return readCsvDataset({
        csvPath: d.csv,
        imageRoot: d.images,
        imageColumn: d.imageColumn,
        patientColumn: d.patientColumn,
        labels: { columns: target.labels },
        labelSetName: target.name,
        policy: d.uncertainty,
      });
    },
  },
} satisfies Record<string, DatasetFormat>;

export type DatasetFormatName = keyof typeof FORMATS;

export const DATASET_FORMATS: Record<DatasetFormatName, DatasetFormat> = FORMATS;

export const DATASET_FORMAT_NAMES = Object.keys(DATASET_FORMATS) as DatasetFormatName[];

export function isDatasetFormat(name: string): name is DatasetFormatName {
  return Object.hasOwn(DATASET_FORMATS, name);
}
