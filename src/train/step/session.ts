/**
 * The training-step runner: owns the ONNX Runtime session of a training-step graph (graph.ts), the
 * flat parameter, optimizer-state and running-statistics vectors, the step counter and the learning rate. The
 * vectors stay ONNX Runtime tensors from one step to the next: each step's outputs are the next step's inputs.
 */
import { availableParallelism } from 'node:os';
import ort from '../../runtime/ort.js';
import { type FlatSlot, TRAINING_IO, type TrainingGraph, type TrainingGraphOptions, buildTrainingGraph } from './graph.js';
import { type HostTensor, type Model, encodeModel, float32, tensor } from '../../onnx/index.js';
import { readModelInfo } from '../../models/metadata.js';
import { probeBlockSize } from './blocked-layout.js';
import { mixSeed, seededRandom } from '../../random.js';

export interface TrainingSessionOptions extends TrainingGraphOptions {
  learningRate: number;
  /** Per-class positive weights for BCE (default 1 for every class). */
  posWeight?: readonly number[];
  /** Intra-op threads; default all cores. */
  threads?: number;
  /** Seeds the dropout masks, drawn per (seed, step, dropout): the same seed and step give the same masks. */
  seed?: number;
  /**
   * The batch size most steps take (the recipe's): the graph is built for it, which is faster. A step of another
   * size (an epoch's last batch) runs a graph built for that size when it comes. Unset: one graph for any size.
   */
  batchSize?: number;
}

export interface TrainingBatch {
  /** Preprocessed images [batch, channels, height, width]. */
  images: HostTensor;
  /** 0/1 (or soft) labels [batch, labels]. */
  targets: HostTensor;
  /** 1 where a label counts, 0 where it is ignored; default all 1. */
  mask?: HostTensor;
  /** The model's other inputs by name (its patient metadata), one row per image. */
  inputs?: Record<string, HostTensor>;
}

export interface StepResult {
  loss: number;
  logits: HostTensor;
  /** The flat gradient vector, when the session was built with outputGradients. */
  gradients?: Float32Array;
}

/** Everything a resumed run needs to continue exactly (a checkpoint). */
export interface TrainingState {
  step: number;
  learningRate: number;
  params: Float32Array;
  stats: Float32Array;
  optimizer: Record<string, Float32Array>;
  /** Names of the parameters in the flat vector, checked on load. */
  paramNames: string[];
}

/** ONNX Runtime settings for a training-step graph. */
export function trainingSessionOptions(threads: number): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // ORT's memory pattern plans one block for every intermediate of the step: measured on DenseNet-121
    // (batch 16, 128 px) it raised peak RSS from 1.4 GB to 2.4 GB for a 2-3% speed gain.
    enableMemPattern: false,
    logSeverityLevel: 3,
    // Intra-op threads that spin between ops collapse when anything else wants a core (another process, or the
    // trainer's own thread preparing the next batch): a step's ops are long enough that waking a sleeping thread
    // costs little, as with GNU OpenMP's PASSIVE policy for PyTorch.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/** A training-step graph and the ONNX Runtime session that runs it. */
interface StepRunner {
  graph: TrainingGraph;
  session: ort.InferenceSession;
}

async function createRunner(model: Model, options: TrainingGraphOptions, threads: number): Promise<StepRunner> {
  const graph = buildTrainingGraph(model, { ...options, blockSize: options.blockSize ?? (await probeBlockSize()) });
  return { graph, session: await ort.InferenceSession.create(encodeModel(graph.model), trainingSessionOptions(threads)) };
}

export class TrainingSession {
  private steps = 0;
  private vectors: Record<string, ort.Tensor>;
  private readonly posWeight?: ort.Tensor;
  /**
   * With options.batchSize, the runner of the last step of another batch size (an epoch's last, smaller batch):
   * built for that size when first needed, released when a step of the configured size comes again, so that two
   * sessions' working memory is not held at once.
   */
  private otherSize?: { batch: number; runner: Promise<StepRunner> };

  private constructor(
    private readonly runner: StepRunner,
    private readonly source: Model,
    private readonly options: TrainingSessionOptions & { threads: number },
    private lr: number,
    posWeight: readonly number[] | undefined,
    private readonly seed: number,
  ) {
    const graph = runner.graph;
    const zeros = () => new Float32Array(graph.initialParams.length);
    this.vectors = {
      [TRAINING_IO.params]: vector(graph.initialParams.slice()),
      ...Object.fromEntries(graph.stateNames.map((n) => [n, vector(zeros())])),
    };
    if (graph.stats.length > 0) this.vectors[TRAINING_IO.stats] = vector(graph.initialStats.slice());
    if (graph.hasPosWeight) {
      const labels = readModelInfo(source).labels.length;
      this.posWeight = new ort.Tensor('float32', Float32Array.from(posWeight ?? Array(labels).fill(1)), [labels]);
    }
  }

  static async create(model: Model, options: TrainingSessionOptions): Promise<TrainingSession> {
    checkLearningRate(options.learningRate);
    if (options.posWeight) {
      const labels = readModelInfo(model).labels.length;
      if (options.loss.kind !== 'bce') throw new Error('posWeight applies to the bce loss only');
      if (options.posWeight.length !== labels || !options.posWeight.every((w) => Number.isFinite(w) && w >= 0)) {
        throw new Error(`posWeight must be ${labels} non-negative numbers (one per label), got ${options.posWeight.length}`);
      }
    }
    const threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`threads must be a positive whole number, got ${threads}`);
    const runner = await createRunner(model, options, threads);
    return new TrainingSession(runner, model, { ...options, threads }, options.learningRate, options.posWeight, options.seed ?? 0);
  }

  /** The training-step graph (for the configured batch size, where one is set). */
  get graph(): TrainingGraph {
    return this.runner.graph;
  }

  /** Updates done so far. */
  get stepCount(): number {
    return this.steps;
  }

  get learningRate(): number {
    return this.lr;
  }

  setLearningRate(lr: number): void {
    checkLearningRate(lr);
    this.lr = lr;
  }

  async step(batch: TrainingBatch): Promise<StepResult> {
    const { graph, session } = await this.runnerFor(batch.images.dims[0]);
    const feeds = this.feeds(batch, graph);
    const results = await session.run(feeds);
    this.steps += 1;
    for (const name of Object.keys(this.vectors)) this.vectors[name] = results[TRAINING_IO.next(name)];
    const loss = (results[TRAINING_IO.loss].data as Float32Array)[0];
    const logits = results[this.graph.logits];
    const gradients = results[TRAINING_IO.gradients]?.data as Float32Array | undefined;
    return { loss, logits: tensor('float32', logits.dims.map(Number), logits.data as Float32Array), gradients };
  }

  /** The inference model with the current weights and running statistics. */
  exportModel(): Model {
    const model = structuredClone(this.source);
    const write = (slots: FlatSlot[], data: Float32Array) => {
      for (const s of slots) model.graph.initializers.set(s.name, float32(s.dims, data.subarray(s.offset, s.offset + s.size)));
    };
    write(this.graph.params, this.data(TRAINING_IO.params));
    if (this.graph.stats.length > 0) write(this.graph.stats, this.data(TRAINING_IO.stats));
    return model;
  }

  state(): TrainingState {
    return {
      step: this.steps,
      learningRate: this.lr,
      params: this.data(TRAINING_IO.params).slice(),
      stats: this.graph.stats.length > 0 ? this.data(TRAINING_IO.stats).slice() : new Float32Array(0),
      optimizer: Object.fromEntries(this.graph.stateNames.map((n) => [n, this.data(n).slice()])),
      paramNames: this.graph.params.map((p) => p.name),
    };
  }

  loadState(state: TrainingState): void {
    const names = this.graph.params.map((p) => p.name);
    if (state.paramNames.length !== names.length || state.paramNames.some((n, i) => n !== names[i])) {
      throw new Error('training state: its parameters do not match this session (another model or other trainable blocks)');
    }
    const check = (what: string, data: Float32Array | undefined, length: number) => {
      if (!data || data.length !== length) throw new Error(`training state: ${what} has ${data?.length ?? 'no'} values, expected ${length}`);
    };
    check('params', state.params, this.graph.initialParams.length);
    check('stats', state.stats, this.graph.initialStats.length);
    for (const n of this.graph.stateNames) check(`optimizer "${n}"`, state.optimizer[n], this.graph.initialParams.length);
    if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`training state: step must be a whole number >= 0, got ${state.step}`);
    checkLearningRate(state.learningRate);
    this.vectors[TRAINING_IO.params] = vector(state.params.slice());
    if (this.graph.stats.length > 0) this.vectors[TRAINING_IO.stats] = vector(state.stats.slice());
    for (const n of this.graph.stateNames) this.vectors[n] = vector(state.optimizer[n].slice());
    this.steps = state.step;
    this.lr = state.learningRate;
  }

  async release(): Promise<void> {
    await this.releaseOtherSize();
    await this.runner.session.release();
  }

  /** The runner for a batch of this size: the configured one, or one built for this size. */
  private async runnerFor(batch: number): Promise<StepRunner> {
    const configured = this.options.batchSize;
    // Sizes the feeds check will refuse go to the configured runner too.
    if (configured === undefined || batch === configured || !(Number.isInteger(batch) && batch > 0)) {
      await this.releaseOtherSize();
      return this.runner;
    }
    let other = this.otherSize;
    if (other?.batch !== batch) {
      await this.releaseOtherSize();
      other = { batch, runner: createRunner(this.source, { ...this.options, batchSize: batch }, this.options.threads) };
      this.otherSize = other;
    }
    return other.runner;
  }

  private async releaseOtherSize(): Promise<void> {
    const other = this.otherSize;
    this.otherSize = undefined;
    // A build that failed has nothing to release; its step already reported the error.
    const runner = await other?.runner.catch(() => undefined);
    await runner?.session.release();
  }

  private data(name: string): Float32Array {
    return this.vectors[name].data as Float32Array;
  }

  private feeds(batch: TrainingBatch, graph: TrainingGraph): Record<string, ort.Tensor> {
    const input = graph.model.graph.inputs.find((i) => i.name === graph.image);
    const expected = input?.type.shape ?? [];
    const { images, targets } = batch;
    const dimsOk = images.dims.length === expected.length && expected.every((d, i) => typeof d !== 'number' || d === images.dims[i]);
    if (images.dtype !== 'float32' || !dimsOk) {
      throw new Error(`batch images: expected float32 [${expected.join(', ')}], got ${images.dtype} [${images.dims.join(', ')}]`);
    }
    const n = images.dims[0];
    if (n < 1) throw new Error('batch images: the batch is empty');
    const labels = readModelInfo(this.source).labels.length;
    const checkLabels = (what: string, t: HostTensor) => {
      if (t.dtype !== 'float32' || t.dims.length !== 2 || t.dims[0] !== n || t.dims[1] !== labels) {
        throw new Error(`batch ${what}: expected float32 [${n}, ${labels}], got ${t.dtype} [${t.dims.join(', ')}]`);
      }
    };
    checkLabels('targets', targets);
    const mask = batch.mask ?? float32([n, labels], new Float32Array(n * labels).fill(1));
    checkLabels('mask', mask);
    const feeds: Record<string, ort.Tensor> = {
      ...this.vectors,
      [graph.image]: new ort.Tensor('float32', images.data as Float32Array, [...images.dims]),
      [TRAINING_IO.targets]: new ort.Tensor('float32', targets.data as Float32Array, [n, labels]),
      [TRAINING_IO.mask]: new ort.Tensor('float32', mask.data as Float32Array, [n, labels]),
      [TRAINING_IO.learningRate]: new ort.Tensor('float32', Float32Array.of(this.lr), []),
      [TRAINING_IO.step]: new ort.Tensor('float32', Float32Array.of(this.steps + 1), []),
    };
    if (this.posWeight) feeds[TRAINING_IO.posWeight] = this.posWeight;
    graph.dropoutNoise.forEach((name, k) => {
      const shape = graph.model.graph.inputs.find((i) => i.name === name)?.type.shape ?? [];
      const dims = [n, ...shape.slice(1).map(Number)];
      const random = seededRandom(mixSeed(this.seed, this.steps, k));
      feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, d) => a * d, 1) }, random), dims);
    });
    for (const input of this.source.graph.inputs) {
      if (input.name === graph.image) continue;
      const t = batch.inputs?.[input.name];
      if (!t) throw new Error(`batch: the model also needs its "${input.name}" input`);
      if (t.dims[0] !== n) throw new Error(`batch ${input.name}: ${t.dims[0]} rows for ${n} images`);
      feeds[input.name] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, [...t.dims]);
    }
    return feeds;
  }
}

function vector(data: Float32Array): ort.Tensor {
  return new ort.Tensor('float32', data, [data.length]);
}

function checkLearningRate(lr: number): void {
  if (!Number.isFinite(lr) || lr < 0) throw new Error(`learning rate must be a finite number >= 0, got ${lr}`);
}
