/**
 * Data benchmark: decode + preprocess of NIH's 1024 px PNGs to 224 px model input, with and without the image
 * cache, beside Python PIL + NumPy doing the same work in the same run (alternating rounds, medians).
 * Also: building the cache with 2 worker threads beside a 2-process PIL pool, and reading a 112,120-row
 * Data_Entry_2017-layout CSV beside Python's csv module.
 * Run: npx tsc -p . && GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 node dist/bench/data.js
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ImageCache, batchTensor, modelPixelsOfFile, readNihDataset } from '../src/data/index.js';
import { normalize } from '../src/imaging/preprocess.js';
import { imagenetPreprocessing } from '../src/imaging/spec.js';

import { BENCH_DIR, PythonWorker, REFERENCE_ENV, machine as describeMachine, median, round, writeResults } from './lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const data = resolve(BENCH_DIR, '..', '..', 'shared', 'data');
const originalsDir = join(data, 'nih-cxr14-subset', 'images-1024');
const spec = imagenetPreprocessing(224, 224, 3);
const machine = describeMachine();

/**
 * The reference runs in one Python process started before any timing: starting a process forks ours, after which
 * every page this process writes faults once (copy-on-write), which would be charged to our next round.
 */
const worker = new PythonWorker('data_reference.py', ['serve']);

async function python(args: string[]): Promise<{ ms: number }> {
  return worker.request<{ ms: number }>(args);
}

/** Alternates ours and the reference for ROUNDS rounds after one warm-up round each; medians per unit. */
async function compare(ours: () => Promise<number>, theirs: () => Promise<number>, units: number) {
  await ours();
  await theirs();
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    a.push(await ours());
    b.push(await theirs());
  }
  const oursMs = median(a) / units;
  const referenceMs = median(b) / units;
  return { ours_ms: round(oursMs), reference_ms: round(referenceMs), speedup: round(referenceMs / oursMs) };
}

const perSecond = (ms: number) => Math.round((1000 / ms) * 10) / 10;

async function main(): Promise<void> {
  // Other work on the machine moves both sides' timings; the load says how much there was.
  const loadAtStart = round(loadavg()[0], 2);
  const dataset = await readNihDataset({ csvPath: join(data, 'nih-cxr14-64px', 'labels.csv'), imageRoot: originalsDir, onBadRow: 'skip' });
  const paths = dataset.records.map((r) => r.imagePath);
  const n = paths.length;
  const mean = String(spec.mean[0]);
  const std = String(spec.std[0]);
  const work = mkdtempSync(join(tmpdir(), 'cxr-bench-data-'));
  try {
    // The reference must do the same work: our model pixels against PIL's for one image.
    const dumped = join(work, 'pil.u8');
    await python(['dump', '224', dumped, paths[0]]);
    const pil = readFileSync(dumped);
    const ours = await modelPixelsOfFile(paths[0], spec);
    let maxDiff = 0;
    for (let i = 0; i < ours.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ours[i] - pil[i]));

    // Same ImageNet statistics per channel as the Python side (which takes one mean/std for the gray plane).
    const grayImagenet = { ...spec, mean: spec.mean.map(() => spec.mean[0]), std: spec.std.map(() => spec.std[0]) };
    const decode = await compare(
      async () => {
        const start = performance.now();
        for (const path of paths) normalize(await modelPixelsOfFile(path, grayImagenet), grayImagenet);
        return performance.now() - start;
      },
      async () => (await python(['decode', '224', mean, std, '3', ...paths])).ms,
      n,
    );

    const cacheFolder = join(work, 'cache');
    const cache = await ImageCache.open(dataset.records, { folder: cacheFolder, spec });
    const order = Array.from({ length: n }, (_, i) => i);
    const fromCache = await compare(
      async () => {
        const start = performance.now();
        for await (const batch of cache.batches(order, 8)) batchTensor(batch.pixels, grayImagenet);
        return performance.now() - start;
      },
      async () => (await python(['cache', cache.binPath, String(n), '224', mean, std, '3'])).ms,
      n,
    );
    await cache.close();

    let build = 0;
    const buildCache = await compare(
      async () => {
        const folder = join(work, `build-${build++}`);
        const start = performance.now();
        await (await ImageCache.open(dataset.records, { folder, spec, workers: 2 })).close();
        const ms = performance.now() - start;
        rmSync(folder, { recursive: true });
        return ms;
      },
      async () => (await python(['pool', '224', join(work, 'pool.u8'), ...paths])).ms,
      n,
    );

    // NIH's full Data_Entry_2017.csv is not here: 112,120 rows in its layout, made of sample_labels.csv's rows.
    const sample = readFileSync(join(data, 'nih-meta', 'sample_labels.csv'), 'utf8').trim().split(/\r?\n/).slice(1);
    const header = 'Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],';
    const lines = [header];
    for (let i = 0; i < 112120; i++) {
      const fields = sample[i % sample.length].split(',');
      const patient = Math.floor(i / 3) + 1;
      fields[0] = `${String(patient).padStart(8, '0')}_${String(i % 3).padStart(3, '0')}.png`;
      fields[3] = String(patient);
      lines.push(`${fields.join(',')},`);
    }
    const bigCsv = join(work, 'Data_Entry_2017.csv');
    writeFileSync(bigCsv, lines.join('\r\n') + '\r\n');
    const readCsv = await compare(
      async () => {
        const start = performance.now();
        const big = await readNihDataset({ csvPath: bigCsv, checkImages: false });
        if (big.records.length !== 112120) throw new Error(`read ${big.records.length} rows`);
        return performance.now() - start;
      },
      async () => (await python(['csv', bigCsv])).ms,
      1,
    );

    const results = {
      benchmark: 'data',
      node: process.version,
      images: `${n} NIH ChestX-ray14 originals, 1024x1024 8-bit PNG (nih-cxr14-subset/images-1024)`,
      rounds: ROUNDS,
      reference_env: REFERENCE_ENV,
      reference_process: 'one Python process (data_reference.py serve) started before any timing, one request per round over a pipe',
      load_average_1min: { start: loadAtStart, end: round(loadavg()[0], 2) },
      pil_vs_ours_max_abs_gray_difference: maxDiff,
      headline: {
        decode_preprocess_1024_to_224: {
          ...decode,
          ours_images_per_s: perSecond(decode.ours_ms),
          reference_images_per_s: perSecond(decode.reference_ms),
          reference: "Python PIL 9.4 + NumPy 1.24, one process: Image.open, convert('L'), resize((224, 224), BILINEAR), /255, (x - mean) / std, 3 channels",
          ours: 'one thread: decodeImageFile (plain gray PNG: node:zlib inflate + TS unfilter; other files sharp) + toModelPixels (pure TS, PIL bilinear weights) + normalize, 3 channels',
          machine,
        },
        from_cache_224: {
          ...fromCache,
          ours_images_per_s: perSecond(fromCache.ours_ms),
          reference_images_per_s: perSecond(fromCache.reference_ms),
          ours_speedup_over_decoding: round(decode.ours_ms / fromCache.ours_ms),
          reference: 'Python NumPy 1.24 reading the same cache file (np.fromfile) and normalising each image to 3 channels',
          ours: 'ImageCache.batches (batch 8; first batch read on the thread, each next one prefetched) + batchTensor (normalize), 3 channels',
          machine,
        },
      },
      cases: {
        build_cache_1024_to_224_2_workers: {
          ...buildCache,
          ours_images_per_s: perSecond(buildCache.ours_ms),
          reference_images_per_s: perSecond(buildCache.reference_ms),
          reference: 'Python multiprocessing.Pool(2): PIL decode + resize to uint8, written into one file',
          ours: 'ImageCache.open on an empty folder, 2 worker threads (stat + decode + resize + write + index)',
          machine,
        },
        read_data_entry_112120_rows: {
          ...readCsv,
          reference: "Python csv.reader + a NumPy [N, 14] label matrix and patient ids (no validation)",
          ours: 'readNihDataset, checkImages false: Papa Parse + full row validation, records with labels, mask and metadata',
          machine,
        },
      },
    };
    writeResults('data', results);
    process.stdout.write(JSON.stringify(results.headline, null, 2) + '\n' + JSON.stringify(results.cases, null, 2) + '\n');
  } finally {
    worker.close();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
