/** What a reader did with rows it did not turn into records: every skip and every filter is accounted for. */

/** Where a problem was found; `row` is the 1-based data row (the header is not counted), `line` the file's line. */
export interface RowLocation {
  file: string;
  row?: number;
  line?: number;
  column?: string;
  value?: string;
}

export interface SkippedRow extends RowLocation {
  reason: string;
}

export interface DatasetReport {
  /** Rows (or images) left out because they were bad and the caller asked to skip bad rows. */
  skipped: SkippedRow[];
  /** Rows left out on purpose by a filter the caller asked for (for example lateral views), counted per reason. */
  filtered: Record<string, number>;
  /** Things kept as they are but worth knowing (implausible ages, boxes for images not in the dataset, ...). */
  warnings: string[];
}

export function emptyReport(): DatasetReport {
  return { skipped: [], filtered: {}, warnings: [] };
}

/** An error about a data file, with the location also available as fields for callers that want to show it. */
export class DatasetError extends Error implements RowLocation {
  readonly file: string;
  readonly row?: number;
  readonly line?: number;
  readonly column?: string;
  readonly value?: string;

  constructor(location: RowLocation, reason: string) {
    super(`${describeLocation(location)}: ${reason}`);
    this.name = 'DatasetError';
    this.file = location.file;
    this.row = location.row;
    this.line = location.line;
    this.column = location.column;
    this.value = location.value;
  }
}

export function describeLocation(location: RowLocation): string {
  let where = location.file;
  if (location.row !== undefined) where += `, row ${location.row}`;
  if (location.line !== undefined) where += ` (line ${location.line})`;
  if (location.column !== undefined) where += `, column "${location.column}"`;
  if (location.value !== undefined) where += `, value ${JSON.stringify(location.value)}`;
  return where;
}

export type BadRowPolicy = 'error' | 'skip';

/** Throws on a bad row, or records it in the report when the caller asked to skip bad rows. */
export class BadRowHandler {
  constructor(
    readonly policy: BadRowPolicy,
    readonly report: DatasetReport,
  ) {
    if (policy !== 'error' && policy !== 'skip') {
      throw new Error(`onBadRow must be "error" or "skip", got ${JSON.stringify(policy)}`);
    }
  }

  bad(location: RowLocation, reason: string): void {
    if (this.policy === 'error') throw new DatasetError(location, reason);
    this.report.skipped.push({ ...location, reason });
  }
}
