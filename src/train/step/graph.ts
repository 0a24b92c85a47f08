/**
 * The training-step graph: one ONNX graph that runs the forward pass in training mode (batch statistics, dropout),
 * the loss, the backward pass, the optimizer update and the BatchNorm running-statistics update. Trainable
 * parameters, optimizer state and running statistics travel as a few flat float32 vectors, fed in and returned
 * updated on every step (ENGINE.md: faster than one input per tensor).
 *
 * Freezing follows the model's blocks (ModelInfo.blocks, stem first, head last): frozen blocks stay constants of
 * the graph and run in inference mode (their BatchNorms use and keep their running statistics), and no backward
 * work is done for what lies before the first trainable block.
 */
import { readModelInfo } from '../../models/metadata.js';
import { type ParameterSlot, assertParametersDeclared, isTrainable, parameterSlots, takesWeightDecay } from '../../models/parameters.js';
import {
  type Attribute,
  GraphBuilder,
  type HostTensor,
  type Model,
  type Node,
  type Value,
  attributeFloat,
  createModel,
  float32,
} from '../../onnx/index.js';
import { lowerTrainingNorms } from './batch-norm-lowering.js';
import { rewriteBatchSums } from './batch-sums.js';
import { blockConvolutions, withBlockedDomain } from './blocked-convolutions.js';
import { withPoolingIndices, pruneGraph } from '../../autodiff/forward.js';
import { addGradients } from '../../autodiff/gradients.js';
import { type LossSpec, type Reduction, addLoss, validateLoss } from './losses.js';
import { type OptimizerSpec, addOptimizerUpdate, optimizerStateNames, validateOptimizer } from './optimizers.js';

/** `head`: the last block only; `{ lastBlocks: n }`: the last n entries of ModelInfo.blocks (the head included). */
export type Trainable = 'all' | 'head' | { lastBlocks: number };

export interface TrainingGraphOptions {
  loss: LossSpec;
  optimizer: OptimizerSpec;
  trainable?: Trainable;
  reduction?: Reduction;
  /** Dropout active in training (default true); false keeps it as the identity (deterministic steps). */
  dropout?: boolean;
  /** Which parameters get weight decay: all (PyTorch's default) or only conv/linear weights (not norms or biases). */
  weightDecayOn?: 'all' | 'weights';
  /** Also output the flat gradient vector (for tests and diagnostics). */
  outputGradients?: boolean;
  /**
   * ONNX Runtime's blocked-layout block size on this machine (`probeBlockSize`): k x k convolutions then run in that
   * layout (see blocked-convolutions.ts). Unset: plain Convs, a graph any ONNX runtime can load.
   */
  blockSize?: number;
  /**
   * The batch size every step of this graph takes; unset: any. A known batch size lets gradient rules pick
   * per-sample formulations (the depthwise weight gradient, which then runs in the blocked layout).
   */
  batchSize?: number;
}

/** Where one tensor lives inside a flat vector. */
export interface FlatSlot {
  name: string;
  dims: number[];
  offset: number;
  size: number;
}

export const TRAINING_IO = {
  targets: 'targets',
  mask: 'mask',
  posWeight: 'pos_weight',
  learningRate: 'learning_rate',
  step: 'step',
  params: 'params',
  stats: 'bn_stats',
  loss: 'loss',
  gradients: 'gradients',
  next: (name: string) => `${name}.next`,
} as const;

export interface TrainingGraph {
  model: Model;
  /** The image input's name (the inference model's). */
  image: string;
  logits: string;
  params: FlatSlot[];
  /** BatchNorm running statistics updated by the step (running_mean, running_var per trainable BatchNorm). */
  stats: FlatSlot[];
  /** Flat optimizer state vectors, each as long as the parameter vector. */
  stateNames: string[];
  initialParams: Float32Array;
  initialStats: Float32Array;
  /** Whether the graph takes a per-class pos_weight input (BCE). */
  hasPosWeight: boolean;
  /** Inputs of uniform [0, 1) noise, one per active dropout, shaped like the values they drop (batch first). */
  dropoutNoise: string[];
}

export function trainablePrefixes(blocks: readonly string[], trainable: Trainable): string[] | 'all' {
  if (trainable === 'all') return 'all';
  const count = trainable === 'head' ? 1 : trainable.lastBlocks;
  if (!Number.isInteger(count) || count < 1 || count > blocks.length) {
    throw new Error(`trainable: lastBlocks must be a whole number from 1 to ${blocks.length} (the model's blocks), got ${count}`);
  }
  return blocks.slice(blocks.length - count).flatMap((b) => b.split('|'));
}

function matches(name: string, prefixes: string[] | 'all'): boolean {
  return prefixes === 'all' || prefixes.some((p) => name === p || name.startsWith(`${p}.`));
}

function trainingModel(b: GraphBuilder, blockSize: number | undefined, metadata: Record<string, string>): Model {
  // With every intermediate's shape declared, ONNX Runtime can fuse each affine gradient Conv with the Add after it.
  const lowered = rewriteBatchSums(lowerTrainingNorms(pruneGraph(b.build({ valueTypes: true }))));
  return withBlockedDomain(createModel(blockSize ? blockConvolutions(lowered, blockSize) : lowered, { ...metadata }));
}

export function buildTrainingGraph(model: Model, options: TrainingGraphOptions): TrainingGraph {
  validateLoss(options.loss);
  validateOptimizer(options.optimizer);
  const info = readModelInfo(model);
  const graph = model.graph;
  const prefixes = trainablePrefixes(info.blocks, options.trainable ?? 'all');
  assertParametersDeclared(model);
  const slots = parameterSlots(model);
  const trained = slots.filter((s) => isTrainable(s.role) && matches(s.name, prefixes));
  if (trained.length === 0) throw new Error(`no parameter matches the trainable blocks ${JSON.stringify(prefixes)}`);
  const trainedNames = new Set(trained.map((s) => s.name));
  // A BatchNorm trains (batch statistics, running update) exactly when its scale is trained.
  const trainingNorms = new Set(graph.nodes.filter((n) => n.opType === 'BatchNormalization' && trainedNames.has(n.inputs[1])).map((n) => n.name));
  const statSlots = slots.filter((s) => !isTrainable(s.role) && trainingNorms.has(s.node.name));

  const params = layout(trained, graph.initializers);
  const stats = layout(statSlots, graph.initializers);
  const b = new GraphBuilder(`${graph.name}.train`);
  const image = graph.inputs.find((i) => i.name === info.io.input);
  if (!image) throw new Error(`the model has no input named "${info.io.input}"`);
  const batch = options.batchSize ?? 'batch';
  if (options.batchSize !== undefined && !(Number.isInteger(options.batchSize) && options.batchSize > 0)) throw new Error(`batchSize must be a positive whole number, got ${options.batchSize}`);
  // Every input of the model (the image, and patient metadata where the model takes it) is an input here too.
  for (const input of graph.inputs) b.input(input.name, input.type.dtype, [batch, ...input.type.shape.slice(1)]);
  const labels = info.labels.length;
  const targets = b.input(TRAINING_IO.targets, 'float32', [batch, labels]);
  const mask = b.input(TRAINING_IO.mask, 'float32', [batch, labels]);
  const hasPosWeight = options.loss.kind === 'bce';
  const posWeight = hasPosWeight ? b.input(TRAINING_IO.posWeight, 'float32', [labels]) : undefined;
  const learningRate = b.input(TRAINING_IO.learningRate, 'float32', []);
  const step = b.input(TRAINING_IO.step, 'float32', []);
  const flatParams = b.input(TRAINING_IO.params, 'float32', [params.total]);
  const flatStats = stats.slots.length > 0 ? b.input(TRAINING_IO.stats, 'float32', [stats.total]) : undefined;
  const stateNames = optimizerStateNames(options.optimizer);
  const state = stateNames.map((n) => b.input(n, 'float32', [params.total]));

  // The model's own constants first, so that constants made here get other names.
  const fed = new Set([...params.slots, ...stats.slots].map((s) => s.name));
  for (const [name, t] of graph.initializers) if (!fed.has(name)) b.initializer(name, t);
  unflatten(b, flatParams, params.slots, 'params');
  if (flatStats) unflatten(b, flatStats, stats.slots, 'bn_stats');

  const dropoutOn = options.dropout ?? true;
  const batchStats: Value[] = [];
  const noise: string[] = [];
  for (const node of graph.nodes) {
    if (trainingNorms.has(node.name)) batchStats.push(...trainingNorm(b, node));
    else if (node.opType === 'Dropout' && dropoutOn && (matches(node.name, prefixes) || isTrainedRegion(node, graph, trainedNames))) noise.push(trainingDropout(b, node));
    else copyNode(b, withPoolingIndices(node));
  }

  const logits = b.value(info.io.logits);
  const { loss, detached } = addLoss(b, { logits, targets, mask, posWeight }, options.loss, options.reduction);
  const grads = addGradients(b, { seeds: new Map([[loss.name, b.scalar(1)]]), sources: params.slots.map((s) => s.name), detached });
  const flatGrads = b.op(
    'Concat',
    params.slots.map((s) => {
      const g = grads.get(s.name);
      if (!g) throw new Error(`parameter "${s.name}" does not affect the loss`);
      return b.op('Reshape', [g, b.ints([-1])], {}, { name: `${s.name}.grad.flat` });
    }),
    { axis: 0 },
    { name: 'gradients.flat' },
  );
  const decayMask = options.weightDecayOn === 'weights' ? weightDecayMask(b, trained, params.slots) : undefined;
  const names = { params: TRAINING_IO.next(TRAINING_IO.params), state: stateNames.map(TRAINING_IO.next) };
  const updated = addOptimizerUpdate(b, { params: flatParams, grads: flatGrads, state, learningRate, step, decayMask, names }, options.optimizer);

  b.output(loss, TRAINING_IO.loss);
  b.output(logits);
  b.output(updated.params);
  updated.state.forEach((v) => b.output(v));
  if (flatStats) b.output(runningStatsUpdate(b, graph, flatStats, batchStats, [...trainingNorms]), TRAINING_IO.next(TRAINING_IO.stats));
  if (options.outputGradients) b.output(flatGrads, TRAINING_IO.gradients);

  return {
    model: trainingModel(b, options.blockSize, model.metadata),
    image: image.name,
    logits: info.io.logits,
    params: params.slots,
    stats: stats.slots,
    stateNames,
    initialParams: params.initial,
    initialStats: stats.initial,
    hasPosWeight,
    dropoutNoise: noise,
  };
}

function layout(slots: ParameterSlot[], initializers: Map<string, HostTensor>): { slots: FlatSlot[]; total: number; initial: Float32Array } {
  let offset = 0;
  const out = slots.map((s) => {
    const t = initializers.get(s.name) as HostTensor;
    if (t.dtype !== 'float32') throw new Error(`parameter "${s.name}" is ${t.dtype}; training needs float32`);
    const slot = { name: s.name, dims: [...t.dims], offset, size: t.data.length };
    offset += slot.size;
    return slot;
  });
  const initial = new Float32Array(offset);
  for (const s of out) initial.set((initializers.get(s.name) as HostTensor).data as Float32Array, s.offset);
  return { slots: out, total: offset, initial };
}

/** Splits a flat vector back into the named tensors the forward nodes read. */
function unflatten(b: GraphBuilder, flat: Value, slots: FlatSlot[], what: string): void {
  const outputs = slots.map((s) => (s.dims.length === 1 ? s.name : `${s.name}.flat`));
  const parts = b.node('Split', [flat, b.ints(slots.map((s) => s.size))], { axis: 0 }, { name: `${what}.split`, outputs });
  slots.forEach((s, i) => {
    if (s.dims.length !== 1) b.op('Reshape', [parts[i], b.ints(s.dims)], {}, { name: `${s.name}.unflatten`, outputs: [s.name] });
  });
}

function copyNode(b: GraphBuilder, node: Node): void {
  b.node(node.opType, node.inputs.map((i) => (i ? b.value(i) : undefined)), node.attributes, { name: node.name, outputs: node.outputs, domain: node.domain });
}

/** BatchNormalization in training mode with momentum 0: its extra outputs are then the batch mean and variance. */
function trainingNorm(b: GraphBuilder, node: Node): Value[] {
  const attributes: Record<string, Attribute> = {
    ...node.attributes,
    momentum: { kind: 'float', value: 0 },
    training_mode: { kind: 'int', value: 1 },
  };
  const outputs = [node.outputs[0], `${node.name}.batch_mean`, `${node.name}.batch_var`];
  const [, mean, variance] = b.node('BatchNormalization', node.inputs.map((i) => b.value(i)), attributes, { name: node.name, outputs });
  return [mean, variance];
}

/**
 * Training-mode dropout as PyTorch's F.dropout: y = x * bernoulli(1 - p) / (1 - p). The uniform noise is an input
 * (`<node>.noise`) that the training session draws from (run seed, step, dropout): a resumed run, or a rerun with
 * the same seed, drops exactly the same units. Returns the noise input's name.
 */
function trainingDropout(b: GraphBuilder, node: Node): string {
  const ratioTensor = node.inputs[1] ? b.initializerValue(node.inputs[1]) : undefined;
  if (node.inputs[1] && !ratioTensor) throw new Error(`Dropout node "${node.name}": the ratio must be a constant to train`);
  const ratio = ratioTensor ? Number(ratioTensor.data[0]) : 0.5;
  const x = b.value(node.inputs[0]);
  const noise = b.input(`${node.name}.noise`, 'float32', x.type.shape);
  const keep = b.op('Less', [noise, b.scalar(1 - ratio)], {}, { name: `${node.name}.keep` });
  const scaled = b.op('Where', [keep, b.scalar(1 / (1 - ratio)), b.scalar(0)], {}, { name: `${node.name}.mask` });
  b.op('Mul', [x, scaled], {}, { name: node.name, outputs: [node.outputs[0]] });
  return noise.name;
}

/** Whether a node lies after a trained parameter (dropout there is active; a frozen backbone stays deterministic). */
function isTrainedRegion(node: Node, graph: { nodes: Node[] }, trained: Set<string>): boolean {
  const affected = new Set<string>(trained);
  for (const n of graph.nodes) {
    if (n === node) return n.inputs.some((i) => affected.has(i));
    if (n.inputs.some((i) => affected.has(i))) for (const o of n.outputs) affected.add(o);
  }
  return false;
}

/**
 * PyTorch's update: running = (1 - m) running + m batch, with the unbiased batch variance (n / (n - 1)), where
 * m = 1 - ONNX momentum (ONNX's momentum weighs the old value; torchvision's 0.1 is stored as 0.9).
 */
function runningStatsUpdate(b: GraphBuilder, graph: { nodes: Node[] }, flat: Value, batchStats: Value[], norms: string[]): Value {
  const parts: Value[] = [];
  const momentum: number[] = [];
  norms.forEach((name, i) => {
    const node = graph.nodes.find((n) => n.name === name) as Node;
    const x = b.value(node.inputs[0]);
    const channels = Number(x.type.shape[1]);
    const count = b.op('Div', [b.op('Cast', [b.op('Size', [x], {}, { name: `${name}.count` })], { to: 1 }), b.scalar(channels)]);
    const unbiased = b.op('Div', [count, b.op('Sub', [count, b.scalar(1)])]);
    parts.push(batchStats[2 * i], b.op('Mul', [batchStats[2 * i + 1], unbiased], {}, { name: `${name}.unbiased_var` }));
    const m = 1 - attributeFloat(node, 'momentum', 0.9);
    momentum.push(...Array(2 * channels).fill(m));
  });
  const batch = b.op('Concat', parts, { axis: 0 }, { name: 'bn_stats.batch' });
  const uniform = momentum.every((m) => m === momentum[0]);
  const m = uniform ? b.scalar(momentum[0]) : b.constant(float32([momentum.length], momentum), 'bn_stats.momentum');
  const keep = uniform ? b.scalar(1 - momentum[0]) : b.constant(float32([momentum.length], momentum.map((v) => 1 - v)), 'bn_stats.keep');
  return b.op('Add', [b.op('Mul', [flat, keep]), b.op('Mul', [batch, m])], {}, { name: 'bn_stats.update' });
}

function weightDecayMask(b: GraphBuilder, trained: ParameterSlot[], slots: FlatSlot[]): Value {
  const total = slots.reduce((a, s) => a + s.size, 0);
  const mask = new Float32Array(total);
  slots.forEach((s, i) => {
    if (takesWeightDecay(trained[i].role)) mask.fill(1, s.offset, s.offset + s.size);
  });
  return b.constant(float32([total], mask), 'weight_decay.mask');
}
