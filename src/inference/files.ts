/**
 * Predicting files and folders: inputs are listed, decoded a batch at a time, and predicted; a file that cannot
 * be read gets its error in the results (named, nothing else lost) instead of stopping the run.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { type DecodedImage, decodeImageFile } from '../imaging/index.js';
import type { Prediction, Predictor } from './predictor.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.dcm', '.dicom'];

export interface FileResult {
  file: string;
  prediction?: Prediction;
  /** Why this file has no prediction. */
  error?: string;
}

export interface ListOptions {
  /** Descend into sub-folders of folder inputs. */
  recursive?: boolean;
}

/**
 * Expands folders into their image files (known extensions, and extension-less files, which DICOM often is),
 * keeps files as given, and throws naming any input that does not exist. Symbolic links in folders are followed:
 * to a file like a file, to a folder (with --recursive) like a folder, except one already being listed (a link
 * loop, or a second way into the same folder), which is skipped; a dangling link with an image name is listed,
 * so its error is reported with the results instead of the file silently missing.
 */
export function listImageFiles(inputs: readonly string[], options: ListOptions = {}): string[] {
  if (inputs.length === 0) throw new Error('no input images given');
  const files: string[] = [];
  for (const input of inputs) {
    let stats;
    try {
      stats = statSync(input);
    } catch {
      throw new Error(`${input}: no such file or folder`);
    }
    if (stats.isDirectory()) files.push(...imagesInFolder(input, options.recursive ?? false));
    else files.push(input);
  }
  return files;
}

function imagesInFolder(folder: string, recursive: boolean, visited = new Set<string>()): string[] {
  const real = realpathSync(folder);
  if (visited.has(real)) return [];
  visited.add(real);
  const found: string[] = [];
  for (const entry of readdirSync(folder, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    const path = join(folder, entry.name);
    let kind: 'file' | 'folder' | 'dangling' | 'other' = entry.isDirectory() ? 'folder' : entry.isFile() ? 'file' : 'other';
    if (entry.isSymbolicLink()) {
      try {
        const target = statSync(path);
        kind = target.isDirectory() ? 'folder' : target.isFile() ? 'file' : 'other';
      } catch {
        kind = 'dangling';
      }
    }
    if (kind === 'folder') {
      if (recursive) found.push(...imagesInFolder(path, true, visited));
    } else if (kind === 'file' || kind === 'dangling') {
      const ext = extname(entry.name).toLowerCase();
      if (ext === '' || IMAGE_EXTENSIONS.includes(ext)) found.push(path);
    }
  }
  return found;
}

export interface PredictFilesOptions {
  /** Called after each batch with the number of files done and the total. */
  onProgress?: (done: number, total: number) => void;
}

export async function predictFiles(predictor: Predictor, files: readonly string[], options: PredictFilesOptions = {}): Promise<FileResult[]> {
  const results: FileResult[] = [];
  for (let start = 0; start < files.length; start += predictor.batchSize) {
    const chunk = files.slice(start, start + predictor.batchSize);
    const decoded = await Promise.all(chunk.map((file) => decodeImageFile(file).then((image) => ({ file, image }), (error: Error) => ({ file, error: error.message }))));
    const images = decoded.filter((d): d is { file: string; image: DecodedImage } => 'image' in d);
    const predictions = (await predictor.predict(images.map((d) => d.image))).values();
    for (const d of decoded) results.push('error' in d ? { file: d.file, error: d.error } : { file: d.file, prediction: predictions.next().value });
    options.onProgress?.(results.length, files.length);
  }
  return results;
}
