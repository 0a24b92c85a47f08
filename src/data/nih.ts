/**
 * NIH ChestX-ray14 as NIH ships it: Data_Entry_2017.csv (2017 file with ages like "058Y" and a trailing comma, or
 * the v2020 file with ages like "58"), or any CSV with its columns (sample_labels.csv spells the size columns
 * OriginalImageWidth etc.); images in the given folder, `images/` or `images_001..012/`; BBox_List_2017.csv;
 * the official train_val_list.txt / test_list.txt.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { readCsv, resolveColumns, rowWidthProblem, type ColumnSpec, type CsvTable } from './csv.js';
import { LabelState, type Box, type Dataset, type DatasetRecord, type RecordMetadata } from './dataset.js';
import { indexImageFolder } from './images.js';
import { NIH_FINDINGS, NIH_LABEL_SET } from './labels.js';
import { BadRowHandler, DatasetError, emptyReport, type BadRowPolicy, type RowLocation } from './report.js';
import { parseNihAge, parseOptionalNumber, parseSex } from './values.js';

/** NIH file names: 8-digit patient number, underscore, 3-digit follow-up number. */
const NIH_FILE_NAME = /^(\d{8})_(\d{3})\.png$/;

/** The patient of an NIH image file name ("00000001_000.png" -> "00000001"), or undefined for another name. */
export function nihPatientId(fileName: string): string | undefined {
  return NIH_FILE_NAME.test(fileName) ? fileName.slice(0, 8) : undefined;
}

export type NihColumn = 'image' | 'findings' | 'followUp' | 'patient' | 'age' | 'sex' | 'view' | 'width' | 'height' | 'spacingX' | 'spacingY';

const NIH_COLUMNS: Record<NihColumn, ColumnSpec> = {
  image: { names: ['Image Index'], required: true },
  findings: { names: ['Finding Labels'], required: true },
  followUp: { names: ['Follow-up #'], required: false },
  patient: { names: ['Patient ID'], required: false },
  age: { names: ['Patient Age'], required: false },
  sex: { names: ['Patient Gender'], required: false },
  view: { names: ['View Position'], required: false },
  // Data_Entry_2017's header "OriginalImage[Width,Height]" is two CSV columns; sample_labels.csv names them plainly.
  width: { names: ['OriginalImage[Width', 'OriginalImageWidth'], required: false },
  height: { names: ['Height]', 'OriginalImageHeight'], required: false },
  spacingX: { names: ['OriginalImagePixelSpacing[x', 'OriginalImagePixelSpacing_x'], required: false },
  spacingY: { names: ['y]', 'OriginalImagePixelSpacing_y'], required: false },
};

export const NO_FINDING = 'No Finding';

/** Ages above this are kept (NIH's 2017 file has a few, e.g. 414) but listed in the report's warnings. */
const IMPLAUSIBLE_AGE = 120;

export interface NihReadOptions {
  csvPath: string;
  /** Where the images are: in it, in `images/`, or in `images_001..012/` (default: the CSV's folder). */
  imageRoot?: string;
  /**
   * Require every record's image to exist (default true). When false, a record whose image is not found gets the
   * path `<imageRoot>/images/<name>` where NIH's layout would put it.
   */
  checkImages?: boolean;
  /** NIH's BBox_List_2017.csv: boxes are attached to the records of their images. */
  boxesPath?: string;
  /** `error` (default): the first bad row throws; `skip`: bad rows are left out and listed in `report.skipped`. */
  onBadRow?: BadRowPolicy;
  /** Header names for columns that the file names differently. */
  columns?: Partial<Record<NihColumn, string>>;
  /**
   * A file in Data_Entry_2017's layout (NIH's complete Data_Entry_2017_v2020.csv.gz, say) whose age, sex, view,
   * size and spacing fill in what the labels file leaves empty, matched by image name. Its labels are not read.
   */
  metadataPath?: string;
}

export async function readNihDataset(options: NihReadOptions): Promise<Dataset> {
  const table = await readCsv(options.csvPath);
  const imageRoot = options.imageRoot ?? dirname(options.csvPath);
  const checkImages = options.checkImages ?? true;
  let images: Map<string, string> | undefined;
  if (checkImages) images = indexImageFolder(imageRoot);
  else {
    try {
      images = indexImageFolder(imageRoot);
    } catch {
      images = undefined;
    }
  }
  const report = emptyReport();
  const handler = new BadRowHandler(options.onBadRow ?? 'error', report);
  const boxes = options.boxesPath !== undefined ? await readNihBoxes(options.boxesPath, handler) : undefined;
  const dataset = nihDatasetFromTable(table, { imageRoot, images, checkImages, boxes, handler, columns: options.columns });
  if (options.metadataPath !== undefined) fillMetadata(dataset, await readCsv(options.metadataPath));
  return dataset;
}

/**
 * Fills each record's missing age, sex, view, size and spacing from a metadata table in Data_Entry_2017's layout;
 * what the labels file gives is kept. Records the table does not list are counted in the report's warnings.
 */
export function fillMetadata(dataset: Dataset, table: CsvTable): void {
  const col = resolveColumns(table, NIH_COLUMNS);
  const wanted = new Map(dataset.records.map((record) => [record.id, record]));
  for (let i = 0; i < table.rows.length && wanted.size > 0; i++) {
    const row = table.rows[i];
    const record = wanted.get(row[col.image]?.trim());
    if (record === undefined) continue;
    wanted.delete(record.id);
    const found: RecordMetadata = {};
    const problem = readMetadata(row, col, found);
    if (problem !== undefined) throw new DatasetError(rowLocation(table, i, table.header[col[problem.column]], row[col[problem.column]]), problem.reason);
    const fill = <K extends keyof RecordMetadata>(key: K) => {
      if (record.metadata[key] === undefined && found[key] !== undefined) record.metadata[key] = found[key];
    };
    for (const key of ['age', 'sex', 'view', 'originalSize', 'pixelSpacing'] as const) fill(key);
  }
  if (wanted.size > 0) dataset.report.warnings.push(`${table.file} has no row for ${wanted.size} of the ${dataset.records.length} images; their metadata stays as the labels file gives it`);
}

export interface NihTableOptions {
  imageRoot: string;
  /** Image file name -> path (from `indexImageFolder`). */
  images?: Map<string, string>;
  checkImages: boolean;
  boxes?: Map<string, Box[]>;
  handler: BadRowHandler;
  columns?: Partial<Record<NihColumn, string>>;
}

/** The synchronous core of `readNihDataset`, for a table already parsed. */
export function nihDatasetFromTable(table: CsvTable, options: NihTableOptions): Dataset {
  const { handler } = options;
  const report = handler.report;
  const file = table.file;
  const col = resolveColumns(table, NIH_COLUMNS, options.columns);
  const findingIndex = new Map<string, number>(NIH_FINDINGS.map((name, i) => [name, i]));
  const c = NIH_FINDINGS.length;
  const n = table.rows.length;
  // One allocation per array for the whole table; records hold views into them.
  const states = new Int8Array(n * c);
  const labels = new Float32Array(n * c);
  const mask = new Uint8Array(n * c).fill(1);
  const records: DatasetRecord[] = [];
  const firstRowOf = new Map<string, number>();
  const implausibleAges: number[] = [];
  const headerName = (key: NihColumn) => table.header[col[key]];
  const expectedFolder = join(options.imageRoot, 'images') + sep;

  rows: for (let i = 0; i < n; i++) {
    const row = table.rows[i];
    const at = (key?: NihColumn, value?: string) => rowLocation(table, i, key === undefined ? undefined : headerName(key), value);
    const widthProblem = rowWidthProblem(table, row);
    if (widthProblem !== undefined) {
      handler.bad(at(), widthProblem);
      continue;
    }
    const id = row[col.image].trim();
    if (id === '') {
      handler.bad(at('image', id), 'empty image name');
      continue;
    }
    const firstRow = firstRowOf.get(id);
    if (firstRow !== undefined) {
      handler.bad(at('image', id), `duplicate: the same image is already on row ${firstRow}`);
      continue;
    }

    const base = records.length * c;
    const findingsText = row[col.findings].trim();
    const findings = findingsText.split('|').map((name) => name.trim());
    if (findingsText === '') {
      handler.bad(at('findings', findingsText), `empty findings (an image without findings is written "${NO_FINDING}")`);
      continue;
    }
    if (findings.includes(NO_FINDING)) {
      if (findings.length > 1) {
        handler.bad(at('findings', findingsText), `"${NO_FINDING}" together with findings`);
        continue;
      }
    } else {
      for (const name of findings) {
        const index = findingIndex.get(name);
        if (index === undefined) {
          handler.bad(at('findings', findingsText), `unknown finding "${name}"; NIH's findings are ${NIH_FINDINGS.join(', ')} or "${NO_FINDING}"`);
          states.fill(0, base, base + c);
          continue rows;
        }
        states[base + index] = LabelState.positive;
      }
    }

    const patientId = patientOf(id, col.patient >= 0 ? row[col.patient].trim() : '');
    if (typeof patientId !== 'string') {
      states.fill(0, base, base + c);
      handler.bad(at('patient', col.patient >= 0 ? row[col.patient] : undefined), patientId.problem);
      continue;
    }

    const metadata: RecordMetadata = {};
    const problem = readMetadata(row, col, metadata);
    if (problem !== undefined) {
      states.fill(0, base, base + c);
      handler.bad(at(problem.column, row[col[problem.column]]), problem.reason);
      continue;
    }
    if (metadata.age !== undefined && metadata.age > IMPLAUSIBLE_AGE) implausibleAges.push(i + 1);

    let imagePath = options.images?.get(id);
    if (imagePath === undefined) {
      if (options.checkImages) {
        states.fill(0, base, base + c);
        handler.bad(at('image', id), `image file not found under ${options.imageRoot}`);
        continue;
      }
      imagePath = expectedFolder + id;
    }

    firstRowOf.set(id, i + 1);
    for (let j = 0; j < c; j++) labels[base + j] = states[base + j];
    const record: DatasetRecord = {
      id,
      patientId,
      imagePath,
      source: { file, row: i + 1 },
      states: states.subarray(base, base + c),
      labels: labels.subarray(base, base + c),
      mask: mask.subarray(base, base + c),
      metadata,
      boxes: options.boxes?.get(id),
    };
    records.push(record);
  }

  if (implausibleAges.length > 0) {
    report.warnings.push(
      `${file}: ${implausibleAges.length} row(s) give an age over ${IMPLAUSIBLE_AGE} years, kept as written: rows ${implausibleAges.join(', ')}`,
    );
  }
  if (options.boxes !== undefined) {
    let elsewhere = 0;
    for (const [id, list] of options.boxes) if (!firstRowOf.has(id)) elsewhere += list.length;
    if (elsewhere > 0) report.warnings.push(`${elsewhere} box(es) belong to images that are not in ${file}; not used`);
  }
  if (records.length === 0) {
    throw new DatasetError({ file }, n === 0 ? 'empty dataset: the file has a header but no rows' : `empty dataset: all ${n} rows were skipped`);
  }
  return { labelSet: NIH_LABEL_SET, records, policy: 'U-Ignore', report };
}

function rowLocation(table: CsvTable, rowIndex: number, column?: string, value?: string): RowLocation {
  return { file: table.file, row: rowIndex + 1, line: table.lineOf(rowIndex), column, value };
}

function patientOf(id: string, patientCell: string): string | { problem: string } {
  const fromName = nihPatientId(id);
  if (patientCell === '') {
    return fromName ?? { problem: `no Patient ID, and "${id}" is not an NIH file name (NNNNNNNN_NNN.png) to take it from` };
  }
  if (fromName === undefined) return patientCell;
  if (!/^\d+$/.test(patientCell) || Number(patientCell) !== Number(fromName)) {
    return { problem: `Patient ID "${patientCell}" does not match the patient ${fromName} in the file name "${id}"` };
  }
  return fromName;
}

function cellOf(row: readonly string[], index: number): string {
  return index >= 0 ? row[index] : '';
}

function readMetadata(
  row: readonly string[],
  col: Record<NihColumn, number>,
  metadata: RecordMetadata,
): { column: NihColumn; reason: string } | undefined {
  const ageText = cellOf(row, col.age).trim();
  if (ageText !== '') {
    const age = parseNihAge(ageText);
    if (age === undefined) return { column: 'age', reason: 'age must look like "58", "058Y", "013M" or "001D"' };
    metadata.age = age;
  }
  const sex = parseSex(cellOf(row, col.sex));
  if (sex === null) return { column: 'sex', reason: 'sex must be M or F' };
  if (sex !== undefined) metadata.sex = sex;
  const view = cellOf(row, col.view).trim();
  if (view !== '') metadata.view = view;
  const followUp = parseOptionalNumber(cellOf(row, col.followUp));
  if (followUp === null || (followUp !== undefined && !Number.isInteger(followUp))) {
    return { column: 'followUp', reason: 'follow-up number must be a whole number' };
  }
  if (followUp !== undefined) metadata.followUp = followUp;
  const numbers: Partial<Record<NihColumn, number>> = {};
  for (const key of ['width', 'height', 'spacingX', 'spacingY'] as const) {
    const value = parseOptionalNumber(cellOf(row, col[key]));
    if (value === null || (value !== undefined && value <= 0)) return { column: key, reason: 'must be a positive number' };
    numbers[key] = value;
  }
  if (numbers.width !== undefined && numbers.height !== undefined) metadata.originalSize = { width: numbers.width, height: numbers.height };
  if (numbers.spacingX !== undefined && numbers.spacingY !== undefined) metadata.pixelSpacing = { x: numbers.spacingX, y: numbers.spacingY };
  return undefined;
}

/** The pixel space of NIH's PNGs, which BBox_List_2017.csv's coordinates refer to. */
export const NIH_BOX_SPACE = { width: 1024, height: 1024 } as const;

/** BBox_List_2017.csv spells one finding differently from Data_Entry_2017.csv. */
const BOX_FINDING_ALIASES: Record<string, string> = { Infiltrate: 'Infiltration' };

const BOX_COLUMNS = {
  image: { names: ['Image Index'], required: true },
  finding: { names: ['Finding Label'], required: true },
  x: { names: ['Bbox [x'], required: true },
  y: { names: ['y'], required: true },
  width: { names: ['w'], required: true },
  height: { names: ['h]'], required: true },
} satisfies Record<string, ColumnSpec>;

/**
 * NIH's BBox_List_2017.csv: image name -> boxes in NIH's 1024 x 1024 space (scale with `scaleBox` to the image read).
 * Finding names are NIH's ("Infiltrate" is read as "Infiltration").
 */
export async function readNihBoxes(path: string, handler = new BadRowHandler('error', emptyReport())): Promise<Map<string, Box[]>> {
  const table = await readCsv(path);
  const col = resolveColumns(table, BOX_COLUMNS);
  const known = new Set<string>(NIH_FINDINGS);
  const boxes = new Map<string, Box[]>();
  table.rows.forEach((row, i) => {
    const at = (column?: string, value?: string): RowLocation => ({ file: path, row: i + 1, line: table.lineOf(i), column, value });
    const widthProblem = rowWidthProblem(table, row);
    if (widthProblem !== undefined) return handler.bad(at(), widthProblem);
    const image = row[col.image].trim();
    if (nihPatientId(image) === undefined) return handler.bad(at('Image Index', image), 'not an NIH image name (NNNNNNNN_NNN.png)');
    const written = row[col.finding].trim();
    const finding = BOX_FINDING_ALIASES[written] ?? written;
    if (!known.has(finding)) return handler.bad(at('Finding Label', written), `unknown finding; NIH's findings are ${NIH_FINDINGS.join(', ')}`);
    const values: number[] = [];
    for (const key of ['x', 'y', 'width', 'height'] as const) {
      const text = row[col[key]];
      const value = Number(text.trim());
      if (text.trim() === '' || !Number.isFinite(value) || ((key === 'width' || key === 'height') && value <= 0)) {
        return handler.bad(at(table.header[col[key]], text), key === 'width' || key === 'height' ? 'must be a positive number' : 'must be a number');
      }
      values.push(value);
    }
    const [x, y, width, height] = values;
    const list = boxes.get(image) ?? [];
    list.push({ finding, x, y, width, height, space: { ...NIH_BOX_SPACE } });
    boxes.set(image, list);
  });
  if (boxes.size === 0) throw new DatasetError({ file: path }, 'no boxes in the file');
  return boxes;
}

/** A box moved into the pixel space of an image of another size (for example a 512 px copy of a 1024 px PNG). */
export function scaleBox(box: Box, width: number, height: number): Box {
  const sx = width / box.space.width;
  const sy = height / box.space.height;
  return { finding: box.finding, x: box.x * sx, y: box.y * sy, width: box.width * sx, height: box.height * sy, space: { width, height } };
}

/** NIH's official patient-wise split, as image names. */
export interface NihOfficialLists {
  trainVal: string[];
  test: string[];
}

/**
 * Reads train_val_list.txt and test_list.txt (from a folder holding both, or given paths). Every line must be an
 * NIH image name; a name listed twice, or in both lists, is an error.
 */
export async function readNihOfficialLists(
  where: string | { trainValPath: string; testPath: string },
): Promise<NihOfficialLists> {
  const paths = typeof where === 'string' ? { trainValPath: join(where, 'train_val_list.txt'), testPath: join(where, 'test_list.txt') } : where;
  const trainVal = await readNameList(paths.trainValPath);
  const test = await readNameList(paths.testPath);
  const trainValNames = new Set(trainVal);
  const both = test.filter((name) => trainValNames.has(name));
  if (both.length > 0) {
    throw new Error(
      `${basename(paths.trainValPath)} and ${basename(paths.testPath)} both list ${both.length} image(s): ${both.slice(0, 10).join(', ')}${both.length > 10 ? ', ...' : ''}`,
    );
  }
  return { trainVal, test };
}

async function readNameList(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`${path}: cannot read image list: ${(error as Error).message}`);
  }
  const names: string[] = [];
  const lineOf = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const name = raw.trim();
    if (name === '') return;
    if (nihPatientId(name) === undefined) throw new DatasetError({ file: path, line: i + 1, value: name }, 'not an NIH image name (NNNNNNNN_NNN.png)');
    const earlier = lineOf.get(name);
    if (earlier !== undefined) throw new DatasetError({ file: path, line: i + 1, value: name }, `listed twice (also on line ${earlier})`);
    lineOf.set(name, i + 1);
    names.push(name);
  });
  if (names.length === 0) throw new DatasetError({ file: path }, 'empty image list');
  return names;
}
