/**
 * One epoch of the default model's recipe (configs/default-model.yaml: MobileNetV2 at 224 px, batch 32, AdamW,
 * BCE with positive weights, augmentation, all layers trained) from the image cache, ours against the same recipe
 * in PyTorch 1.13 CPU (2 threads) on the same cached pixels, epochs alternated in one run; images per second.
 *
 * Run: npm run build && GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 \
 *        node dist/bench/train-epoch.js [--rounds 2]
 */
import { join } from 'node:path';
import { ImageCache, positiveWeights } from '../src/data/index.js';
import { imagenetPreprocessing } from '../src/imaging/index.js';
import { buildModel } from '../src/models/zoo/index.js';
import { TrainingSession } from '../src/train/step/session.js';
import { batches } from '../src/train/batches.js';
import { readConfigFile, resolveConfig } from '../src/train/config.js';
import { readDatasets, splitData } from '../src/train/data.js';
import { BENCH_DIR, PythonWorker, countOption, headlineCase, machine, median, round, writeResults } from './lib.js';

const ROUNDS = countOption('rounds', 2);

async function main(): Promise<void> {
  const config = resolveConfig(readConfigFile(join(BENCH_DIR, '..', 'configs', 'default-model.yaml')));
  const data = await splitData(await readDatasets(config), config);
  const spec = imagenetPreprocessing(config.model.size, config.model.size, config.model.channels);
  const cache = await ImageCache.open([...data.train.records, ...data.validation.records, ...data.test.records], { folder: config.cacheDir, spec });
  const posWeight = [...positiveWeights(data.train, { ifNoPositives: 'unweighted' })];
  const order = data.train.records.map((_, i) => i);
  // Random initial weights on both sides: the time of a step does not depend on the weights' values.
  const model = buildModel('mobilenet_v2', { height: config.model.size });
  const torch = new PythonWorker('torch_train_epoch.py');
  const ours: number[] = [];
  const reference: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const session = await TrainingSession.create(model, { loss: config.loss, optimizer: config.optimizer, learningRate: config.optimizer.lr, posWeight, threads: 2 });
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
      ours.push(images / ((performance.now() - start) / 1000));
      await session.release();
      const theirs = await torch.request<{ seconds: number; images: number }>({
        cache: cache.binPath,
        size: config.model.size,
        slots: data.train.records.map((r) => cache.slotOf(r.id)),
        targets: data.train.records.map((r) => [...r.labels]),
        posWeight,
        batch: config.batchSize,
        lr: config.optimizer.lr,
      });
      reference.push(theirs.images / theirs.seconds);
      process.stdout.write(`round ${round + 1}: ours ${round2(ours.at(-1))} img/s, PyTorch ${round2(reference.at(-1))} img/s\n`);
    }
  } finally {
    torch.close();
    await cache.close();
  }
  const oursMsPerImage = 1000 / median(ours);
  const referenceMsPerImage = 1000 / median(reference);
  const path = writeResults('train-epoch', {
    headline: {
      default_recipe_epoch: headlineCase(oursMsPerImage, referenceMsPerImage, 'PyTorch 1.13 CPU, 2 threads: torchvision mobilenet_v2, same cached pixels, affine + intensity augmentation, AdamW, BCE(pos_weight), alternating epochs'),
    },
    details: {
      unit: 'ms per training image (headline); images per second below',
      images_per_epoch: data.train.records.length,
      images_per_s: { ours: ours.map((v) => round(v, 2)), reference: reference.map((v) => round(v, 2)) },
      recipe: { architecture: 'mobilenet_v2', size: config.model.size, batchSize: config.batchSize, optimizer: config.optimizer, loss: config.loss },
      machine: machine(),
    },
  });
  process.stdout.write(`wrote ${path}\n`);
}

function round2(v: number | undefined): number {
  return round(v ?? Number.NaN, 2);
}

await main();
