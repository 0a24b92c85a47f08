/** The preprocessed image cache on the real 1024 px NIH originals, plus corrupt and truncated real files. */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ImageCache, batchTensor, readCsvDataset, readNihDataset, type CacheProgress, type Dataset } from '../../src/data/index.js';
import { decodeImageFile } from '../../src/imaging/decode.js';
import { normalize, toModelPixels } from '../../src/imaging/preprocess.js';
import { imagenetPreprocessing, type PreprocessingSpec } from '../../src/imaging/spec.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { NIH_1024_DIR, NIH_64_CSV, copyInto, tempFolder, writeText } from './fixtures.js';

const SPEC: PreprocessingSpec = imagenetPreprocessing(224, 224, 3);

/** The 24 originals with their labels (labels.csv lists 1000 images; the other 976 are skipped as absent). */
async function originals(imageRoot = NIH_1024_DIR): Promise<Dataset> {
  return readNihDataset({ csvPath: NIH_64_CSV, imageRoot, onBadRow: 'skip' });
}

async function expectedPixels(path: string, spec: PreprocessingSpec): Promise<Uint8Array> {
  return toModelPixels(await decodeImageFile(path), spec).pixels;
}

describe('image cache', () => {
  it('holds exactly what decode + toModelPixels give for each image, built by 2 workers with progress', async () => {
    const dataset = await originals();
    assert.equal(dataset.records.length, 24);
    const folder = tempFolder();
    const progress: CacheProgress[] = [];
    const cache = await ImageCache.open(dataset.records, { folder, spec: SPEC, onProgress: (p) => progress.push({ ...p }) });
    try {
      assert.equal(cache.reused, false);
      assert.equal(cache.size, 24);
      assert.equal(statSync(cache.binPath).size, 24 * 224 * 224);
      assert.deepEqual(progress.at(-1), { done: 24, total: 24, skipped: 0 });
      assert.ok(progress.every((p, i) => i === 0 || p.done === progress[i - 1].done + 1));
      const all = await cache.read(dataset.records.map((r) => cache.slotOf(r.id)));
      for (const [i, record] of dataset.records.entries()) {
        const expected = await expectedPixels(record.imagePath, SPEC);
        assert.deepEqual(all.subarray(i * 224 * 224, (i + 1) * 224 * 224), expected, record.id);
      }
      // Images differ from each other: the slots are not all one image.
      assert.notDeepEqual(all.subarray(0, 224 * 224), all.subarray(224 * 224, 2 * 224 * 224));
    } finally {
      await cache.close();
    }
  });

  it('streams batches in any order, and batchTensor normalises them as imaging does', async () => {
    const dataset = await originals();
    const cache = await ImageCache.open(dataset.records, { folder: tempFolder(), spec: imagenetPreprocessing(64, 64, 1) });
    try {
      const order = [5, 6, 7, 0, 23, 11, 12, 1, 2, 3];
      const seen: number[] = [];
      for await (const batch of cache.batches(order, 4)) {
        assert.equal(batch.pixels.length, batch.slots.length * 64 * 64);
        for (const [k, slot] of batch.slots.entries()) {
          assert.deepEqual(batch.pixels.subarray(k * 4096, (k + 1) * 4096), await cache.read([slot]));
        }
        seen.push(...batch.slots);
      }
      assert.deepEqual(seen, order);
      const pixels = await cache.read([3, 4]);
      const spec = imagenetPreprocessing(64, 64, 3);
      const batch = batchTensor(pixels, spec);
      assert.deepEqual(batch.dims, [2, 3, 64, 64]);
      assert.deepEqual(batch.data.subarray(0, 3 * 4096), normalize(pixels.subarray(0, 4096), spec));
      assert.deepEqual(batch.data.subarray(3 * 4096), normalize(pixels.subarray(4096), spec));
      const gray = imagenetPreprocessing(64, 64, 1);
      assert.deepEqual(batchTensor(pixels, gray).data.subarray(4096), normalize(pixels.subarray(4096), gray));
      assert.throws(() => batchTensor(pixels.subarray(1), spec), /8191 bytes is not a whole number of 64x64 images/);
      await assert.rejects(cache.read([24]), /slot 24 is outside 0..23/);
      assert.throws(() => cache.slotOf('00009999_000.png'), /image "00009999_000.png" is not in the cache/);
    } finally {
      await cache.close();
    }
  });

  it('batchTensor equals normalize image by image at every alignment of image and channel planes', () => {
    // 65 x 65: planes long enough for the pair table, an odd length, so half the planes start unaligned.
    const [h, w] = [65, 65];
    const pixels = Uint8Array.from({ length: 1 + 3 * h * w }, (_, i) => (i * 151 + 7) & 0xff);
    const specs = [imagenetPreprocessing(h, w, 3), imagenetPreprocessing(h, w, 1), { ...imagenetPreprocessing(h, w, 3), mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] }];
    for (const spec of specs) {
      for (const offset of [0, 1]) {
        const batch = pixels.subarray(offset, offset + 3 * h * w);
        const data = batchTensor(batch, spec).data;
        for (let b = 0; b < 3; b++) {
          const expected = normalize(batch.subarray(b * h * w, (b + 1) * h * w), spec);
          assert.deepEqual(data.subarray(b * spec.channels * h * w, (b + 1) * spec.channels * h * w), expected, `${spec.channels} channels, offset ${offset}, image ${b}`);
        }
      }
    }
  });

  it('a cache file cut short after opening is an error naming it, for the first batch and for a prefetched one', async () => {
    const dataset = await originals();
    for (const [keep, batchesBefore] of [[2 * 4096, 0], [9 * 4096, 2]] as const) {
      const cache = await ImageCache.open(dataset.records, { folder: tempFolder(), spec: imagenetPreprocessing(64, 64, 1) });
      try {
        truncateSync(cache.binPath, keep);
        let seen = 0;
        await assert.rejects(
          (async () => {
            for await (const batch of cache.batches(dataset.records.map((_, i) => i), 4)) seen += batch.slots.length / 4;
          })(),
          (e: Error) => e.message.startsWith(`${cache.binPath}: cache file ends early at byte ${keep}`),
        );
        assert.equal(seen, batchesBefore);
      } finally {
        await cache.close();
      }
    }
  });

  it('is reused while inputs and pixel spec are unchanged, and rebuilt when a file, the list or the size changes', async () => {
    const root = tempFolder();
    for (const name of readdirSync(NIH_1024_DIR).slice(0, 6)) copyInto(join(NIH_1024_DIR, name), join(root, 'images', name));
    const dataset = await originals(root);
    assert.equal(dataset.records.length, 6);
    const folder = tempFolder();
    const open = (spec: PreprocessingSpec, records = dataset.records) => ImageCache.open(records, { folder, spec, workers: 1 });
    const first = await open(SPEC);
    const again = await open(SPEC);
    assert.equal(again.reused, true);
    assert.equal(again.key, first.key);
    const otherNormalisation = await open({ ...SPEC, channels: 1, mean: [0.5], std: [0.25] });
    assert.equal(otherNormalisation.reused, true, 'mean/std/channels are applied after the cache');
    const smaller = await open(imagenetPreprocessing(128, 128, 3));
    assert.equal(smaller.reused, false);
    assert.equal(statSync(smaller.binPath).size, 6 * 128 * 128);
    const back = await open(SPEC);
    assert.equal(back.reused, false);
    assert.equal(back.key, first.key);
    // Same bytes written again with a new modification time: rebuilt.
    const touched = dataset.records[2].imagePath;
    utimesSync(touched, new Date(), new Date(Date.now() + 5000));
    const afterTouch = await open(SPEC);
    assert.equal(afterTouch.reused, false);
    assert.notEqual(afterTouch.key, first.key);
    assert.equal((await open(SPEC)).reused, true);
    const fewer = await open(SPEC, dataset.records.slice(1));
    assert.equal(fewer.reused, false);
    assert.equal(fewer.size, 5);
    // A cache file cut short (an interrupted copy) is not trusted.
    writeFileSync(fewer.binPath, readFileSync(fewer.binPath).subarray(0, 1000));
    assert.equal((await open(SPEC, dataset.records.slice(1))).reused, false);
    for (const cache of [first, again, otherNormalisation, smaller, back, afterTouch, fewer]) await cache.close();
  });
});

describe('image cache: bad images', () => {
  /** Real files damaged the way disks and downloads damage them. */
  function damagedSet(): string {
    const root = tempFolder();
    const pngs = readdirSync(NIH_1024_DIR).slice(0, 3);
    for (const name of pngs) copyInto(join(NIH_1024_DIR, name), join(root, name));
    const png = readFileSync(join(NIH_1024_DIR, readdirSync(NIH_1024_DIR)[3]));
    writeFileSync(join(root, 'truncated.png'), png.subarray(0, Math.floor(png.length / 2)));
    const corrupt = Buffer.from(png);
    corrupt.fill(0x55, 200, 4000);
    writeFileSync(join(root, 'corrupt.png'), corrupt);
    const dicom = readFileSync(sharedDataPath('dicom', 'cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm'));
    writeFileSync(join(root, 'truncated.dcm'), dicom.subarray(0, Math.floor(dicom.length * 0.6)));
    copyInto(sharedDataPath('dicom', 'cxr08_DX_chest_MONO2_8bit_ImplicitLE_NIH_GoogleCloud.dcm'), join(root, 'whole.dcm'));
    const rows = [...pngs, 'truncated.png', 'corrupt.png', 'truncated.dcm', 'whole.dcm'].map((name, i) => `${name},Mass,0,p${i}`);
    return writeText(join(root, 'list.csv'), ['image,findings,follow-up,patient', ...rows].join('\n'));
  }

  it('a truncated PNG, a corrupt PNG or a truncated DICOM stops the build with an error naming the CSV row and file', async () => {
    const dataset = await readDamaged();
    const cases: [number, RegExp][] = [
      [3, /list.csv, row 4: image "truncated.png": .*truncated.png: cannot decode PNG/],
      [4, /list.csv, row 5: image "corrupt.png": .*corrupt.png: cannot decode PNG/],
      [5, /list.csv, row 6: image "truncated.dcm": .*truncated.dcm: /],
    ];
    for (const [bad, message] of cases) {
      const folder = tempFolder();
      await assert.rejects(ImageCache.open([...dataset.records.slice(0, 3), dataset.records[bad]], { folder, spec: SPEC }), message);
      assert.deepEqual(readdirSync(folder), [], 'nothing half-built is left behind');
    }
  });

  it('with onBadImage "skip", lists exactly the truncated and corrupt PNG and DICOM files and caches the rest', async () => {
    const dataset = await readDamaged();
    const cache = await ImageCache.open(dataset.records, { folder: tempFolder(), spec: SPEC, onBadImage: 'skip' });
    try {
      assert.deepEqual(
        cache.skipped.map((s) => [s.row, s.value?.split('/').at(-1)]),
        [[4, 'truncated.png'], [5, 'corrupt.png'], [6, 'truncated.dcm']],
      );
      for (const s of cache.skipped) assert.match(s.reason, /cannot decode|truncated|ends|corrupt|invalid|pixel data/i);
      assert.deepEqual(dataset.records.filter((r) => cache.has(r.id)).map((r) => r.id), [...dataset.records.slice(0, 3).map((r) => r.id), 'whole.dcm']);
      const dicomSlot = cache.slotOf('whole.dcm');
      assert.deepEqual(await cache.read([dicomSlot]), await expectedPixels(dataset.records[6].imagePath, SPEC));
    } finally {
      await cache.close();
    }
  });

  async function readDamaged(): Promise<Dataset> {
    return readCsvDataset({ csvPath: damagedSet(), imageColumn: 'image', patientColumn: 'patient', labels: { column: 'findings', names: ['Mass'] } });
  }

  it('a file that vanished after reading the CSV is named; an empty record list is refused', async () => {
    const dataset = await originals();
    const gone = [...dataset.records.slice(0, 2), { ...dataset.records[2], imagePath: join(tempFolder(), 'gone.png') }];
    await assert.rejects(ImageCache.open(gone, { folder: tempFolder(), spec: SPEC }), /labels.csv, row \d+: image "00000001_002.png": .*gone.png: file not found/);
    await assert.rejects(ImageCache.open([], { folder: tempFolder(), spec: SPEC }), /no records to cache/);
  });
});
