/**
 * CheXpert (Irvin et al. 2019): train.csv / valid.csv with columns Path, Sex, Age, Frontal/Lateral, AP/PA and the 14
 * observations, each 1 (positive), 0 (negative), -1 (uncertain) or blank (not mentioned). Paths look like
 * "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg": relative to the folder above the dataset's.
 */
import { basename, dirname } from 'node:path';
import { readCsv, resolveColumns, type ColumnSpec, type CsvTable } from './csv.js';
import type { Dataset, UncertaintyPolicy } from './dataset.js';
import { CHEXPERT_OBSERVATIONS, type ChexpertObservation } from './labels.js';
import { BadRowHandler, emptyReport, type BadRowPolicy } from './report.js';
import { tableToDataset } from './table-dataset.js';
import type { PolicyOptions } from './uncertainty.js';
import { parseOptionalNumber, parseSex } from './values.js';

export type ChexpertView = 'Frontal' | 'Lateral';

export interface ChexpertReadOptions extends PolicyOptions {
  csvPath: string;
  /**
   * The folder that the Path column is relative to. Default: the folder above the CSV's when paths start with the
   * CSV folder's name (CheXpert's layout), else the CSV's folder.
   */
  imageRoot?: string;
  /** Require every image to exist (default true). */
  checkImages?: boolean;
  /** Views to keep (default both); the others are counted in report.filtered. */
  views?: readonly ChexpertView[];
  /** AP/PA values to keep among frontal images, e.g. ["PA"] (default: all); lateral images are not affected. */
  projections?: readonly string[];
  /** Observations to read, in this order (default: all 14); e.g. CHEXPERT_COMPETITION_TASKS. */
  observations?: readonly ChexpertObservation[];
  /** Default U-Ignore. */
  policy?: UncertaintyPolicy;
  onBadRow?: BadRowPolicy;
}

const CHEXPERT_PATIENT = /(?:^|\/)(patient\d+)\/(study\d+)\//;

export async function readChexpertDataset(options: ChexpertReadOptions): Promise<Dataset> {
  const table = await readCsv(options.csvPath);
  return chexpertDatasetFromTable(table, options);
}

export function chexpertDatasetFromTable(table: CsvTable, options: ChexpertReadOptions): Dataset {
  const observations = options.observations ?? CHEXPERT_OBSERVATIONS;
  for (const name of observations) {
    if (!(CHEXPERT_OBSERVATIONS as readonly string[]).includes(name)) {
      throw new Error(`unknown CheXpert observation "${name}"; CheXpert's observations are ${CHEXPERT_OBSERVATIONS.join(', ')}`);
    }
  }
  const specs: Record<string, ColumnSpec> = {
    path: { names: ['Path'], required: true },
    sex: { names: ['Sex'], required: true },
    age: { names: ['Age'], required: true },
    view: { names: ['Frontal/Lateral'], required: true },
    projection: { names: ['AP/PA'], required: true },
  };
  observations.forEach((name) => (specs[`label:${name}`] = { names: [name], required: true }));
  const col = resolveColumns(table, specs);
  const views = new Set<string>(options.views ?? ['Frontal', 'Lateral']);
  for (const view of views) if (view !== 'Frontal' && view !== 'Lateral') throw new Error(`views: expected "Frontal" or "Lateral", got ${JSON.stringify(view)}`);
  const projections = options.projections !== undefined ? new Set(options.projections) : undefined;

  const csvFolder = dirname(table.file);
  const firstPath = table.rows[0]?.[col.path]?.trim() ?? '';
  const imageRoot = options.imageRoot ?? (firstPath.startsWith(`${basename(csvFolder)}/`) ? dirname(csvFolder) : csvFolder);

  return tableToDataset(table, {
    labelSet: { name: observations === CHEXPERT_OBSERVATIONS ? 'chexpert' : `chexpert:${observations.join(',')}`, labels: observations },
    labels: { kind: 'columns', columns: observations.map((name) => col[`label:${name}`]) },
    imageColumn: col.path,
    imageRoot,
    checkImages: options.checkImages ?? true,
    patientOf(_row, id) {
      const match = CHEXPERT_PATIENT.exec(id);
      return match ? match[1] : { column: col.path, reason: 'no "patientNNNNN/studyN/" in the path to take the patient from' };
    },
    readMetadata(row, metadata) {
      const age = parseOptionalNumber(row[col.age]);
      if (age === null || (age !== undefined && age < 0)) return { column: col.age, reason: 'age must be a number >= 0' };
      if (age !== undefined) metadata.age = age;
      const sex = parseSex(row[col.sex]);
      if (sex === null) return { column: col.sex, reason: 'sex must be Male, Female or Unknown' };
      if (sex !== undefined) metadata.sex = sex;
      const view = row[col.view].trim();
      if (view !== 'Frontal' && view !== 'Lateral') return { column: col.view, reason: 'must be Frontal or Lateral' };
      metadata.view = view;
      const projection = row[col.projection].trim();
      if (projection !== '') metadata.projection = projection;
      const match = CHEXPERT_PATIENT.exec(row[col.path].trim());
      if (match) metadata.study = `${match[1]}/${match[2]}`;
      return undefined;
    },
    filter(row) {
      const view = row[col.view].trim();
      if (!views.has(view)) return `view ${view}`;
      const projection = row[col.projection].trim();
      if (view === 'Frontal' && projections !== undefined && !projections.has(projection)) return `projection ${projection || '(blank)'}`;
      return undefined;
    },
    policy: options.policy ?? 'U-Ignore',
    policyOptions: options,
    handler: new BadRowHandler(options.onBadRow ?? 'error', emptyReport()),
  });
}
