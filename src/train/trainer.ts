/**
 * The training loop: data -> patient split -> cache -> (pretrained) model -> epochs of training steps, each
 * ending with validation, a checkpoint and early stopping -> the best model, scored once on held-out patients.
 * Nothing here prints: progress goes to `onEvent`, and every step and epoch to the run's log.jsonl.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClassBalancedSampler, type Dataset, ImageCache, positiveWeights } from '../data/index.js';
import { seededRandom, shuffleInPlace } from '../random.js';
import { imagenetPreprocessing } from '../imaging/index.js';
import { importWeights } from '../models/import/index.js';
import { readModelInfo } from '../models/metadata.js';
import { buildModel } from '../models/zoo/index.js';
import { torchvisionInit } from '../models/init.js';
import { type HostTensor, type Model, readModelFile, writeModelFile } from '../onnx/index.js';
import type { Trainable } from './step/graph.js';
import { TrainingSession } from './step/session.js';
import { batches } from './batches.js';
import { unfoldBatchNorms } from './batchnorm.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { lockRunFolder } from './lock.js';
import type { TrainConfig } from './config.js';
import { type SplitData, readDatasets, splitData } from './data.js';
import { LearningRateSchedule, type ScheduleState } from './schedule.js';
import { aurocs, scoreSplit } from './validation.js';

export type TrainEvent =
  | { type: 'info'; message: string }
  | { type: 'cache'; done: number; total: number }
  | { type: 'epoch'; epoch: number; epochs: number; phase: string; steps: number }
  | { type: 'step'; epoch: number; step: number; steps: number; loss: number; lr: number; imagesPerSecond: number }
  | { type: 'validation'; epoch: number; meanAuroc: number; perClass: (number | null)[]; best: boolean }
  | { type: 'checkpoint'; path: string; reason: 'epoch' | 'interrupt' | 'periodic' };

export interface TrainOptions {
  config: TrainConfig;
  /** The run's folder: config, split, log, checkpoint, models. */
  outDir: string;
  /** Continue from the run's checkpoint. */
  resume?: boolean;
  /** Aborting stops after the current step, with a checkpoint to resume from. */
  signal?: AbortSignal;
  /**
   * Checkpoints within an epoch as well, so that a crash (or kill -9) loses at most this much work: after every
   * `steps` steps and/or once `seconds` have passed since the last checkpoint. Default: every 300 seconds.
   * Resuming from any checkpoint reproduces the uninterrupted run (order, augmentation and dropout are drawn
   * from the seed, epoch and position).
   */
  checkpointEvery?: { steps?: number; seconds?: number };
  onEvent?: (event: TrainEvent) => void;
}

/** Thrown when the signal aborts training before its first step: there is nothing new to checkpoint. */
export class TrainingInterruptedError extends Error {
  constructor(resume: boolean) {
    super(`interrupted before the first training step; ${resume ? 'the checkpoint is unchanged' : 'nothing was saved to resume'}`);
    this.name = 'TrainingInterruptedError';
  }
}

export interface EpochRecord {
  epoch: number;
  phase: string;
  loss: number;
  validationMeanAuroc: number;
  validationAuroc: (number | null)[];
  lr: number;
  seconds: number;
}

export interface TrainOutcome {
  status: 'completed' | 'early-stopped' | 'interrupted';
  /** The best model so far (by validation mean AUROC). */
  bestModelPath: string;
  /** -1 when interrupted before the first epoch ended (no model yet). */
  bestEpoch: number;
  history: EpochRecord[];
  data: SplitData;
  /** What was done to the starting weights (import notes, BatchNorm statistics). */
  start: { weights: string; notes: string[] };
}

/** Where a run is: saved in every checkpoint. */
interface Progress {
  epoch: number;
  /** Batches of `epoch` already done. */
  batch: number;
  globalStep: number;
  bestMetric: number;
  bestEpoch: number;
  epochsWithoutImprovement: number;
  lossSum: number;
  lossCount: number;
  schedule: ScheduleState;
  history: EpochRecord[];
  start: TrainOutcome['start'];
  /** Set in the last checkpoint of a run whose training is over: resuming it only finishes (model, card). */
  done?: 'completed' | 'early-stopped';
}

export const RUN_FILES = {
  config: 'config.json',
  split: 'split.json',
  log: 'log.jsonl',
  checkpoint: 'checkpoint.ckpt',
  phaseStart: 'phase-start.onnx',
  best: 'best.onnx',
} as const;

export async function train(options: TrainOptions): Promise<TrainOutcome> {
  const { outDir } = options;
  const emit = options.onEvent ?? (() => {});
  mkdirSync(outDir, { recursive: true });
  // One process per run folder: a second trainer (a --resume while this one runs) is refused, naming this pid.
  const lock = lockRunFolder(outDir, (message) => emit({ type: 'info', message }));
  try {
    return await trainLocked(options, emit);
  } finally {
    lock.release();
  }
}

async function trainLocked(options: TrainOptions, emit: (event: TrainEvent) => void): Promise<TrainOutcome> {
  const { config, outDir } = options;
  const path = (name: keyof typeof RUN_FILES) => join(outDir, RUN_FILES[name]);
  const log = (entry: Record<string, unknown>) => appendFileSync(path('log'), `${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
  const stopIfAborted = () => {
    if (options.signal?.aborted) throw new TrainingInterruptedError(options.resume === true);
  };

  const resumed = options.resume ? loadResume(path('checkpoint'), path('config'), config) : undefined;
  if (!options.resume && existsSync(path('checkpoint'))) {
    throw new Error(`${outDir} already holds a training run; continue it with --resume, or choose another output folder`);
  }
  writeFileSync(path('config'), `${JSON.stringify(config, null, 2)}\n`);

  emit({ type: 'info', message: 'reading the datasets' });
  const data = await splitData(await readDatasets(config), config);
  writeFileSync(path('split'), `${JSON.stringify(splitIds(data))}\n`);
  emit({ type: 'info', message: `${data.train.records.length} training, ${data.validation.records.length} validation, ${data.test.records.length} test images` });
  stopIfAborted();

  const spec = imagenetPreprocessing(config.model.size, config.model.size, config.model.channels);
  spec.resize = config.model.resize;
  const all = [...data.train.records, ...data.validation.records, ...data.test.records];
  const cache = await ImageCache.open(all, {
    folder: config.cacheDir,
    spec,
    onProgress: (p) => emit({ type: 'cache', done: p.done, total: p.total }),
  });
  try {
    stopIfAborted();
    let progress: Progress;
    let phaseModel: Model;
    if (resumed) {
      progress = resumed.progress;
      phaseModel = readModelFile(path('phaseStart'));
      emit({ type: 'info', message: `resuming at epoch ${progress.epoch + 1}, batch ${progress.batch}` });
      // Steps logged after this checkpoint (a crash) are done again: readers keep the last line of each step.
      log({ event: 'resumed', epoch: progress.epoch, step: progress.batch, globalStep: progress.globalStep });
    } else {
      const start = await startingModel(config, data, cache, emit);
      stopIfAborted();
      phaseModel = start.model;
      writeModelFile(path('phaseStart'), phaseModel);
      progress = {
        epoch: 0,
        batch: 0,
        globalStep: 0,
        bestMetric: -Infinity,
        bestEpoch: -1,
        epochsWithoutImprovement: 0,
        lossSum: 0,
        lossCount: 0,
        schedule: { lr: config.optimizer.lr, best: -Infinity, badEpochs: 0 },
        history: [],
        start: { weights: readModelInfo(start.model).weights, notes: start.notes },
      };
    }
    const stepsPerEpoch = Math.ceil(data.train.records.length / config.batchSize);
    const schedule = new LearningRateSchedule(config.schedule, config.optimizer.lr, stepsPerEpoch * config.epochs, stepsPerEpoch);
    schedule.load(progress.schedule);
    const posWeight = config.loss.kind === 'bce' && config.loss.posWeight === 'auto' ? [...positiveWeights(data.train, { ifNoPositives: 'unweighted' })] : undefined;
    const sampler = config.sampler === 'balanced' ? new ClassBalancedSampler(data.train, { seed: config.seed }) : undefined;

    const createSession = (model: Model, phase: Phase) =>
      TrainingSession.create(model, {
        loss: config.loss,
        optimizer: config.optimizer,
        weightDecayOn: config.optimizer.weightDecayOn,
        trainable: phase.trainable,
        learningRate: schedule.at(progress.globalStep),
        posWeight,
        threads: config.threads,
        seed: config.seed,
        batchSize: config.batchSize,
      });
    let session: TrainingSession | undefined;
    let sessionPhase = '';
    if (resumed && !progress.done) {
      session = await createSession(phaseModel, resumed.phase);
      session.loadState(resumed.state);
      sessionPhase = resumed.phase.name;
    }
    let status: TrainOutcome['status'] = progress.done ?? 'completed';
    if (progress.done) emit({ type: 'info', message: 'training had finished; the best model is in the run folder' });
    const every = options.checkpointEvery ?? { seconds: 300 };
    let lastCheckpoint = { step: progress.globalStep, time: performance.now() };
    const periodicDue = () =>
      (every.steps !== undefined && progress.globalStep - lastCheckpoint.step >= every.steps) ||
      (every.seconds !== undefined && performance.now() - lastCheckpoint.time >= every.seconds * 1000);
    try {
      for (; !progress.done && progress.epoch < config.epochs; progress.epoch++) {
        const phase = phaseOf(config, progress.epoch);
        if (phase.name !== sessionPhase) {
          if (session) {
            // A new phase trains other parameters: it starts from the current weights with fresh optimizer state.
            phaseModel = session.exportModel();
            writeModelFile(path('phaseStart'), phaseModel);
            await session.release();
          }
          session = await createSession(phaseModel, phase);
          sessionPhase = phase.name;
        }
        const active = session as TrainingSession;
        const order = sampler ? sampler.epoch(progress.epoch) : epochOrder(data.train.records.length, config.seed, progress.epoch);
        emit({ type: 'epoch', epoch: progress.epoch, epochs: config.epochs, phase: phase.name, steps: stepsPerEpoch });
        const started = performance.now();
        for await (const batch of batches(cache, data.train, order, {
          spec,
          batchSize: config.batchSize,
          withMetadata: config.model.metadata,
          augmentation: config.augmentation === 'none' ? undefined : { spec: config.augmentation, seed: config.seed, epoch: progress.epoch },
          startBatch: progress.batch,
        })) {
          const lr = schedule.at(progress.globalStep);
          active.setLearningRate(lr);
          const stepStart = performance.now();
          const { loss } = await active.step({ images: batch.images, targets: batch.targets, mask: batch.mask, inputs: batch.metadata ? { metadata: batch.metadata } : undefined });
          if (!Number.isFinite(loss)) throw new Error(`the loss became ${loss} at epoch ${progress.epoch + 1}, step ${progress.batch + 1}; lower the learning rate`);
          progress.batch += 1;
          progress.globalStep += 1;
          progress.lossSum += loss;
          progress.lossCount += 1;
          const imagesPerSecond = batch.records.length / ((performance.now() - stepStart) / 1000);
          log({ event: 'step', epoch: progress.epoch, step: progress.batch, globalStep: progress.globalStep, loss, lr });
          emit({ type: 'step', epoch: progress.epoch, step: progress.batch, steps: stepsPerEpoch, loss, lr, imagesPerSecond });
          if (options.signal?.aborted) break;
          if (progress.batch < stepsPerEpoch && periodicDue()) {
            saveCheckpoint(path('checkpoint'), config, progress, schedule, active, phase);
            lastCheckpoint = { step: progress.globalStep, time: performance.now() };
            log({ event: 'checkpoint', epoch: progress.epoch, step: progress.batch, globalStep: progress.globalStep });
            emit({ type: 'checkpoint', path: path('checkpoint'), reason: 'periodic' });
          }
        }
        if (options.signal?.aborted && progress.batch < stepsPerEpoch) {
          saveCheckpoint(path('checkpoint'), config, progress, schedule, active, phase);
          log({ event: 'interrupted', epoch: progress.epoch, step: progress.batch });
          emit({ type: 'checkpoint', path: path('checkpoint'), reason: 'interrupt' });
          status = 'interrupted';
          break;
        }
        const current = active.exportModel();
        const scores = aurocs(await scoreSplit(current, cache, data.validation, { batchSize: config.batchSize, threads: config.threads }), data.validation);
        const improved = scores.mean > progress.bestMetric;
        if (improved) {
          progress.bestMetric = scores.mean;
          progress.bestEpoch = progress.epoch;
          progress.epochsWithoutImprovement = 0;
          writeModelFile(path('best'), current);
        } else progress.epochsWithoutImprovement += 1;
        schedule.epochEnd(scores.mean);
        const record: EpochRecord = {
          epoch: progress.epoch,
          phase: phase.name,
          loss: progress.lossSum / Math.max(1, progress.lossCount),
          validationMeanAuroc: scores.mean,
          validationAuroc: scores.perClass,
          lr: active.learningRate,
          seconds: (performance.now() - started) / 1000,
        };
        progress.history.push(record);
        log({ event: 'epoch', ...record, best: improved });
        emit({ type: 'validation', epoch: progress.epoch, meanAuroc: scores.mean, perClass: scores.perClass, best: improved });
        progress.batch = 0;
        progress.lossSum = 0;
        progress.lossCount = 0;
        const patience = config.earlyStopping.patience;
        // Patience running out on the last epoch is a completed run, not an early stop.
        const stop = patience > 0 && progress.epochsWithoutImprovement >= patience && progress.epoch + 1 < config.epochs;
        const done = stop ? 'early-stopped' : progress.epoch + 1 >= config.epochs ? 'completed' : undefined;
        saveCheckpoint(path('checkpoint'), config, { ...progress, epoch: progress.epoch + 1, done }, schedule, active, phase);
        lastCheckpoint = { step: progress.globalStep, time: performance.now() };
        emit({ type: 'checkpoint', path: path('checkpoint'), reason: 'epoch' });
        if (stop) {
          status = 'early-stopped';
          log({ event: 'early-stopping', epoch: progress.epoch, patience });
          break;
        }
        if (options.signal?.aborted) {
          status = 'interrupted';
          break;
        }
      }
    } finally {
      await session?.release();
    }
    // Interrupted in the first epoch: no model yet, but a checkpoint to resume from (bestEpoch stays -1).
    if (progress.bestEpoch < 0 && status !== 'interrupted') throw new Error('training stopped before the first validation; resume it to get a model');
    return { status, bestModelPath: path('best'), bestEpoch: progress.bestEpoch, history: progress.history, data, start: progress.start };
  } finally {
    await cache.close();
  }
}

interface Phase {
  name: string;
  trainable: Trainable;
}

/** `head` for the first `freeze.headEpochs` epochs, then what `freeze.then` says. */
function phaseOf(config: TrainConfig, epoch: number): Phase {
  if (epoch < config.freeze.headEpochs) return { name: 'head', trainable: 'head' };
  const then = config.freeze.then;
  return then === 'all' ? { name: 'all', trainable: 'all' } : { name: `last ${then} blocks`, trainable: { lastBlocks: then } };
}

/** A seeded permutation per epoch: the same seed and epoch give the same order, so a resumed epoch continues it. */
function epochOrder(count: number, seed: number, epoch: number): Uint32Array {
  const order = Array.from({ length: count }, (_, i) => i);
  return Uint32Array.from(shuffleInPlace(order, seededRandom(((seed >>> 0) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0)));
}

async function startingModel(config: TrainConfig, data: SplitData, cache: ImageCache, emit: (e: TrainEvent) => void): Promise<{ model: Model; notes: string[] }> {
  const { model: m, labels } = { model: config.model, labels: data.labelSet.labels };
  const common = { labels, channels: m.channels, height: m.size, width: m.size, preprocessing: { resize: m.resize }, metadata: m.metadata };
  if (!m.pretrained) {
    return { model: buildModel(m.architecture, { ...common, init: torchvisionInit(config.seed), weights: `random initialisation (seed ${config.seed})` }), notes: [] };
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(m.pretrained);
  } catch (error) {
    throw new Error(`model.pretrained: cannot read ${m.pretrained} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  emit({ type: 'info', message: `importing ${m.pretrained}` });
  // A backbone trained for other labels (ImageNet) keeps its features and gets a fresh classifier.
  const imported = importWeights(bytes, m.pretrained, { ...common, architecture: m.architecture, newHead: true });
  const notes = imported.notes.filter((n) => !/BatchNorm layers were folded/.test(n));
  if (m.metadata) notes.push('metadata head initialised fresh');
  // Identity BatchNorms (folded in the file) get statistics measured on up to 256 training images.
  const sample = data.train.records.slice(0, 256).map((_, i) => i);
  const feeds = async function* () {
    for await (const batch of batches(cache, data.train, sample, { spec: readModelInfo(imported.model).preprocessing, batchSize: 32, withMetadata: m.metadata })) {
      const feed: Record<string, HostTensor> = { image: batch.images };
      if (batch.metadata) feed.metadata = batch.metadata;
      yield feed;
    }
  };
  const collected: Record<string, HostTensor>[] = [];
  for await (const f of feeds()) collected.push(f);
  const unfolded = await unfoldBatchNorms(imported.model, collected, config.threads);
  if (unfolded.layers.length > 0) {
    notes.push(`${unfolded.layers.length} BatchNorm layers were folded into their convolutions in the file; their statistics were measured on ${unfolded.images} training images`);
  }
  return { model: imported.model, notes };
}

function splitIds(data: SplitData): Record<string, { images: string[]; patients: number }> {
  const describe = (d: Dataset) => ({ images: d.records.map((r) => r.id), patients: new Set(d.records.map((r) => r.patientId)).size });
  return { train: describe(data.train), validation: describe(data.validation), test: describe(data.test) };
}

/** The session's phase is saved with it: a checkpoint at a phase boundary resumes in the phase its weights belong to. */
function saveCheckpoint(file: string, config: TrainConfig, progress: Progress, schedule: LearningRateSchedule, session: TrainingSession, phase: Phase): void {
  const state = session.state();
  writeCheckpoint(
    file,
    {
      config,
      phase,
      progress: { ...progress, schedule: schedule.state() },
      session: { step: state.step, learningRate: state.learningRate, paramNames: state.paramNames, optimizer: Object.keys(state.optimizer) },
    },
    { params: state.params, stats: state.stats, ...Object.fromEntries(Object.entries(state.optimizer).map(([k, v]) => [`optimizer.${k}`, v])) },
  );
}

function loadResume(checkpoint: string, configFile: string, config: TrainConfig) {
  if (!existsSync(checkpoint)) throw new Error(`nothing to resume: ${checkpoint} does not exist`);
  const { header, vectors } = readCheckpoint(checkpoint);
  const saved = JSON.stringify(header.config);
  if (saved !== JSON.stringify(config)) {
    const before = header.config as Record<string, unknown>;
    const changed = Object.keys({ ...before, ...config }).filter((k) => JSON.stringify(before[k]) !== JSON.stringify((config as unknown as Record<string, unknown>)[k]));
    throw new Error(`--resume needs the run's own recipe (${configFile}); these settings differ: ${changed.join(', ')}`);
  }
  const s = header.session as { step: number; learningRate: number; paramNames: string[]; optimizer: string[] };
  return {
    progress: header.progress as Progress,
    phase: header.phase as Phase,
    state: {
      step: s.step,
      learningRate: s.learningRate,
      paramNames: s.paramNames,
      params: vectors.params,
      stats: vectors.stats,
      optimizer: Object.fromEntries(s.optimizer.map((k) => [k, vectors[`optimizer.${k}`]])),
    },
  };
}
