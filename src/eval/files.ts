/**
 * The Node side of evaluation: reading predictions CSVs, turning a src/data dataset into labelled samples, and
 * writing metrics.json, metrics.csv and report.html. Everything else in src/eval is pure and browser-safe.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCsv } from '../data/csv.js';
import type { Dataset } from '../data/dataset.js';
import { evaluationToCsv } from './csv.js';
import type { EvaluationResult } from './evaluate.js';
import { evaluationToHtml, type HtmlOptions } from './html.js';
import { type LabelledSet, type PredictionTable, readPredictionTable } from './predictions.js';

export async function readPredictionsFile(path: string): Promise<PredictionTable> {
  return readPredictionTable(await readCsv(path));
}

/** A dataset's records as labelled samples: targets after its uncertainty policy, its mask, patients as clusters. */
export function labelledSetFromDataset(dataset: Dataset, file: string): LabelledSet {
  return {
    file,
    labels: dataset.labelSet.labels,
    samples: dataset.records.map((record) => ({ id: record.id, targets: record.labels, mask: record.mask, cluster: record.patientId })),
  };
}

export interface WrittenEvaluation {
  json: string;
  csv: string;
  html: string;
}

export interface WriteOptions extends HtmlOptions {
  /** More to record in metrics.json beside the result (inputs, unmatched images, ...). */
  details?: Record<string, unknown>;
}

/** Writes metrics.json, metrics.csv and report.html into `folder` (created if needed). */
export function writeEvaluation(folder: string, result: EvaluationResult, options: WriteOptions = {}): WrittenEvaluation {
  mkdirSync(folder, { recursive: true });
  const written = { json: join(folder, 'metrics.json'), csv: join(folder, 'metrics.csv'), html: join(folder, 'report.html') };
  const document = { generatedAt: options.generatedAt, inputs: options.inputs, ...options.details, ...result };
  writeFileSync(written.json, `${JSON.stringify(document, (_, value) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`);
  writeFileSync(written.csv, evaluationToCsv(result));
  writeFileSync(written.html, evaluationToHtml(result, options));
  return written;
}
