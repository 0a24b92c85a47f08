/** Small helpers for the imaging tests: real-file access, raw stored DICOM samples, CSV and pixel statistics. */
import { readFileSync } from 'node:fs';
import dicomParser from 'dicom-parser';
import { REPO_ROOT, sharedDataPath } from '../helpers/fixtures.js';
import { join } from 'node:path';

export const DICOM_DIR = sharedDataPath('dicom');
export const CXR01 = sharedDataPath('dicom', 'cxr01_CR_chest_PA_MONO1_10bit_ImplicitLE_nometa.dcm');

export function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

export function fixture(name: string): Uint8Array {
  return readBytes(join(REPO_ROOT, 'test', 'imaging', 'fixtures', name));
}

/** The stored values of a native 16-bit DICOM, read straight from the bytes (no windowing), via dicom-parser. */
export function storedSamples16(path: string): { rows: number; columns: number; samples: Uint16Array } {
  const ds = dicomParser.parseDicom(readBytes(path), { TransferSyntaxUID: '1.2.840.10008.1.2' });
  const pd = ds.elements.x7fe00010;
  const rows = ds.uint16('x00280010')!;
  const columns = ds.uint16('x00280011')!;
  const samples = new Uint16Array(rows * columns);
  for (let i = 0; i < samples.length; i++) samples[i] = ds.byteArray[pd.dataOffset + 2 * i] | (ds.byteArray[pd.dataOffset + 2 * i + 1] << 8);
  return { rows, columns, samples };
}

/** Minimal CSV reader with quoted fields (the manifests quote fields that contain commas). */
export function readCsv(path: string): Record<string, string>[] {
  const lines = readFileSync(path, 'utf8').split(/\r?\n/).filter((l) => l.length > 0);
  const split = (line: string): string[] => {
    const out: string[] = [];
    let field = '';
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (quoted && c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = !quoted;
      else if (c === ',' && !quoted) {
        out.push(field);
        field = '';
      } else field += c;
    }
    out.push(field);
    return out;
  };
  const header = split(lines[0]);
  return lines.slice(1).map((l) => Object.fromEntries(split(l).map((v, i) => [header[i], v])));
}

export function stats(values: ArrayLike<number>): { min: number; max: number; mean: number; std: number } {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    sq += v * v;
  }
  const mean = sum / values.length;
  return { min, max, mean, std: Math.sqrt(Math.max(0, sq / values.length - mean * mean)) };
}

/** Mean and maximum absolute difference of two equally long arrays. */
export function diff(a: ArrayLike<number>, b: ArrayLike<number>): { mean: number; max: number } {
  if (a.length !== b.length) throw new Error(`diff: lengths ${a.length} and ${b.length}`);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const sa = stats(a);
  const sb = stats(b);
  let cov = 0;
  for (let i = 0; i < a.length; i++) cov += (a[i] - sa.mean) * (b[i] - sb.mean);
  return cov / a.length / (sa.std * sb.std);
}
