/**
 * Prediction: decoded images -> the model's preprocessing -> batched ONNX Runtime runs -> the input checks (image,
 * DICOM tags, the model's safety outputs) -> per-finding probabilities (sigmoid of each logit, calibrated where the
 * model says how: findings are independent, never a softmax across them). An input a check rejects gets no
 * findings, only the flags and their reasons, unless the caller asks to see them anyway.
 */
import { type DecodedImage, preprocess } from '../imaging/index.js';
import { readModelInfo, type ModelInfo } from '../models/metadata.js';
import { type HostTensor, type Model, float32 } from '../onnx/index.js';
import { OrtSession, type SessionOptions } from '../runtime/session.js';
import { checkInput } from '../safety/check.js';
import { type InputCheck, type InputFlag, type InputVerdict, verdictOf } from '../safety/flags.js';
import { assertSafetyOutputs } from '../safety/graph.js';
import { type Finding, findingsFromLogits } from '../outputs/findings.js';
import { fromImage, metadataBatch } from './metadata.js';

export type { Finding, InputCheck, InputFlag, InputVerdict };

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
  /** One entry per model label, in the model's label order; empty when the input was rejected (see `verdict`). */
  findings: Finding[];
  /** What the input checks raised, with reasons (empty when nothing was). */
  inputFlags: InputFlag[];
  /** Every thresholded check's score, raised or not. */
  inputChecks: InputCheck[];
  /** `rejected`: findings withheld; `rejected-shown`: findings given on request and not to be trusted. */
  verdict: InputVerdict;
}

export interface PredictOptions {
  /** Give findings even for inputs a check rejects (marked `rejected-shown`); default: the predictor's setting. */
  showRejected?: boolean;
}

export interface PredictorOptions extends SessionOptions {
  /** Images per ONNX Runtime run; default 16. */
  batchSize?: number;
  /** Names the model in messages and reports (usually its file). */
  source?: string;
  /** Give findings even for inputs a check rejects (marked); default false: only the flags and reasons. */
  showRejected?: boolean;
}

export class Predictor {
  private constructor(
    readonly info: ModelInfo,
    readonly source: string,
    private readonly session: OrtSession,
    readonly batchSize: number,
    readonly showRejected: boolean,
  ) {}

  static async create(model: Model, options: PredictorOptions = {}): Promise<Predictor> {
    const source = options.source ?? 'model';
    const info = readModelInfo(model, source);
    const batchSize = options.batchSize ?? 16;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be a positive whole number, got ${batchSize}`);
    assertSafetyOutputs(model, source);
    const session = await OrtSession.create(model, options);
    return new Predictor(info, source, session, batchSize, options.showRejected ?? false);
  }

  /** Predicts any number of images, running them through the network `batchSize` at a time. */
  async predict(images: readonly DecodedImage[], options: PredictOptions = {}): Promise<Prediction[]> {
    const showRejected = options.showRejected ?? this.showRejected;
    const results: Prediction[] = [];
    for (let start = 0; start < images.length; start += this.batchSize) {
      results.push(...(await this.predictBatch(images.slice(start, start + this.batchSize), showRejected)));
    }
    return results;
  }

  private async predictBatch(images: readonly DecodedImage[], showRejected: boolean): Promise<Prediction[]> {
    const { preprocessing: spec, io, labels, safety } = this.info;
    const plane = spec.channels * spec.height * spec.width;
    const batch = float32([images.length, spec.channels, spec.height, spec.width]);
    images.forEach((image, i) => batch.data.set(preprocess(image, spec).tensor.data, i * plane));
    const feeds: Record<string, HostTensor> = { [io.input]: batch };
    if (io.metadata) feeds[io.metadata] = metadataBatch(images.map((image) => fromImage(image.metadata)));
    const heads = safety?.heads.length ? [safety.outputs.heads] : [];
    const outputs = await this.session.run(feeds, [io.logits, ...(safety ? [safety.outputs.ood, ...heads] : [])]);
    const values = outputs[io.logits].data as Float32Array;
    const ood = safety ? (outputs[safety.outputs.ood].data as Float32Array) : undefined;
    const headValues = heads.length ? (outputs[heads[0]].data as Float32Array) : undefined;
    const h = safety?.heads.length ?? 0;
    return images.map((image, i) => {
      const { flags, checks } = checkInput(image, { ood: ood?.[i], heads: headValues?.subarray(i * h, (i + 1) * h) }, safety);
      const verdict = verdictOf(flags, showRejected);
      return {
        source: image.source,
        image: { width: image.width, height: image.height, format: image.format, notes: image.notes, metadata: image.metadata },
        findings: verdict === 'rejected' ? [] : findingsFromLogits(labels, values, this.info, i * labels.length),
        inputFlags: flags,
        inputChecks: checks,
        verdict,
      };
    });
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
