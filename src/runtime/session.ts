/**
 * ONNX Runtime sessions: created once per model and reused for every batch. The only module that talks to
 * onnxruntime-node for inference; everything above works with HostTensors.
 */
import { availableParallelism } from 'node:os';
import ort from './ort.js';
import { type DType, type HostTensor, type Model, encodeModel, tensor } from '../onnx/index.js';

export interface SessionOptions {
  /** Threads for one operator (intra-op); default: all available cores. */
  threads?: number;
}

type OrtDType = 'float32' | 'int64' | 'bool' | 'uint8' | 'int8' | 'int32' | 'float64' | 'uint16' | 'int16' | 'float16';

export class OrtSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly threads: number,
  ) {}

  static async create(model: Model | Uint8Array, options: SessionOptions = {}): Promise<OrtSession> {
    const threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive whole number, got ${threads}`);
    const bytes = model instanceof Uint8Array ? model : encodeModel(model);
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
    return new OrtSession(session, threads);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs the graph; `fetches` limits which outputs are computed (all by default). */
  async run(feeds: Record<string, HostTensor>, fetches?: readonly string[]): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.dtype as OrtDType, t.data as never, [...t.dims]);
    const results = fetches ? await this.session.run(ortFeeds, [...fetches]) : await this.session.run(ortFeeds);
    const out: Record<string, HostTensor> = {};
    for (const [name, value] of Object.entries(results)) {
      out[name] = tensor(value.type as DType, value.dims.map(Number), value.data as never);
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
