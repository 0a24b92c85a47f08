/**
 * Predictions tables (as `cxr predict --csv` writes them: `file`, one probability column per label, `verdict`,
 * `flags`, `error`), written and read here, and their matching with labelled samples. Probabilities are written in
 * the shortest form that reads back as the same double, so every distinct value stays distinct. Pure: the caller
 * parses the CSV (see files.ts); every problem is an error that names the file, row, line, column and value, or the
 * images concerned.
 */
import type { EvaluationInput } from './evaluate.js';

/** A parsed CSV: the shape of src/data's CsvTable. */
export interface CsvTableLike {
  readonly file: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** The 1-based line of data row `rowIndex` (0-based), for messages. */
  lineOf?(rowIndex: number): number;
}

export interface FailedPrediction {
  path: string;
  /** 1-based data row. */
  row: number;
  error: string;
}

export interface PredictionTable {
  file: string;
  labels: string[];
  /** The image path of each predicted row. */
  paths: string[];
  /** The 1-based data row of each predicted row. */
  rows: number[];
  /** paths.length * labels.length, row-major. */
  probabilities: Float64Array;
  /** Rows whose `error` column says the image could not be predicted (or was rejected, findings withheld). */
  failed: FailedPrediction[];
  /** Predicted rows whose input checks rejected the image but whose findings were shown anyway (`rejected-shown`). */
  rejectedShown?: RejectedShown[];
}

export interface RejectedShown {
  path: string;
  /** 1-based data row. */
  row: number;
  /** The input checks' flag codes. */
  flags: string[];
}

const FILE_COLUMN = 'file';
const ERROR_COLUMN = 'error';
/** The input checks' verdict: accepted, rejected (no probabilities) or rejected-shown (probabilities not to be trusted). */
const VERDICT_COLUMN = 'verdict';
/** The codes of the input checks' flags, separated by `;`. */
const FLAGS_COLUMN = 'flags';
/** The source's Study, Series and SOP Instance UIDs, written only when some input is DICOM. */
const UID_COLUMNS = ['study_instance_uid', 'series_instance_uid', 'sop_instance_uid'];
/** Columns that are never a label's probabilities. */
const RESERVED = [FILE_COLUMN, ERROR_COLUMN, VERDICT_COLUMN, FLAGS_COLUMN, ...UID_COLUMNS];

/** One image's row of a predictions CSV. */
export interface PredictionRow {
  file: string;
  /** One per label, in the table's label order; null when the image has none (it failed or was rejected). */
  probabilities: ArrayLike<number> | null;
  /** The input checks' verdict; empty when the image could not be read. */
  verdict?: string;
  /** Codes of the input checks' flags (warnings too). */
  flags?: readonly string[];
  /** Why there are no probabilities. */
  error?: string;
  /** Study, Series and SOP Instance UID of a DICOM input. */
  uids?: readonly [study?: string, series?: string, sop?: string];
}

/**
 * A predictions CSV: `file`, one probability per label, `verdict`, `flags` (codes joined by `;`), `error`, and where
 * any input is DICOM `study_instance_uid`, `series_instance_uid`, `sop_instance_uid`.
 * Probabilities are written as JavaScript's shortest round-trip decimal (`String(p)`), so reading them back gives
 * the same doubles and no two distinct probabilities collapse into one.
 */
export function predictionsToCsv(labels: readonly string[], rows: readonly PredictionRow[]): string {
  const withUids = rows.some((row) => row.uids);
  const lines = [[FILE_COLUMN, ...labels, VERDICT_COLUMN, FLAGS_COLUMN, ERROR_COLUMN, ...(withUids ? UID_COLUMNS : [])].map(quoteCsv).join(',')];
  for (const row of rows) {
    if (row.probabilities && row.probabilities.length !== labels.length) throw new Error(`${row.file}: ${row.probabilities.length} probabilities for ${labels.length} labels`);
    const values = row.probabilities ? Array.from(row.probabilities, (p) => String(p)) : labels.map(() => '');
    const uids = withUids ? UID_COLUMNS.map((_, k) => quoteCsv(row.uids?.[k] ?? '')) : [];
    lines.push([quoteCsv(row.file), ...values, quoteCsv(row.verdict ?? ''), quoteCsv((row.flags ?? []).join(';')), quoteCsv(row.error ?? ''), ...uids].join(','));
  }
  return `${lines.join('\n')}\n`;
}

function quoteCsv(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function readPredictionTable(table: CsvTableLike): PredictionTable {
  const { file, header } = table;
  const fileColumn = header.indexOf(FILE_COLUMN);
  if (fileColumn < 0) {
    throw new Error(
      `${file}: no "${FILE_COLUMN}" column; a predictions CSV (as \`cxr predict --csv\` writes it) has the columns ` +
        `${FILE_COLUMN}, one probability per label, ${VERDICT_COLUMN}, ${FLAGS_COLUMN}, ${ERROR_COLUMN}; this one has ${header.map((h) => `"${h}"`).join(', ')}`,
    );
  }
  const errorColumn = header.indexOf(ERROR_COLUMN);
  const verdictColumn = header.indexOf(VERDICT_COLUMN);
  const flagsColumn = header.indexOf(FLAGS_COLUMN);
  const labelColumns = header.flatMap((name, index) => (RESERVED.includes(name) ? [] : [index]));
  if (labelColumns.length === 0) throw new Error(`${file}: no probability columns (only ${header.map((h) => `"${h}"`).join(', ')})`);
  const labels = labelColumns.map((index) => header[index]);
  const paths: string[] = [];
  const rows: number[] = [];
  const values: number[] = [];
  const failed: FailedPrediction[] = [];
  const rejectedShown: RejectedShown[] = [];
  table.rows.forEach((row, r) => {
    const at = (column?: number) => locate(table, r, column === undefined ? undefined : header[column], column === undefined ? undefined : row[column]);
    if (row.length !== header.length) throw new Error(`${at()}: ${row.length} fields, but the header has ${header.length} columns`);
    const path = row[fileColumn].trim();
    if (path === '') throw new Error(`${at(fileColumn)}: empty image path`);
    const error = errorColumn >= 0 ? row[errorColumn].trim() : '';
    const verdict = verdictColumn >= 0 ? row[verdictColumn].trim() : '';
    const flags = flagsColumn >= 0 ? row[flagsColumn].split(';').map((f) => f.trim()).filter((f) => f !== '') : [];
    if (error !== '' || verdict === 'rejected') {
      failed.push({ path, row: r + 1, error: error || `rejected by the input checks${flags.length ? ` (${flags.join(', ')})` : ''}` });
      return;
    }
    if (verdict === 'rejected-shown') rejectedShown.push({ path, row: r + 1, flags });
    for (const column of labelColumns) {
      const text = row[column].trim();
      if (text === '') throw new Error(`${at(column)}: empty probability (and no error given for the image)`);
      const value = DECIMAL.test(text) ? Number(text) : NaN;
      if (Number.isNaN(value)) throw new Error(`${at(column)}: not a number`);
      if (value < 0 || value > 1) throw new Error(`${at(column)}: probability outside [0, 1]`);
      values.push(value);
    }
    paths.push(path);
    rows.push(r + 1);
  });
  return { file, labels, paths, rows, probabilities: Float64Array.from(values), failed, rejectedShown };
}

function locate(table: CsvTableLike, rowIndex: number, column?: string, value?: string): string {
  let where = `${table.file}, row ${rowIndex + 1}`;
  if (table.lineOf) where += ` (line ${table.lineOf(rowIndex)})`;
  if (column !== undefined) where += `, column "${column}"`;
  if (value !== undefined) where += `, value ${JSON.stringify(value)}`;
  return where;
}

/** Labelled samples, from any dataset reader. */
export interface LabelledSample {
  /** The image as the labels name it: a file name (NIH) or a relative path (CheXpert, generic CSVs). */
  id: string;
  /** Per label of the set, 1 positive, 0 negative (anything where masked). */
  targets: ArrayLike<number>;
  /** Per label, 1 where the label counts (default all). */
  mask?: ArrayLike<number>;
  /** E.g. the patient ID, for a cluster bootstrap. */
  cluster?: string;
}

export interface LabelledSet {
  file: string;
  labels: readonly string[];
  samples: readonly LabelledSample[];
}

export interface MatchedPredictions {
  input: EvaluationInput;
  /** Labelled images without a prediction row (not evaluated). */
  labelsWithoutPredictions: string[];
  /** Prediction rows that say the image could not be predicted (not evaluated). */
  failedPredictions: FailedPrediction[];
  /** Labels of the labelled set that the predictions do not have (not evaluated). */
  labelsNotPredicted: string[];
  /** Evaluated rows whose image the input checks rejected, predicted anyway on request (their findings are not to be trusted). */
  rejectedShown: RejectedShown[];
}

/** How many unmatched names an error message lists before saying how many more there are. */
const LISTED = 10;

/**
 * Pairs each prediction row with its labelled image: the longest trailing part of its path (whole path
 * components) that is also the trailing part of exactly one labelled image's id, so `images/00000001_000.png`
 * finds `00000001_000.png` and `/data/CheXpert-v1.0/valid/patient1/study1/view1_frontal.jpg` finds
 * `CheXpert-v1.0/valid/patient1/study1/view1_frontal.jpg`. Errors: a predicted label the labels do not know,
 * predictions without labels (all listed by count, the first few by name), two rows for one image, an ambiguous
 * name. Labelled images without predictions are fine (a labels file usually covers more images than one test set)
 * and are returned for the report.
 */
export function matchPredictions(predictions: PredictionTable, labelled: LabelledSet): MatchedPredictions {
  const unknown = predictions.labels.filter((label) => !labelled.labels.includes(label));
  if (unknown.length > 0) {
    throw new Error(
      `${predictions.file}: ${unknown.length === 1 ? 'label' : 'labels'} ${unknown.map((l) => `"${l}"`).join(', ')} not in ${labelled.file}, ` +
        `whose labels are ${labelled.labels.join(', ')}`,
    );
  }
  const suffixOwner = indexSuffixes(labelled.samples.map((s) => s.id));
  const matchedRow = new Map<number, number>();
  const order: number[] = [];
  const withoutLabels: string[] = [];
  predictions.paths.forEach((path, p) => {
    const sample = resolve(path, suffixOwner, () => `${predictions.file}, row ${predictions.rows[p]}: "${path}"`);
    if (sample === undefined) {
      withoutLabels.push(path);
      return;
    }
    const earlier = matchedRow.get(sample);
    if (earlier !== undefined) {
      throw new Error(`${predictions.file}: rows ${predictions.rows[earlier]} and ${predictions.rows[p]} are both predictions for "${labelled.samples[sample].id}" of ${labelled.file}`);
    }
    matchedRow.set(sample, p);
    order.push(p);
  });
  if (withoutLabels.length > 0) {
    const listed = withoutLabels.slice(0, LISTED).map((path) => `  ${path}`).join('\n');
    const more = withoutLabels.length > LISTED ? `\n  ... and ${withoutLabels.length - LISTED} more` : '';
    throw new Error(`${predictions.file}: ${withoutLabels.length} predicted ${withoutLabels.length === 1 ? 'image has' : 'images have'} no labels in ${labelled.file}:\n${listed}${more}`);
  }
  if (order.length === 0) throw new Error(`${predictions.file}: no predicted image to evaluate`);

  const c = predictions.labels.length;
  const labelIndex = predictions.labels.map((label) => labelled.labels.indexOf(label));
  const probabilities = new Float64Array(order.length * c);
  const targets = new Float64Array(order.length * c);
  const mask = new Uint8Array(order.length * c);
  const ids: string[] = [];
  const clusters: string[] = [];
  let everyCluster = true;
  const sampleOfRow = new Map([...matchedRow].map(([sample, row]) => [row, sample]));
  order.forEach((p, i) => {
    const sample = labelled.samples[sampleOfRow.get(p)!];
    ids.push(sample.id);
    if (sample.cluster === undefined) everyCluster = false;
    else clusters.push(sample.cluster);
    for (let j = 0; j < c; j++) {
      probabilities[i * c + j] = predictions.probabilities[p * c + j];
      targets[i * c + j] = sample.targets[labelIndex[j]];
      mask[i * c + j] = sample.mask ? sample.mask[labelIndex[j]] : 1;
    }
  });
  return {
    input: { labels: [...predictions.labels], probabilities, targets, mask, ids, clusters: everyCluster ? clusters : undefined },
    labelsWithoutPredictions: labelled.samples.filter((_, s) => !matchedRow.has(s)).map((s) => s.id),
    failedPredictions: predictions.failed,
    labelsNotPredicted: labelled.labels.filter((label) => !predictions.labels.includes(label)),
    rejectedShown: predictions.rejectedShown ?? [],
  };
}

function components(path: string): string[] {
  return path.replace(/\\/g, '/').split('/').filter((part) => part !== '' && part !== '.');
}

/** Every trailing run of path components of every id -> the index of its only owner, or -1 when shared. */
function indexSuffixes(ids: readonly string[]): Map<string, number> {
  const owner = new Map<string, number>();
  ids.forEach((id, index) => {
    const parts = components(id);
    for (let k = 1; k <= parts.length; k++) {
      const key = parts.slice(parts.length - k).join('/');
      const existing = owner.get(key);
      owner.set(key, existing === undefined ? index : existing === index ? index : -1);
    }
  });
  return owner;
}

function resolve(path: string, owner: Map<string, number>, where: () => string): number | undefined {
  const parts = components(path);
  for (let k = parts.length; k >= 1; k--) {
    const key = parts.slice(parts.length - k).join('/');
    const index = owner.get(key);
    if (index === undefined) continue;
    if (index < 0) throw new Error(`${where()}: "${key}" names several labelled images; give paths that tell them apart`);
    return index;
  }
  return undefined;
}
