/**
 * The explanation front door: one image in, a map per requested finding out. Findings are explained through
 * their own logits (multi-label: never a softmax across findings).
 */
import { type DecodedImage, preprocess } from '../imaging/index.js';
import { type ModelInfo, readModelInfo } from '../models/metadata.js';
import { type HostTensor, type Model, float32 } from '../onnx/index.js';
import { sigmoid } from '../inference/findings.js';
import { fromImage, metadataBatch } from '../inference/metadata.js';
import { OrtSession, type SessionOptions } from '../runtime/session.js';
import { type OcclusionOptions, occlusionMaps } from './occlusion.js';
import type { Explanation, ModelRunner } from './types.js';

export const EXPLANATION_METHODS = ['occlusion'] as const;
export type ExplanationMethod = (typeof EXPLANATION_METHODS)[number];

export interface ExplainOptions {
  /** Finding names to explain; default all of the model's labels. */
  findings?: readonly string[];
  method?: ExplanationMethod;
  occlusion?: OcclusionOptions;
}

export class Explainer {
  private constructor(
    readonly info: ModelInfo,
    private readonly session: OrtSession,
  ) {}

  static async create(model: Model, options: SessionOptions & { source?: string } = {}): Promise<Explainer> {
    return new Explainer(readModelInfo(model, options.source), await OrtSession.create(model, options));
  }

  get labels(): readonly string[] {
    return this.info.labels;
  }

  /** Runs batches of one image's variants; a model with a metadata input gets that image's metadata on every row. */
  private runnerFor(image: DecodedImage): ModelRunner {
    const { io } = this.info;
    return {
      labels: this.labels,
      logits: async (batch: HostTensor<'float32'>) => {
        const feeds: Record<string, HostTensor> = { [io.input]: batch };
        if (io.metadata) feeds[io.metadata] = metadataBatch(Array(batch.dims[0]).fill(fromImage(image.metadata)));
        const { [io.logits]: logits } = await this.session.run(feeds, [io.logits]);
        return logits.data as Float32Array;
      },
    };
  }

  async explain(image: DecodedImage, options: ExplainOptions = {}): Promise<Explanation> {
    const method = options.method ?? 'occlusion';
    if (!(EXPLANATION_METHODS as readonly string[]).includes(method)) {
      throw new Error(`unknown explanation method "${method}"; choose one of ${EXPLANATION_METHODS.join(', ')}`);
    }
    const targets = (options.findings ?? this.labels).map((name) => {
      const index = this.labels.indexOf(name);
      if (index < 0) throw new Error(`the model has no finding "${name}"; it knows ${this.labels.join(', ')}`);
      return index;
    });
    const { tensor, geometry } = preprocess(image, this.info.preprocessing);
    const runner = this.runnerFor(image);
    const base = await runner.logits(float32([1, ...tensor.dims], tensor.data));
    const maps = await occlusionMaps(runner, tensor.data, tensor.dims, targets, base, options.occlusion);
    return {
      method,
      geometry,
      findings: targets.map((label, i) => ({ finding: this.labels[label], logit: base[label], probability: sigmoid(base[label]), map: maps[i] })),
    };
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
