/**
 * Running a model over images to get what the checks are fitted and measured on: the pooled `features` vector,
 * the logits, the safety outputs when the model has them, and the image statistics. Images come as sources that
 * load on demand (files, or files made invalid by `corrupted`), a batch at a time.
 */
import type { DecodedImage } from '../imaging/image.js';
import { preprocess } from '../imaging/preprocess.js';
import { decodeImageFile } from '../imaging/decode.js';
import { readModelInfo } from '../models/metadata.js';
import { METADATA_FEATURES, encodeMetadata } from '../models/patient-metadata.js';
import { type HostTensor, type Model, float32 } from '../onnx/index.js';
import { OrtSession } from '../runtime/session.js';
import { type Corruption, corrupt } from './corrupt.js';
import type { FeatureMatrix } from './detector.js';
import { type PictureScores, checkInput, pictureScores } from './check.js';
import type { InputFlag } from './flags.js';
import { type ImageStatistics, imageStatistics } from './image-checks.js';
import { rawThumbnail } from './orientation.js';

export interface ImageSource {
  /** Names the image in errors and reports. */
  id: string;
  load(): Promise<DecodedImage>;
}

export function fileSource(path: string): ImageSource {
  return { id: path, load: () => decodeImageFile(path) };
}

/** The source's image made invalid (rotated, inverted, ...); `seed` varies crops, blank levels and noise. */
export function corrupted(source: ImageSource, kind: Corruption, seed: number): ImageSource {
  return { id: `${source.id} [${kind}]`, load: async () => corrupt(await source.load(), kind, seed) };
}

export interface ImageOutputs {
  ids: string[];
  /** [images, channels] average-pooled `features`. */
  pooled: FeatureMatrix;
  /** [images, labels] raw logits. */
  logits: FeatureMatrix;
  /** [images] out-of-distribution scores, when the model has the safety subgraph. */
  ood?: Float32Array;
  /** [images, heads] head probabilities, when the model has the safety subgraph. */
  heads?: FeatureMatrix;
  statistics: ImageStatistics[];
  /** Each image's raw 32 x 32 thumbnail on [0, 1] (orientation.ts), what the layout and orientation checks read. */
  thumbnails: Float32Array[];
  /** Mean chroma of each file (0 for gray ones). */
  colourfulness: Float64Array;
  /** Layout and orientation scores, when the model stores those fits. */
  picture?: PictureScores[];
  /** The flags each image raised, when the model has the safety subgraph. */
  flags?: InputFlag[][];
}

export interface RunOptions {
  batchSize?: number;
  threads?: number;
  /** Called after each batch with images done and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** Runs the model once over every source (all outputs from one pass); a source that cannot be loaded throws, named. */
export async function runImages(model: Model, sources: readonly ImageSource[], options: RunOptions = {}): Promise<ImageOutputs> {
  const info = readModelInfo(model);
  const spec = info.preprocessing;
  const batchSize = options.batchSize ?? 16;
  const session = await OrtSession.create(model, { threads: options.threads });
  const safety = info.safety && model.graph.outputs.some((o) => o.name === info.safety?.outputs.ood) ? info.safety : undefined;
  const fetches = [info.io.logits, info.io.features, ...(safety ? [safety.outputs.ood, ...(safety.heads.length ? [safety.outputs.heads] : [])] : [])];
  const pooled: number[] = [];
  const logits: number[] = [];
  const ood: number[] = [];
  const heads: number[] = [];
  const statistics: ImageStatistics[] = [];
  const thumbnails: Float32Array[] = [];
  const colourfulness: number[] = [];
  const picture: PictureScores[] = [];
  const flags: InputFlag[][] = [];
  let channels = 0;
  try {
    for (let start = 0; start < sources.length; start += batchSize) {
      const chunk = sources.slice(start, start + batchSize);
      const images = await Promise.all(
        chunk.map((s) =>
          s.load().catch((error: Error) => {
            throw new Error(`${s.id}: ${error.message}`);
          }),
        ),
      );
      const plane = spec.channels * spec.height * spec.width;
      const batch = float32([images.length, spec.channels, spec.height, spec.width]);
      images.forEach((image, i) => batch.data.set(preprocess(image, spec).tensor.data, i * plane));
      const feeds: Record<string, HostTensor> = { [info.io.input]: batch };
      if (info.io.metadata) {
        const width = METADATA_FEATURES.length;
        const rows = float32([images.length, width]);
        images.forEach((image, i) => encodeMetadata({ age: image.metadata.patientAge, sex: image.metadata.patientSex, view: image.metadata.viewPosition }, rows.data, i * width));
        feeds[info.io.metadata] = rows;
      }
      const out = await session.run(feeds, fetches);
      const map = out[info.io.features];
      const [n, c, h, w] = map.dims;
      channels = c;
      const values = map.data as Float32Array;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < c; j++) {
          let sum = 0;
          const base = (i * c + j) * h * w;
          for (let p = 0; p < h * w; p++) sum += values[base + p];
          pooled.push(sum / (h * w));
        }
      }
      logits.push(...(out[info.io.logits].data as Float32Array));
      images.forEach((image, i) => {
        const stats = imageStatistics(image);
        statistics.push(stats);
        thumbnails.push(rawThumbnail(image));
        colourfulness.push(image.metadata.colourfulness ?? 0);
        if (!safety) return;
        const own = pictureScores(image, safety);
        picture.push(own);
        const h = safety.heads.length;
        const score = (out[safety.outputs.ood].data as Float32Array)[i];
        const probabilities = h ? (out[safety.outputs.heads].data as Float32Array).subarray(i * h, (i + 1) * h) : undefined;
        ood.push(score);
        if (probabilities) heads.push(...probabilities);
        flags.push(checkInput(image, { ood: score, heads: probabilities, picture: own }, safety, stats).flags);
      });
      options.onProgress?.(Math.min(start + batchSize, sources.length), sources.length);
    }
  } finally {
    await session.release();
  }
  const n = sources.length;
  return {
    ids: sources.map((s) => s.id),
    pooled: { rows: n, columns: channels, data: Float32Array.from(pooled) },
    logits: { rows: n, columns: info.labels.length, data: Float32Array.from(logits) },
    ...(safety ? { ood: Float32Array.from(ood), heads: { rows: n, columns: safety.heads.length, data: Float32Array.from(heads) }, flags, picture } : {}),
    statistics,
    thumbnails,
    colourfulness: Float64Array.from(colourfulness),
  };
}
