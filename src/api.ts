/**
 * The library's front door: everything the CLI, the server and other programs need, usable on its own.
 *
 *   import { createPredictor, predictFiles } from 'cxr-lens';
 *   const predictor = await createPredictor('model.onnx');
 *   const [result] = await predictFiles(predictor, ['chest.png']);
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Predictor, type PredictorOptions } from './inference/predictor.js';
import { type ModelInfo, readModelInfo } from './models/metadata.js';
import { type Model, readModelFile } from './onnx/index.js';

/** Where the embedded default model lives in the package. */
export const DEFAULT_MODEL_PATH = fileURLToPath(new URL('../../models/default.onnx', import.meta.url));

export interface LoadedModel {
  model: Model;
  info: ModelInfo;
  path: string;
}

/** The given model file, or the embedded default model; a clear error when neither exists. */
export function resolveModelPath(path?: string): string {
  if (path) return path;
  if (existsSync(DEFAULT_MODEL_PATH)) return DEFAULT_MODEL_PATH;
  throw new Error(
    'no model given, and this installation has no default model (models/default.onnx): ' +
      'pass a cxr-lens model file (--model), for example one made from PyTorch or ONNX weights with `cxr import`',
  );
}

/** Reads a cxr-lens model file and checks its description. */
export function loadModel(path?: string): LoadedModel {
  const resolved = resolveModelPath(path);
  const model = readModelFile(resolved);
  return { model, info: readModelInfo(model, resolved), path: resolved };
}

export async function createPredictor(path?: string, options: PredictorOptions = {}): Promise<Predictor> {
  const { model, path: resolved } = loadModel(path);
  return Predictor.create(model, { ...options, source: resolved });
}
