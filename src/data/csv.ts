/** CSV tables for the dataset readers: csv-parse does the parsing; this adds file-named errors and column lookup. */
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { DatasetError } from './report.js';

export interface CsvTable {
  /** The file name used in every message about this table. */
  readonly file: string;
  /** Column names as written, with trailing unnamed columns (a trailing comma on the header) removed. */
  readonly header: readonly string[];
  /** Data rows, header excluded; fields as strings, not trimmed. */
  readonly rows: readonly string[][];
  /** The 1-based line in the file where data row `rowIndex` (0-based) starts. */
  lineOf(rowIndex: number): number;
}

const PARSE_OPTIONS = {
  bom: true,
  relax_column_count: true,
  skip_empty_lines: true,
  // NIH's CSVs end lines with CRLF; a file edited by hand may mix in LF. Without this csv-parse would take the first
  // line's ending as the only one and glue LF-ended lines into one field.
  record_delimiter: ['\r\n', '\n', '\r'],
};

export async function readCsv(path: string): Promise<CsvTable> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`${path}: cannot read CSV file: ${(error as Error).message}`);
  }
  return parseCsv(text, path);
}

export function parseCsv(text: string, file: string): CsvTable {
  let records: string[][];
  try {
    // No `info` here: it costs ~70% more time on NIH's 112,120-row file; lines are recomputed only when asked.
    records = parse(text, PARSE_OPTIONS) as string[][];
  } catch (error) {
    throw new Error(`${file}: malformed CSV: ${(error as Error).message}`);
  }
  if (records.length === 0) throw new DatasetError({ file }, 'empty file: no header row');
  const header = records[0].map((name) => name.trim());
  while (header.length > 0 && header[header.length - 1] === '') header.pop();
  const seen = new Set<string>();
  header.forEach((name, index) => {
    if (name === '') throw new DatasetError({ file, line: 1 }, `header column ${index + 1} has no name`);
    if (seen.has(name)) throw new DatasetError({ file, line: 1, column: name }, 'column name appears twice in the header');
    seen.add(name);
  });
  const rows = records.slice(1);
  let lines: number[] | undefined;
  return {
    file,
    header,
    rows,
    lineOf(rowIndex: number): number {
      lines ??= recordStartLines(text);
      return lines[rowIndex + 1];
    },
  };
}

function recordStartLines(text: string): number[] {
  const records = parse(text, { ...PARSE_OPTIONS, info: true }) as unknown as {
    info: { lines: number };
    record: string[];
  }[];
  // info.lines is the line where the record ends; a record spans as many extra lines as it has line breaks.
  return records.map(({ info, record }) => info.lines - countLineBreaks(record));
}

function countLineBreaks(fields: string[]): number {
  let count = 0;
  for (const field of fields) for (const ch of field) if (ch === '\n') count++;
  return count;
}

/** Which header names a logical column may have; the first is the name used in messages. */
export interface ColumnSpec {
  names: readonly string[];
  required: boolean;
}

/**
 * Finds the index of each logical column. A missing required column is an error that lists the columns found and,
 * when one looks like a renamed version of it, says which.
 */
export function resolveColumns<K extends string>(
  table: CsvTable,
  specs: Record<K, ColumnSpec>,
  overrides: Partial<Record<K, string>> = {},
): Record<K, number> {
  const result = {} as Record<K, number>;
  const missing: string[] = [];
  for (const key of Object.keys(specs) as K[]) {
    const override = overrides[key];
    const names = override !== undefined ? [override] : specs[key].names;
    const index = table.header.findIndex((name) => names.includes(name));
    if (index < 0 && (override !== undefined || specs[key].required)) {
      const lookalike = table.header.find((name) => looksLike(name, names[0]));
      missing.push(`"${names[0]}"${lookalike !== undefined ? ` (is "${lookalike}" a renamed "${names[0]}"? name it in the column options)` : ''}`);
    }
    result[key] = index;
  }
  if (missing.length > 0) {
    throw new DatasetError(
      { file: table.file, line: 1 },
      `missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; columns found: ${table.header.map((n) => `"${n}"`).join(', ')}`,
    );
  }
  return result;
}

/** Same words up to case, punctuation and plurals, or a few letters apart. */
function looksLike(found: string, wanted: string): boolean {
  const simplify = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '').replace(/s$/, '');
  const a = simplify(found);
  const b = simplify(wanted);
  return a === b || (a.length > 3 && b.length > 3 && (a.includes(b) || b.includes(a))) || editDistance(a, b) <= 2;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/** Why a row's width does not fit the header, or undefined when it does (extra empty trailing fields are fine). */
export function rowWidthProblem(table: CsvTable, row: readonly string[]): string | undefined {
  const width = table.header.length;
  if (row.length < width) return `has ${row.length} fields, the header has ${width}`;
  for (let i = width; i < row.length; i++) {
    if (row[i].trim() !== '') return `has ${row.length} fields, the header has ${width}`;
  }
  return undefined;
}
