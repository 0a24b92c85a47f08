/**
 * Prediction: decoded images -> the model's preprocessing -> batched ONNX Runtime runs -> per-finding
 * probabilities (sigmoid of each logit: findings are independent, never a softmax across them).
 */
import { type DecodedImage, preprocess } from '../imaging/index.js';
import { readModelInfo, type ModelInfo } from '../models/metadata.js';
import { type HostTensor, type Model, float32 } from '../onnx/index.js';
import { OrtSession, type SessionOptions } from '../runtime/session.js';
import { type Finding, findingsFromLogits } from './findings.js';
import { fromImage, metadataBatch } from './metadata.js';

export type { Finding };

export interface ImageSummary {
  width: number;
  height: number;
  format: string;
  /** What decoding did to the pixels (colour to gray, MONOCHROME1 inverted, ...). */
  notes: string[];
  /** View, age, sex and pixel spacing where the file has them. */
  metadata: DecodedImage['metadata'];
}

export interface Prediction {
  source: string;
  image: ImageSummary;
  /** One entry per model label, in the model's label order. */
  findings: Finding[];
}

export interface PredictorOptions extends SessionOptions {
  /** Images per ONNX Runtime run; default 16. */
  batchSize?: number;
  /** Names the model in messages and reports (usually its file). */
  source?: string;
}

export class Predictor {
  private constructor(
    readonly info: ModelInfo,
    readonly source: string,
    private readonly session: OrtSession,
    readonly batchSize: number,
  ) {}

  static async create(model: Model, options: PredictorOptions = {}): Promise<Predictor> {
    const source = options.source ?? 'model';
    const info = readModelInfo(model, source);
    const batchSize = options.batchSize ?? 16;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be a positive whole number, got ${batchSize}`);
    const session = await OrtSession.create(model, options);
    return new Predictor(info, source, session, batchSize);
  }

  /** Predicts any number of images, running them through the network `batchSize` at a time. */
  async predict(images: readonly DecodedImage[]): Promise<Prediction[]> {
    const results: Prediction[] = [];
    for (let start = 0; start < images.length; start += this.batchSize) {
      results.push(...(await this.predictBatch(images.slice(start, start + this.batchSize))));
    }
    return results;
  }

  private async predictBatch(images: readonly DecodedImage[]): Promise<Prediction[]> {
    const { preprocessing: spec, io, labels } = this.info;
    const plane = spec.channels * spec.height * spec.width;
    const batch = float32([images.length, spec.channels, spec.height, spec.width]);
    images.forEach((image, i) => batch.data.set(preprocess(image, spec).tensor.data, i * plane));
    const feeds: Record<string, HostTensor> = { [io.input]: batch };
    if (io.metadata) feeds[io.metadata] = metadataBatch(images.map((image) => fromImage(image.metadata)));
    const { [io.logits]: logits } = await this.session.run(feeds, [io.logits]);
    const values = logits.data as Float32Array;
    return images.map((image, i) => ({
      source: image.source,
      image: { width: image.width, height: image.height, format: image.format, notes: image.notes, metadata: image.metadata },
      findings: findingsFromLogits(labels, values, this.info.thresholds?.values, i * labels.length),
    }));
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
