/** Parsers for the option values several commands share, with errors that name the option. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { DATASET_FORMAT_NAMES, isDatasetFormat } from '../data/formats.js';
import { NIH_FINDINGS } from '../data/labels.js';
import { RESIZE_RULES, type ResizeRule } from '../imaging/spec.js';
import { type Model, readModelFile } from '../onnx/index.js';

export function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive whole number, got "${value}"`);
    return n;
  };
}

export function nonNegativeInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || value.trim() === '') throw new InvalidArgumentError(`${name} must be a whole number >= 0, got "${value}"`);
    return n;
  };
}

/** `--data`, as `cxr train` and `cxr calibrate` declare it (repeatable: use with `collect`, read with `datasetFlag`). */
export const DATA_OPTION = ['-d, --data <format:labels.csv[:images]>', "a dataset, e.g. nih:Data_Entry.csv:images (repeatable; replaces the recipe's)"] as const;

/** One `--data` value, `format:labels.csv[:images]`, as a recipe's dataset entry with absolute paths. */
export function datasetFlag(value: string, option = '--data'): { format: string; csv: string; images?: string } {
  const [format, csv, images] = value.split(':');
  if (!isDatasetFormat(format) || !csv) throw new Error(`${option} expects format:labels.csv[:images] with format ${DATASET_FORMAT_NAMES.slice(0, -1).join(', ')} or ${DATASET_FORMAT_NAMES.at(-1)}, got "${value}"`);
  return { format, csv: resolve(csv), ...(images ? { images: resolve(images) } : {}) };
}

/** The reducer of a repeatable option: every value given, in order. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function channels(value: string): 1 | 3 {
  if (value !== '1' && value !== '3') throw new InvalidArgumentError(`channels must be 1 or 3, got "${value}"`);
  return Number(value) as 1 | 3;
}

export function resizeRule(value: string): ResizeRule {
  if (!(RESIZE_RULES as readonly string[]).includes(value)) throw new InvalidArgumentError(`resize must be ${RESIZE_RULES.join(', ')}, got "${value}"`);
  return value as ResizeRule;
}

/** `nih` (NIH's 14 findings), a comma-separated list, or @file with one label per line. */
export function labelList(value: string): string[] {
  let labels: string[];
  if (value === 'nih') labels = [...NIH_FINDINGS];
  else if (value.startsWith('@')) {
    let text: string;
    try {
      text = readFileSync(value.slice(1), 'utf8');
    } catch {
      throw new InvalidArgumentError(`cannot read the label file "${value.slice(1)}"`);
    }
    labels = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  } else labels = value.split(',').map((l) => l.trim()).filter(Boolean);
  if (labels.length === 0) throw new InvalidArgumentError('the label list is empty');
  const duplicate = labels.find((l, i) => labels.indexOf(l) !== i);
  if (duplicate) throw new InvalidArgumentError(`label "${duplicate}" appears twice`);
  return labels;
}

/** The model a command rewrites: read with its path in any error, and never the file the result goes to. */
export function readModelToRewrite(path: string, out: string): Model {
  if (resolve(out) === resolve(path)) throw new Error(`--out must differ from --model (${path}); the input model is not overwritten`);
  try {
    return readModelFile(path);
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`);
  }
}
