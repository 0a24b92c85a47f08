/**
 * One epoch of the default model's recipe (configs/default-model.yaml: MobileNetV2 at 224 px, batch 32, AdamW,
 * BCE with positive weights, augmentation, all layers trained) from the image cache, ours against the same recipe
 * in PyTorch 1.13 CPU (2 threads) on the same cached pixels, epochs alternated in one run; images per second.
 *
 * The reference runs in its fastest documented configuration: memory format (NCHW or channels-last) and GNU
 * OpenMP's wait policy (unset or PASSIVE), each policy a process of its own started without our GLIBC_TUNABLES.
 * The candidates train on the epoch's first SELECT_BATCHES batches in SELECT_ROUNDS alternating rounds (a fresh
 * model each time, as a full epoch starts); the fastest median is then run for full epochs alternating with ours.
 * Each side starts SETTLE_MS after the other ended, so neither side's spinning threads take cores from the other.
 *
 * Run: npm run build && GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 \
 *        node dist/bench/train-epoch.js [--rounds 2]
 */
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImageCache, positiveWeights } from '../src/data/index.js';
import { imagenetPreprocessing } from '../src/imaging/index.js';
import { buildModel } from '../src/models/zoo/index.js';
import { TrainingSession } from '../src/train/step/session.js';
import { batches } from '../src/train/batches.js';
import { readConfigFile, resolveConfig } from '../src/train/config.js';
import { readDatasets, splitData } from '../src/train/data.js';
import {
  BENCH_DIR,
  OMP_WAIT_POLICIES,
  type OmpWaitPolicy,
  PythonWorker,
  REFERENCE_ENV,
  countOption,
  headlineCase,
  machine,
  median,
  ompPolicyName,
  ompReferenceEnv,
  round,
  writeResults,
} from './lib.js';

const ROUNDS = countOption('rounds', 2);
const SELECT_ROUNDS = Number(process.env.BENCH_SELECT_ROUNDS ?? 2);
const SELECT_BATCHES = 6;
const SETTLE_MS = 100;

const LAYOUTS = ['nchw', 'channels_last'] as const;
interface ReferenceConfig {
  layout: (typeof LAYOUTS)[number];
  omp_wait_policy: OmpWaitPolicy;
}
const CONFIGS: ReferenceConfig[] = OMP_WAIT_POLICIES.flatMap((omp_wait_policy) => LAYOUTS.map((layout) => ({ layout, omp_wait_policy })));

function configName(c: ReferenceConfig): string {
  return `${c.layout === 'channels_last' ? 'channels-last' : 'NCHW'}, ${ompPolicyName(c.omp_wait_policy)}`;
}

async function main(): Promise<void> {
  const config = resolveConfig(readConfigFile(join(BENCH_DIR, '..', 'configs', 'default-model.yaml')));
  const data = await splitData(await readDatasets(config), config);
  const spec = imagenetPreprocessing(config.model.size, config.model.size, config.model.channels);
  const cache = await ImageCache.open([...data.train.records, ...data.validation.records, ...data.test.records], { folder: config.cacheDir, spec });
  const posWeight = [...positiveWeights(data.train, { ifNoPositives: 'unweighted' })];
  const order = data.train.records.map((_, i) => i);
  // Random initial weights on both sides: the time of a step does not depend on the weights' values.
  const model = buildModel('mobilenet_v2', { height: config.model.size });
  const workers = { default: new PythonWorker('torch_train_epoch.py', [], ompReferenceEnv('default')), passive: new PythonWorker('torch_train_epoch.py', [], ompReferenceEnv('passive')) };
  const slots = data.train.records.map((r) => cache.slotOf(r.id));
  const targets = data.train.records.map((r) => [...r.labels]);
  /** Images per second of one PyTorch epoch over the first `count` training images. */
  const reference = async (c: ReferenceConfig, count = slots.length) => {
    await sleep(SETTLE_MS);
    const request = { cache: cache.binPath, size: config.model.size, slots: slots.slice(0, count), targets: targets.slice(0, count), posWeight, batch: config.batchSize, lr: config.optimizer.lr, layout: c.layout };
    const theirs = await workers[c.omp_wait_policy].request<{ seconds: number; images: number }>(request);
    return theirs.images / theirs.seconds;
  };
  const ours = async (round: number) => {
    const session = await TrainingSession.create(model, { loss: config.loss, optimizer: config.optimizer, learningRate: config.optimizer.lr, posWeight, threads: 2, batchSize: config.batchSize });
    await sleep(SETTLE_MS);
    const start = performance.now();
    let images = 0;
    for await (const batch of batches(cache, data.train, order, {
      spec,
      batchSize: config.batchSize,
      withMetadata: false,
      augmentation: config.augmentation === 'none' ? undefined : { spec: config.augmentation, seed: round, epoch: 0 },
    })) {
      await session.step({ images: batch.images, targets: batch.targets, mask: batch.mask });
      images += batch.records.length;
    }
    const perSecond = images / ((performance.now() - start) / 1000);
    await session.release();
    return perSecond;
  };

  const loadBefore = round(loadavg()[0], 2);
  const selectImages = SELECT_BATCHES * config.batchSize;
  const candidates = CONFIGS.map((c) => ({ config: c, images_per_s: [] as number[] }));
  const oursRounds: number[] = [];
  const referenceRounds: number[] = [];
  let best: (typeof candidates)[number];
  try {
    for (let r = 0; r < SELECT_ROUNDS; r++) for (const k of candidates) k.images_per_s.push(await reference(k.config, selectImages));
    best = candidates.reduce((a, b) => (median(b.images_per_s) > median(a.images_per_s) ? b : a));
    process.stdout.write(`reference candidates (first ${selectImages} images): ${candidates.map((k) => `${configName(k.config)} ${round(median(k.images_per_s), 2)} img/s`).join(' | ')}\n`);
    // The losing policy's process is not needed any more.
    for (const policy of OMP_WAIT_POLICIES) if (policy !== best.config.omp_wait_policy) workers[policy].close();
    for (let r = 0; r < ROUNDS; r++) {
      oursRounds.push(await ours(r));
      referenceRounds.push(await reference(best.config));
      process.stdout.write(`round ${r + 1}: ours ${round(oursRounds[r], 2)} img/s, PyTorch ${round(referenceRounds[r], 2)} img/s (${configName(best.config)})\n`);
    }
  } finally {
    for (const worker of Object.values(workers)) worker.close();
    await cache.close();
  }
  const loadAfter = round(loadavg()[0], 2);
  const oursMsPerImage = 1000 / median(oursRounds);
  const referenceMsPerImage = 1000 / median(referenceRounds);
  const path = writeResults('train-epoch', {
    headline: {
      default_recipe_epoch: headlineCase(
        oursMsPerImage,
        referenceMsPerImage,
        `PyTorch 1.13 CPU, 2 threads: torchvision mobilenet_v2, same cached pixels, affine + intensity augmentation, AdamW, BCE(pos_weight), alternating epochs; fastest of ${CONFIGS.length} documented configurations: ${configName(best.config)}`,
      ),
    },
    details: {
      unit: 'ms per training image (headline); images per second below',
      images_per_epoch: data.train.records.length,
      images_per_s: { ours: oursRounds.map((v) => round(v, 2)), reference: referenceRounds.map((v) => round(v, 2)) },
      reference_config: best.config,
      reference_candidates: candidates.map((k) => ({ ...k.config, images: selectImages, median_images_per_s: round(median(k.images_per_s), 2), images_per_s: k.images_per_s.map((v) => round(v, 2)) })),
      recipe: { architecture: 'mobilenet_v2', size: config.model.size, batchSize: config.batchSize, optimizer: config.optimizer, loss: config.loss },
    },
    setup: {
      rounds: ROUNDS,
      select_rounds: SELECT_ROUNDS,
      settle_ms: SETTLE_MS,
      machine: machine(),
      ours_config: 'TrainingSession built for the recipe\'s batch size (intra-op threads 2, inter-op 1, sequential, all graph optimisations, ORT intra-op spinning off), batches from src/train/batches.ts as the trainer reads them',
      reference_env: `${REFERENCE_ENV}; OMP_WAIT_POLICY as the winning configuration says`,
      reference_selection: `${CONFIGS.length} configurations (memory format x OpenMP wait policy), each training a fresh model on the first ${selectImages} training images in ${SELECT_ROUNDS} alternating rounds; the fastest median runs the full epochs against ours`,
      load_average: { before: loadBefore, after: loadAfter },
    },
  });
  process.stdout.write(`wrote ${path}\n`);
}

await main();
