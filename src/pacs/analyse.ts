/**
 * Analysing retrieved instances exactly as `cxr predict` analyses files: the same decoder (DICOM aware, with its
 * budget), the same Predictor and input checks, in batches; then a heatmap for each positive finding of an accepted
 * image, by the same Explainer and overlay code as `cxr explain` and the viewer. An instance that cannot be decoded
 * gets an `undecodable` outcome with the decoder's reason instead of stopping the batch.
 */
import { basename } from 'node:path';
import type { LoadedModel } from '../api.js';
import { Explainer, type ExplanationMethod } from '../explain/index.js';
import { type DecodedImage, decodeImage } from '../imaging/index.js';
import { overlayModelMap } from '../imaging/overlay.js';
import { Predictor } from '../inference/predictor.js';
import { VERSION } from '../version.js';
import { type ModelIdentity, modelFileSha256, type Outcome } from './sr.js';

const DEFAULT_HEATMAP_SIDE = 1024;

export interface AnalyserOptions {
  threads?: number;
  /** Instances per ONNX Runtime run; default 16 (as cxr predict). */
  batchSize?: number;
  /** How the heatmaps of positive findings are made; 'none' writes none. Default 'gradcam'. */
  heatmaps?: ExplanationMethod | 'none';
  /** Longest side of a heatmap image in pixels; default 1024 (a viewer's screen, a tenth of the bytes of 4096). */
  heatmapSide?: number;
}

/** An RGB heatmap overlay of one finding. */
export interface Heatmap {
  finding: string;
  method: string;
  rgb: Uint8Array;
  width: number;
  height: number;
}

export type Decoded = { image: DecodedImage } | { error: string };

export interface Analysis {
  outcome: Outcome;
  heatmaps: Heatmap[];
}

/** The model as results name it: file name and architecture, the cxr-lens version, the file's SHA-256. */
export function modelIdentity(loaded: LoadedModel): ModelIdentity {
  return {
    name: `${basename(loaded.path)} (${loaded.info.architecture})`,
    version: `cxr-lens ${VERSION}`,
    sha256: modelFileSha256(loaded.path),
    weights: loaded.info.weights,
  };
}

export class Analyser {
  private constructor(
    readonly model: ModelIdentity,
    readonly predictor: Predictor,
    private readonly explainer: Explainer | undefined,
    private readonly method: ExplanationMethod | undefined,
    private readonly heatmapSide: number,
    /** Whether close() closes the predictor and explainer: not when they are borrowed from their owner. */
    private readonly owned: boolean,
  ) {}

  static async create(loaded: LoadedModel, options: AnalyserOptions = {}): Promise<Analyser> {
    const predictor = await Predictor.create(loaded.model, { batchSize: options.batchSize, threads: options.threads, source: loaded.path });
    const method = options.heatmaps === 'none' ? undefined : (options.heatmaps ?? 'gradcam');
    const explainer = method ? await Explainer.create(loaded.model, { threads: options.threads, source: loaded.path }) : undefined;
    if (explainer && method) await explainer.prepare([method]);
    return new Analyser(modelIdentity(loaded), predictor, explainer, method, options.heatmapSide ?? DEFAULT_HEATMAP_SIDE, true);
  }

  /**
   * An analyser over a predictor and explainer someone else holds (a queue worker's, loaded once for every job), so a
   * worker analyses an instance exactly as `cxr pacs` does; close() leaves them to their owner.
   */
  static borrowing(model: ModelIdentity, predictor: Predictor, heatmaps?: { explainer: Explainer; method: ExplanationMethod }): Analyser {
    return new Analyser(model, predictor, heatmaps?.explainer, heatmaps?.method, DEFAULT_HEATMAP_SIDE, false);
  }

  get batchSize(): number {
    return this.predictor.batchSize;
  }

  /** One Analysis per file, in order. `labels` name the files in decoder messages (never a patient's data). */
  async analyse(files: readonly { bytes: Uint8Array; label: string }[]): Promise<Analysis[]> {
    return this.analyseDecoded(await Promise.all(files.map((f) => this.decode(f.bytes, f.label))));
  }

  /** A file decoded as `cxr predict` decodes it, or why it cannot be (returned, not thrown). */
  async decode(bytes: Uint8Array, label: string): Promise<Decoded> {
    return decodeImage(bytes, label).then((image) => ({ image }), (error: Error) => ({ error: error.message }));
  }

  /** One Analysis per decoded file, in order: a caller may decode files as they arrive, then analyse them together. */
  async analyseDecoded(decoded: readonly Decoded[]): Promise<Analysis[]> {
    const images = decoded.filter((d): d is { image: DecodedImage } => 'image' in d).map((d) => d.image);
    const predictions = (await this.predictor.predict(images)).values();
    const results: Analysis[] = [];
    for (const d of decoded) {
      if ('error' in d) {
        results.push({ outcome: { kind: 'undecodable', reason: d.error }, heatmaps: [] });
        continue;
      }
      const prediction = predictions.next().value!;
      results.push({ outcome: { kind: 'prediction', prediction }, heatmaps: await this.heatmaps(d.image, prediction.findings.filter((f) => f.decision === 'positive').map((f) => f.name)) });
    }
    return results;
  }

  private async heatmaps(image: DecodedImage, positives: string[]): Promise<Heatmap[]> {
    if (!this.explainer || !this.method || positives.length === 0) return [];
    const explanation = await this.explainer.explain(image, { findings: positives, method: this.method });
    return explanation.findings.map(({ finding, map }) => ({
      finding,
      method: explanation.method,
      ...overlayModelMap(image, map.data, map.width, map.height, explanation.geometry, { maxSide: this.heatmapSide }),
    }));
  }

  async close(): Promise<void> {
    if (!this.owned) return;
    await this.predictor.close();
    await this.explainer?.close();
  }
}
