/** Any CSV of image paths and labels plus an image folder: the escape hatch for datasets without a reader of their own. */
import { dirname } from 'node:path';
import { readCsv, resolveColumns, type ColumnSpec, type CsvTable } from './csv.js';
import type { Dataset, UncertaintyPolicy } from './dataset.js';
import { BadRowHandler, emptyReport, type BadRowPolicy } from './report.js';
import { tableToDataset } from './table-dataset.js';
import type { PolicyOptions } from './uncertainty.js';
import { parseOptionalNumber, parseSex } from './values.js';

export interface CsvDatasetOptions extends PolicyOptions {
  csvPath: string;
  /** Folder that image paths are relative to (default: the CSV's folder). */
  imageRoot?: string;
  /** Require every image to exist (default true). */
  checkImages?: boolean;
  imageColumn: string;
  /** Without one, each image counts as its own patient (and the report warns that splits cannot group patients). */
  patientColumn?: string;
  /**
   * Either one column per label, each cell 1, 0, -1 or blank (`columns`: the label names are the column names), or
   * one column listing the positive labels (`names`: the label set; `separator` default "|"; `none`: the word for
   * no label, e.g. "No Finding"; an empty cell also means none).
   */
  labels: { columns: readonly string[] } | { column: string; names: readonly string[]; separator?: string; none?: string };
  /** Name of the label set (default "csv"). */
  labelSetName?: string;
  ageColumn?: string;
  sexColumn?: string;
  viewColumn?: string;
  /** Default U-Ignore (it only matters where cells say -1). */
  policy?: UncertaintyPolicy;
  onBadRow?: BadRowPolicy;
}

export async function readCsvDataset(options: CsvDatasetOptions): Promise<Dataset> {
  return csvDatasetFromTable(await readCsv(options.csvPath), options);
}

export function csvDatasetFromTable(table: CsvTable, options: CsvDatasetOptions): Dataset {
  const labelNames = 'columns' in options.labels ? options.labels.columns : options.labels.names;
  if (labelNames.length === 0) throw new Error('readCsvDataset: no labels given');
  if (new Set(labelNames).size !== labelNames.length) throw new Error(`readCsvDataset: a label is named twice in ${JSON.stringify(labelNames)}`);
  const optional = (name: string | undefined): ColumnSpec => ({ names: name === undefined ? [] : [name], required: name !== undefined });
  const specs: Record<string, ColumnSpec> = {
    image: { names: [options.imageColumn], required: true },
    patient: optional(options.patientColumn),
    age: optional(options.ageColumn),
    sex: optional(options.sexColumn),
    view: optional(options.viewColumn),
  };
  if ('columns' in options.labels) options.labels.columns.forEach((name) => (specs[`label:${name}`] = { names: [name], required: true }));
  else specs.labelList = { names: [options.labels.column], required: true };
  const col = resolveColumns(table, specs);
  const handler = new BadRowHandler(options.onBadRow ?? 'error', emptyReport());
  if (col.patient < 0) {
    handler.report.warnings.push(`${table.file}: no patient column given; each image is treated as its own patient`);
  }
  return tableToDataset(table, {
    labelSet: { name: options.labelSetName ?? 'csv', labels: [...labelNames] },
    labels:
      'columns' in options.labels
        ? { kind: 'columns', columns: options.labels.columns.map((name) => col[`label:${name}`]) }
        : { kind: 'list', column: col.labelList, separator: options.labels.separator ?? '|', none: options.labels.none },
    imageColumn: col.image,
    imageRoot: options.imageRoot ?? dirname(table.file),
    checkImages: options.checkImages ?? true,
    patientOf(row, id) {
      if (col.patient < 0) return id;
      const patient = row[col.patient].trim();
      return patient !== '' ? patient : { column: col.patient, reason: 'empty patient ID' };
    },
    readMetadata(row, metadata) {
      if (col.age >= 0) {
        const age = parseOptionalNumber(row[col.age]);
        if (age === null || (age !== undefined && age < 0)) return { column: col.age, reason: 'age must be a number >= 0' };
        if (age !== undefined) metadata.age = age;
      }
      if (col.sex >= 0) {
        const sex = parseSex(row[col.sex]);
        if (sex === null) return { column: col.sex, reason: 'sex must be M, F, Male, Female or Unknown' };
        if (sex !== undefined) metadata.sex = sex;
      }
      if (col.view >= 0 && row[col.view].trim() !== '') metadata.view = row[col.view].trim();
      return undefined;
    },
    policy: options.policy ?? 'U-Ignore',
    policyOptions: options,
    handler,
  });
}
