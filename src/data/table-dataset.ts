/** The row loop shared by the CheXpert and generic CSV readers: one record per good row, every bad row accounted for. */
import { isAbsolute, join } from 'node:path';
import { rowWidthProblem, type CsvTable } from './csv.js';
import { LabelState, type Dataset, type DatasetRecord, type RecordMetadata, type UncertaintyPolicy } from './dataset.js';
import { isFile } from './images.js';
import type { LabelSet } from './labels.js';
import { seededRandom } from '../random.js';
import { BadRowHandler, DatasetError, type RowLocation } from './report.js';
import { checkPolicy, targetsFromStates, type PolicyOptions } from './uncertainty.js';
import { parseLabelCell } from './values.js';

/** A problem with one cell: the header index of its column and why. */
export interface CellProblem {
  column: number;
  reason: string;
}

export type LabelSource =
  /** One column per label (header index per label) with 1 / 0 / -1 / blank cells. */
  | { kind: 'columns'; columns: readonly number[] }
  /** One column listing the positive labels, e.g. "Mass|Nodule"; `none` (if given) or an empty cell means none. */
  | { kind: 'list'; column: number; separator: string; none?: string };

export interface TableDatasetConfig {
  labelSet: LabelSet;
  labels: LabelSource;
  imageColumn: number;
  imageRoot: string;
  checkImages: boolean;
  /** The patient of a row, or a problem. */
  patientOf(row: readonly string[], id: string): string | CellProblem;
  /** Metadata of a row (filled into `metadata`), or a problem. */
  readMetadata(row: readonly string[], metadata: RecordMetadata): CellProblem | undefined;
  /** Why a good row is left out on the caller's request (counted in report.filtered), or undefined to keep it. */
  filter?(row: readonly string[]): string | undefined;
  policy: UncertaintyPolicy;
  policyOptions: PolicyOptions;
  handler: BadRowHandler;
}

export function tableToDataset(table: CsvTable, config: TableDatasetConfig): Dataset {
  const { handler, labelSet } = config;
  const report = handler.report;
  const policy = checkPolicy(config.policy);
  const random = seededRandom(config.policyOptions.seed ?? 0);
  const c = labelSet.labels.length;
  const labelIndex = new Map(labelSet.labels.map((name, j) => [name, j]));
  const records: DatasetRecord[] = [];
  const firstRowOf = new Map<string, number>();

  for (let i = 0; i < table.rows.length; i++) {
    const row = table.rows[i];
    const at = (column?: number): RowLocation => ({
      file: table.file,
      row: i + 1,
      line: table.lineOf(i),
      column: column === undefined ? undefined : table.header[column],
      value: column === undefined ? undefined : row[column],
    });
    const widthProblem = rowWidthProblem(table, row);
    if (widthProblem !== undefined) {
      handler.bad(at(), widthProblem);
      continue;
    }
    const id = row[config.imageColumn].trim();
    if (id === '') {
      handler.bad(at(config.imageColumn), 'empty image path');
      continue;
    }
    const firstRow = firstRowOf.get(id);
    if (firstRow !== undefined) {
      handler.bad(at(config.imageColumn), `duplicate: the same image is already on row ${firstRow}`);
      continue;
    }
    const states = new Int8Array(c);
    const labelProblem = readStates(row, config.labels, labelIndex, states);
    if (labelProblem !== undefined) {
      handler.bad(at(labelProblem.column), labelProblem.reason);
      continue;
    }
    const patientId = config.patientOf(row, id);
    if (typeof patientId !== 'string') {
      handler.bad(at(patientId.column), patientId.reason);
      continue;
    }
    const metadata: RecordMetadata = {};
    const metadataProblem = config.readMetadata(row, metadata);
    if (metadataProblem !== undefined) {
      handler.bad(at(metadataProblem.column), metadataProblem.reason);
      continue;
    }
    const filtered = config.filter?.(row);
    if (filtered !== undefined) {
      report.filtered[filtered] = (report.filtered[filtered] ?? 0) + 1;
      continue;
    }
    const imagePath = isAbsolute(id) ? id : join(config.imageRoot, id);
    if (config.checkImages && !isFile(imagePath)) {
      handler.bad(at(config.imageColumn), `image file not found: ${imagePath}`);
      continue;
    }
    firstRowOf.set(id, i + 1);
    const labels = new Float32Array(c);
    const mask = new Uint8Array(c);
    targetsFromStates(states, policy, config.policyOptions, random, labels, mask);
    records.push({ id, patientId, imagePath, source: { file: table.file, row: i + 1 }, states, labels, mask, metadata });
  }

  if (records.length === 0) {
    const n = table.rows.length;
    const filteredCount = Object.values(report.filtered).reduce((a, b) => a + b, 0);
    throw new DatasetError(
      { file: table.file },
      n === 0
        ? 'empty dataset: the file has a header but no rows'
        : `empty dataset: of ${n} rows, ${report.skipped.length} were skipped as bad and ${filteredCount} filtered out (${JSON.stringify(report.filtered)})`,
    );
  }
  return { labelSet, records, policy, report };
}

function readStates(row: readonly string[], source: LabelSource, labelIndex: Map<string, number>, states: Int8Array): CellProblem | undefined {
  if (source.kind === 'columns') {
    for (let j = 0; j < source.columns.length; j++) {
      const state = parseLabelCell(row[source.columns[j]]);
      if (state === undefined) return { column: source.columns[j], reason: 'label must be 1, 0, -1 or blank' };
      states[j] = state;
    }
    return undefined;
  }
  const text = row[source.column].trim();
  if (text === '' || text === source.none) return undefined;
  for (const part of text.split(source.separator)) {
    const name = part.trim();
    const j = labelIndex.get(name);
    if (j === undefined) {
      const known = [...labelIndex.keys()].join(', ');
      return { column: source.column, reason: `unknown label "${name}"; known labels: ${known}${source.none !== undefined ? ` or "${source.none}"` : ''}` };
    }
    states[j] = LabelState.positive;
  }
  return undefined;
}
