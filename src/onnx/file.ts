/** .onnx files on disk, with external tensor data resolved next to the model. */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Model } from './ir.js';
import { decodeModel, encodeModel } from './proto.js';

export function readModelFile(path: string): Model {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(`${path}: cannot read the model file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const folder = dirname(resolve(path));
  return decodeModel(bytes, {
    name: path,
    readExternal: (location) => {
      // External data must stay beside the model: refuse paths that climb out of its folder.
      if (location.includes('..') || location.startsWith('/')) throw new Error(`${path}: refuses external data location "${location}"`);
      return readFileSync(resolve(folder, basename(location)));
    },
  });
}

export function writeModelFile(path: string, model: Model): void {
  writeFileSync(path, encodeModel(model));
}
