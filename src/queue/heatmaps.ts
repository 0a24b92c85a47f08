/**
 * Explanations as part of a batch job: overlay PNGs of the findings the model calls positive (every finding for a
 * model that makes no decisions), drawn with the explain library as `cxr explain` draws them, into the batch's
 * output folder, one sub-folder per image. The folder must be shared by the workers (a mount), like the images.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { Explainer, ExplanationMethod } from '../explain/index.js';
import { renderHeatmaps } from '../explain/index.js';
import type { DecodedImage } from '../imaging/index.js';
import type { Prediction } from '../inference/predictor.js';

export interface HeatmapRequest {
  method: ExplanationMethod;
  /** Absolute folder, as the workers see it. */
  out: string;
}

/** What was written for one image: its folder and an overlay file per explained finding. */
export interface StoredHeatmaps {
  method: ExplanationMethod;
  folder: string;
  files: Record<string, string>;
}

export function heatmapFindings(prediction: Prediction): string[] {
  const decided = prediction.findings.some((f) => f.decision !== null);
  return prediction.findings.filter((f) => !decided || f.decision === 'positive').map((f) => f.name);
}

/**
 * Writes the overlays for one image. The folder is named by the image's position in the batch and its file name
 * (unique within the batch, and readable next to the results); a retried job overwrites its own files.
 */
export async function writeHeatmaps(explainer: Explainer, image: DecodedImage, prediction: Prediction, request: HeatmapRequest, index: number, path: string): Promise<StoredHeatmaps> {
  const folder = join(request.out, `${index}-${basename(path, extname(path))}`);
  const findings = heatmapFindings(prediction);
  const stored: StoredHeatmaps = { method: request.method, folder, files: {} };
  if (findings.length === 0) return stored;
  const explanation = await explainer.explain(image, { findings, method: request.method });
  const overlays = await renderHeatmaps(image, explanation);
  await mkdir(folder, { recursive: true });
  await Promise.all(
    explanation.findings.map((f, i) => {
      const file = `${f.finding}.${request.method}.png`;
      stored.files[f.finding] = file;
      return writeFile(join(folder, file), overlays[i]);
    }),
  );
  return stored;
}
