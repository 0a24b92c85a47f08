/**
 * The explanation front door in Node: one image in, a map per requested finding out, with ONNX Runtime sessions
 * for the model and its explain graphs. Sessions are created on first use and kept (building one costs far more
 * than running it): one per CAM layer, one input-gradient graph per model, and the model itself only for methods
 * that run it forward (occlusion), so a Grad-CAM server worker does not hold the model twice beside its Predictor.
 */
import { type DecodedImage, preprocess } from '../imaging/index.js';
import { fromImage, metadataBatch } from '../inference/metadata.js';
import { type ModelInfo, readModelInfo } from '../models/metadata.js';
import { activationLayout, fromNchw, nchwDims, toNchw } from '../models/layouts.js';
import { type HostTensor, type Model, float32, inferGraph } from '../onnx/index.js';
import { OrtSession, type SessionOptions } from '../runtime/session.js';
import { type ExplainOptions, type ExplanationMethod, type PreparedImage, explainWithRunner } from './core.js';
import { attributionMethod, isAttributionMethod } from './attribution-methods.js';
import { isCamMethod } from './cam-methods.js';
import {
  type BiasLayer,
  type CamGraph,
  type HeadGraph,
  type InputGradientGraph,
  attentionBlocks,
  biasLayers,
  blockOutputs,
  buildCamGraph,
  buildHeadGraph,
  buildInputGradientGraph,
  defaultLayer,
  resolveLayer,
  underlying,
} from './graphs.js';
import { guidedRectifierRules } from './guided-rules.js';
import { isInputGradientMethod } from './input-gradients.js';
import type { AttentionBlock, Explanation, GradientRunner, LayerGradients, Rectifiers } from './types.js';

export { EXPLANATION_METHODS, FORWARD_ONLY_METHODS, type ExplainOptions, type ExplanationMethod } from './core.js';

/** CAM graphs for other layers than the default, kept at most (each holds a session). */
const MAX_LAYER_SESSIONS = 4;

/** The input-gradient graph's kinds: by rectifier rule, with bias-layer gradients (FullGrad), with attention gradients. */
type GradientGraphKind = Rectifiers | 'bias' | 'attention';

/** An input-gradient graph and the extra tensors it differentiates. */
type ExtraGradientGraph = InputGradientGraph & { biasLayers: BiasLayer[]; attentionBlocks: AttentionBlock[] };

interface Compiled<G> {
  graph: G;
  session: OrtSession;
}

export class Explainer {
  private readonly camSessions = new Map<string, Promise<Compiled<CamGraph>>>();
  /**
   * The input-gradient graph per way of passing rectifiers, FullGrad's (gradients at every bias layer too) and the
   * attention methods' (every attention block's probabilities and gradients too).
   */
  private readonly inputGradientSessions = new Map<GradientGraphKind, Promise<Compiled<ExtraGradientGraph>>>();
  private modelSession?: Promise<Compiled<{ model: Model }>>;
  /** The network after a layer, per layer (Ablation-CAM); at most MAX_LAYER_SESSIONS. */
  private readonly headSessions = new Map<string, Promise<Compiled<HeadGraph>>>();
  readonly defaultLayer: string;
  private stride?: number;

  private constructor(
    readonly model: Model,
    readonly info: ModelInfo,
    private readonly options: SessionOptions,
  ) {
    this.defaultLayer = defaultLayer(model);
  }

  static async create(model: Model, options: SessionOptions & { source?: string } = {}): Promise<Explainer> {
    return new Explainer(model, readModelInfo(model, options.source), { threads: options.threads });
  }

  get labels(): readonly string[] {
    return this.info.labels;
  }

  /** Threads per operator of this explainer's sessions (undefined: all cores). */
  get threads(): number | undefined {
    return this.options.threads;
  }

  /** Layers worth naming for CAM methods: the default first, then where each block of the model ends. */
  layers(): string[] {
    const same = underlying(this.model, this.defaultLayer);
    return [this.defaultLayer, ...blockOutputs(this.model).reverse().filter((l) => l !== this.defaultLayer && l !== same)];
  }

  /** Builds the sessions the given methods need now, so the first explanation does not pay for them. */
  async prepare(methods: readonly ExplanationMethod[], layer?: string): Promise<void> {
    for (const method of methods) {
      if (isCamMethod(method)) await this.camGraph(resolveLayer(this.model, layer), this.labels.map((_, i) => i));
      else {
        if (isAttributionMethod(method)) {
          for (const graph of attributionMethod(method).graphs) {
            if (graph === 'cam') await this.camGraph(resolveLayer(this.model, layer), this.labels.map((_, i) => i));
            else if (graph === 'model') await this.forwardSession();
            else await this.inputGradientGraph(graph === 'input' ? 'plain' : graph);
          }
          continue;
        }
        // Input-gradient methods also take the plain logits, occlusion only those.
        if (isInputGradientMethod(method)) await this.inputGradientGraph('plain');
        await this.forwardSession();
      }
    }
  }

  /** The image in the model's units and its geometry. */
  prepareImage(image: DecodedImage): PreparedImage {
    const { tensor, geometry } = preprocess(image, this.info.preprocessing);
    return { tensor, geometry };
  }

  async explain(image: DecodedImage, options: ExplainOptions = {}): Promise<Explanation> {
    const explanation = await explainWithRunner(this.runner(image), this.prepareImage(image), this.info.preprocessing, options);
    return { ...explanation, featureStride: this.featureStride };
  }

  /** Model-input pixels per cell of the default layer (e.g. 224 / 7 = 32), from the model's inferred shapes. */
  get featureStride(): number {
    if (this.stride === undefined) {
      const shape = inferGraph(this.model.graph).get(this.defaultLayer)?.shape;
      const cells = shape?.[activationLayout(this.model, this.defaultLayer) === 'NHWC' ? 2 : 3];
      if (typeof cells !== 'number' || cells < 1) throw new Error(`the default layer ${this.defaultLayer} has no known width`);
      this.stride = this.info.preprocessing.width / cells;
    }
    return this.stride;
  }

  /**
   * Runs batches of one image's variants (occluded, noisy, interpolated copies) through the model and its
   * gradient graphs; a model with a metadata input gets that image's metadata on every row.
   */
  runner(image: Pick<DecodedImage, 'metadata'>): GradientRunner {
    const { io } = this.info;
    // The image batch under the input's name (or, for the head, under the layer's), plus the metadata rows.
    const feeds = (batch: HostTensor<'float32'>, input: string = io.input): Record<string, HostTensor> => {
      const out: Record<string, HostTensor> = { [input]: batch };
      if (io.metadata) out[io.metadata] = metadataBatch(Array(batch.dims[0]).fill(fromImage(image.metadata)));
      return out;
    };
    const allLabels = this.labels.map((_, i) => i);
    // Row r of the batch differentiated for labels[r], through the graph of that kind.
    const selectedGradients = async (kind: GradientGraphKind, batch: HostTensor<'float32'>, labels: readonly number[]) => {
      const rows = batch.dims[0];
      if (labels.length !== rows) throw new Error(`input gradients: ${labels.length} labels for ${rows} rows`);
      const { graph, session } = await this.inputGradientGraph(kind);
      const select = float32([rows, this.labels.length]);
      labels.forEach((label, r) => (select.data[r * this.labels.length + label] = 1));
      return { graph, out: await session.run({ ...feeds(batch), [graph.select]: select }) };
    };
    return {
      labels: this.labels,
      defaultLayer: this.defaultLayer,
      logits: async (batch) => (await (await this.forwardSession()).run(feeds(batch), [io.logits]))[io.logits].data as Float32Array,
      layerGradients: async (input, labels, requested): Promise<LayerGradients> => {
        if (input.dims[0] !== 1) throw new Error(`layer gradients are taken for one image at a time, got a batch of ${input.dims[0]}`);
        const layer = resolveLayer(this.model, requested);
        // The default layer's graph answers every finding (only the head is replicated, so all cost about one);
        // other layers replicate more of the network, so their graphs are made for the findings asked.
        const { graph, session } = await this.camGraph(layer, layer === this.defaultLayer ? allLabels : labels);
        const out = await session.run(feeds(input));
        const activation = out[graph.outputs.activation];
        const gradient = out[graph.outputs.gradient];
        // Methods read [channels, height, width]; a channels-last layer is transposed through its declared layout.
        const layout = activationLayout(this.model, layer);
        const [, channels, height, width] = nchwDims(activation.dims, layout);
        const size = channels * height * width;
        const gradients = toNchw(gradient.data as Float32Array, [gradient.data.length / size, ...activation.dims.slice(1)], layout);
        return {
          layer,
          logits: out[graph.outputs.logits].data as Float32Array,
          dims: [channels, height, width],
          activation: toNchw(activation.data as Float32Array, activation.dims, layout),
          gradients: labels.map((label) => {
            const k = graph.labels.indexOf(label);
            return gradients.subarray(k * size, (k + 1) * size);
          }),
        };
      },
      headLogits: async (nchw, layer) => {
        const activations = fromNchw(nchw, activationLayout(this.model, layer));
        const { graph, session } = await this.headGraph(layer);
        const inputs = new Set(graph.model.graph.inputs.map((i) => i.name));
        const out = await session.run(Object.fromEntries(Object.entries(feeds(activations, graph.input)).filter(([name]) => inputs.has(name))), [graph.logits]);
        return out[graph.logits].data as Float32Array;
      },
      inputGradients: async (batch, labels, rectifiers = 'plain') => {
        const { graph, out } = await selectedGradients(rectifiers, batch, labels);
        return { gradients: out[graph.gradient].data as Float32Array, logits: out[graph.selected].data as Float32Array };
      },
      biasGradients: async (batch, labels) => {
        const { graph, out } = await selectedGradients('bias', batch, labels);
        return {
          input: out[graph.gradient].data as Float32Array,
          logits: out[graph.selected].data as Float32Array,
          layers: graph.biasLayers.map(({ tensor, bias }) => {
            // [1, rows, ...] in the tensor's own layout; FullGrad reads channels first.
            const gradient = out[graph.tensorGradients[tensor]];
            const layout = activationLayout(this.model, tensor);
            const [, channels, height, width] = nchwDims(gradient.dims.slice(1), layout);
            return { tensor, bias, dims: [channels, height, width], gradients: toNchw(gradient.data as Float32Array, gradient.dims.slice(1), layout) };
          }),
        };
      },
      attentionGradients: async (batch, labels) => {
        const { graph, out } = await selectedGradients('attention', batch, labels);
        return {
          logits: out[graph.selected].data as Float32Array,
          blocks: graph.attentionBlocks.map((block) => {
            // The probabilities [rows, ...] are the same on every row (one image): the first row's.
            const attention = out[block.tensor].data as Float32Array;
            return { ...block, attention: attention.subarray(0, attention.length / batch.dims[0]), gradients: out[graph.tensorGradients[block.tensor]].data as Float32Array };
          }),
        };
      },
    };
  }

  private camGraph(layer: string, labels: readonly number[]): Promise<Compiled<CamGraph>> {
    const key = `${layer}\u0000${labels.join(',')}`;
    let compiled = this.camSessions.get(key);
    if (!compiled) {
      compiled = this.compile(() => buildCamGraph(this.model, layer, labels));
      this.camSessions.set(key, compiled);
      const others = [...this.camSessions.keys()].filter((k) => !k.startsWith(`${this.defaultLayer}\u0000`));
      if (others.length > MAX_LAYER_SESSIONS) {
        const oldest = others[0];
        void this.camSessions.get(oldest)?.then(({ session }) => session.release());
        this.camSessions.delete(oldest);
      }
    }
    return compiled;
  }

  /** Which sessions are open now: `model`, `input-gradients` (`guided-input-gradients`, `bias-gradients`, `attention-gradients`), and `cam:<layer>` per CAM graph. */
  openSessions(): string[] {
    const inputGradientNames = { plain: 'input-gradients', guided: 'guided-input-gradients', bias: 'bias-gradients', attention: 'attention-gradients' };
    return [
      ...(this.modelSession ? ['model'] : []),
      ...[...this.inputGradientSessions.keys()].map((kind) => inputGradientNames[kind]),
      ...[...this.camSessions.keys()].map((key) => `cam:${key.split('\u0000')[0]}`),
      ...[...this.headSessions.keys()].map((layer) => `head:${layer}`),
    ];
  }

  private async forwardSession(): Promise<OrtSession> {
    this.modelSession ??= this.compile(() => ({ model: this.model }));
    return (await this.modelSession).session;
  }

  private headGraph(layer: string): Promise<Compiled<HeadGraph>> {
    let compiled = this.headSessions.get(layer);
    if (!compiled) {
      compiled = this.compile(() => buildHeadGraph(this.model, layer));
      this.headSessions.set(layer, compiled);
      if (this.headSessions.size > MAX_LAYER_SESSIONS) {
        const [oldest] = this.headSessions.keys();
        void this.headSessions.get(oldest)?.then(({ session }) => session.release());
        this.headSessions.delete(oldest);
      }
    }
    return compiled;
  }

  private inputGradientGraph(kind: GradientGraphKind): Promise<Compiled<ExtraGradientGraph>> {
    let compiled = this.inputGradientSessions.get(kind);
    if (!compiled) {
      compiled = this.compile(() => {
        const layers = kind === 'bias' ? biasLayers(this.model) : [];
        const blocks = kind === 'attention' ? attentionBlocks(this.model) : [];
        if (kind === 'attention' && blocks.length === 0) {
          throw new Error('attention-rollout and chefer explain a transformer\'s attention, and this model has none (no Softmax named <block>.attn.softmax, as the zoo\'s swin_t has): use a CAM or gradient method for a CNN');
        }
        const tensors = [...layers.map((l) => l.tensor), ...blocks.map((b) => b.tensor)];
        const graph = buildInputGradientGraph(this.model, { tensors, rules: kind === 'guided' ? guidedRectifierRules() : undefined });
        return { ...graph, biasLayers: layers, attentionBlocks: blocks };
      });
      this.inputGradientSessions.set(kind, compiled);
    }
    return compiled;
  }

  private compile<G extends { model: Model }>(build: () => G): Promise<Compiled<G>> {
    const compiled = (async () => {
      const graph = build();
      return { graph, session: await OrtSession.create(graph.model, this.options) };
    })();
    // A failed build is not cached: the error reaches this caller, and the next call tries again.
    compiled.catch(() => {
      const failed: Promise<unknown> = compiled;
      for (const [key, value] of this.camSessions) if (value === failed) this.camSessions.delete(key);
      for (const [key, value] of this.headSessions) if (value === failed) this.headSessions.delete(key);
      for (const [kind, value] of this.inputGradientSessions) if (value === failed) this.inputGradientSessions.delete(kind);
      if (this.modelSession === failed) this.modelSession = undefined;
    });
    return compiled;
  }

  async close(): Promise<void> {
    const sessions = [...this.camSessions.values(), ...this.headSessions.values(), ...this.inputGradientSessions.values(), this.modelSession].filter((s) => s !== undefined);
    this.camSessions.clear();
    this.headSessions.clear();
    this.inputGradientSessions.clear();
    this.modelSession = undefined;
    for (const compiled of sessions) await compiled.then(({ session }) => session.release(), () => undefined);
  }
}
