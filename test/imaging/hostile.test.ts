/**
 * Issue 17's decompression bombs through the library's decoder, from scripts/hostile-inputs.ts: each is refused
 * with a clear error naming the file, the size and the budget (or, at the pixel budget, comes back downscaled to
 * the working resolution), within a stated time and memory growth. Also: the budget's overrides, the frame-header
 * reader on every codec's real output, the bounded inflater, and overlays drawn at most MAX_OVERLAY_SIDE.
 *
 * Bounds, measured on the project's 2-core machine (times there: refusals 2-230 ms, the at-budget decodes
 * 0.6-1.9 s; before the budget: up to 29.5 s and 7 GB for the deflate bomb):
 * - a refusal: under 2 s, RSS and ArrayBuffer growth under 160 MiB (the deflate bomb inflates up to the 80 MiB limit);
 * - a 5792 x 5792 (2^25 px) image downscaled to 4096: under 4 s, RSS growth under 512 MiB (codec output, display
 *   values and the resampler's buffers at full resolution, once);
 * - the whole suite: RSS grows by under 768 MiB.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import dcmjsCodecs from 'dcmjs-codecs';
import { deflateSync } from 'fflate';
import sharp from 'sharp';
import { deflateBombDicom, hostileInputs, jpegDeclaring, rleDicom, zeroPng, type HostileInput } from '../../scripts/hostile-inputs.js';
import { renderHeatmap } from '../../src/explain/render.js';
import { frameSize } from '../../src/imaging/dicom/frame-size.js';
import {
  computeGeometry,
  DEFAULT_DECODE_BUDGET,
  decodeDicom,
  decodeImage,
  ImageTooLargeError,
  inflateBounded,
  MAX_OVERLAY_SIDE,
  overlayModelMap,
  type DecodedImage,
} from '../../src/imaging/index.js';
import { el, grayImage, writeDicom } from './dicom-writer.js';

const MiB = 2 ** 20;
const REFUSAL_MS = 2000;
const REFUSAL_GROWTH = 160 * MiB;
const DOWNSCALE_MS = 4000;
const DOWNSCALE_GROWTH = 512 * MiB;
const SUITE_GROWTH = 768 * MiB;

describe('hostile inputs (issue 17)', () => {
  let inputs: HostileInput[] = [];
  let startRss = 0;
  before(async () => {
    inputs = await hostileInputs();
    // Warm the codecs and sharp so the first input does not pay for loading them.
    await decodeImage(writeDicom(grayImage({ rows: 16, columns: 16, bitsAllocated: 16, bitsStored: 12, samples: new Uint16Array(256) })), 'warm.dcm');
    await decodeImage(zeroPng(16, 16, 8, 0), 'warm.png');
    await dcmjsCodecs.NativeCodecs.initializeAsync();
    startRss = process.memoryUsage().rss;
  });
  after(() => {
    const growth = process.memoryUsage().rss - startRss;
    assert.ok(growth < SUITE_GROWTH, `RSS grew by ${(growth / MiB).toFixed(0)} MiB over the suite (bound ${SUITE_GROWTH / MiB})`);
  });

  test('the generator makes small files', () => {
    for (const input of inputs) assert.ok(input.bytes.length < 2.2 * MiB, `${input.name}: ${input.bytes.length} bytes`);
    assert.ok(inputs.find((i) => i.name === 'rle-16384.dcm')!.bytes.length < 1024);
  });

  for (const name of [
    'deflate-1.5GiB.dcm',
    'rle-16384.dcm',
    'jpeg-30000-in-512.dcm',
    'jpeg-1024-in-512.dcm',
    'j2k-30000-in-512.dcm',
    'jpegls-30000-in-512.dcm',
    'png-16384.png',
    'png-16384x16383-rgba16.png',
    'png-8x1000000.png',
    'jpeg-30000.jpg',
    'png-5792x5792.png',
    'rle-5792x5792.dcm',
  ]) {
    test(name, async (t) => {
      const input = inputs.find((i) => i.name === name)!;
      assert.ok(input, `the generator has ${name}`);
      const rss = process.memoryUsage().rss;
      const arrayBuffers = process.memoryUsage().arrayBuffers;
      const started = performance.now();
      let image: DecodedImage | undefined;
      let error: Error | undefined;
      try {
        image = await decodeImage(input.bytes, input.name);
      } catch (e) {
        error = e as Error;
      }
      const ms = performance.now() - started;
      const growth = process.memoryUsage().rss - rss;
      const bufferGrowth = process.memoryUsage().arrayBuffers - arrayBuffers;
      const what = `${name}: ${ms.toFixed(0)} ms, RSS +${(growth / MiB).toFixed(0)} MiB, ArrayBuffers +${(bufferGrowth / MiB).toFixed(0)} MiB`;
      t.diagnostic(what);
      if (input.expect === 'refused') {
        assert.ok(error, `${name} was decoded (${image?.width}x${image?.height}) instead of refused`);
        assert.ok(error.message.startsWith(`${name}: `), error.message);
        assert.match(error.message, input.error!);
        assert.ok(ms < REFUSAL_MS, what);
        assert.ok(growth < REFUSAL_GROWTH && bufferGrowth < REFUSAL_GROWTH, what);
      } else {
        assert.ifError(error);
        assert.ok(image && Math.max(image.width, image.height) === DEFAULT_DECODE_BUDGET.maxWorkingSide, `${image?.width}x${image?.height}`);
        assert.equal(image.pixels.length, image.width * image.height);
        assert.ok(image.notes.some((n) => /^downscaled from 5792x5792 to 4096x4096/.test(n)), image.notes.join('; '));
        assert.ok(ms < DOWNSCALE_MS, what);
        assert.ok(growth < DOWNSCALE_GROWTH, what);
      }
    });
  }

  test('a budget refusal is an ImageTooLargeError (code CXR_IMAGE_TOO_LARGE), still an Error', async () => {
    const error = await decodeImage(rleDicom(16384, 16384, 4), 'r.dcm').catch((e: unknown) => e);
    assert.ok(error instanceof ImageTooLargeError);
    assert.ok(error instanceof Error);
    assert.equal(error.code, 'CXR_IMAGE_TOO_LARGE');
    assert.match(String(error), /^Error: r\.dcm: image is 16384x16384/);
  });
});

describe('decode budget options', () => {
  const samples = new Uint16Array(300 * 200).map((_, i) => (i % 300) * 10);
  const dicom = writeDicom(grayImage({ rows: 200, columns: 300, bitsAllocated: 16, bitsStored: 12, samples }, [el(0x00280030, 'DS', '0.2\\0.1')]));

  test('maxPixels and maxAspectRatio are the caller\'s to lower', async () => {
    await assert.rejects(decodeImage(dicom, 'a.dcm', { budget: { maxPixels: 50_000 } }), /a\.dcm: image is 300x200, more than 50000 pixels \(the decode budget\)/);
    await assert.rejects(decodeImage(zeroPng(300, 200, 8, 0), 'a.png', { budget: { maxPixels: 50_000 } }), /a\.png: image is 300x200, more than 50000 pixels/);
    await assert.rejects(decodeImage(zeroPng(300, 100, 8, 0), 'w.png', { budget: { maxAspectRatio: 2 } }), /w\.png: image is 300x100, aspect ratio 3\.0 above 2/);
    await assert.rejects(decodeImage(dicom, 'x.dcm', { budget: { maxPixels: 0 } }), /decode budget: maxPixels must be a number >= 1, got 0/);
  });

  test('maxWorkingSide downscales DICOM (pixel spacing scaled with it) and PNG/JPEG while decoding', async () => {
    const image = await decodeImage(dicom, 'a.dcm', { budget: { maxWorkingSide: 150 } });
    assert.equal(image.width, 150);
    assert.equal(image.height, 100);
    assert.ok(image.pixels instanceof Uint16Array);
    assert.deepEqual(image.metadata.pixelSpacing, [0.4, 0.2]);
    assert.ok(image.notes.includes('downscaled from 300x200 to 150x100 (working resolution: 150 px on the long side)'));
    // A horizontal ramp stays a ramp, averaged over 2 x 2 blocks.
    const full = await decodeImage(dicom, 'a.dcm');
    const mid = full.pixels[100 * 300 + 100] + full.pixels[100 * 300 + 101];
    assert.ok(Math.abs(image.pixels[50 * 150 + 50] - mid / 2) <= 1);

    const ramp = Buffer.alloc(640 * 480).map((_, i) => (i % 640) >> 2);
    const png = new Uint8Array(await sharp(ramp, { raw: { width: 640, height: 480, channels: 1 } }).png().toBuffer());
    const small = await decodeImage(png, 'r.png', { budget: { maxWorkingSide: 320 } });
    assert.deepEqual([small.width, small.height], [320, 240]);
    assert.ok(small.notes.includes('downscaled from 640x480 to 320x240 while decoding (working resolution: 320 px on the long side)'));
    assert.ok(Math.abs(small.pixels[120 * 320 + 100] - 50) <= 1);
    const jpeg = new Uint8Array(await sharp(ramp, { raw: { width: 640, height: 480, channels: 1 } }).jpeg({ quality: 95 }).toBuffer());
    const smallJpeg = await decodeImage(jpeg, 'r.jpg', { budget: { maxWorkingSide: 160 } });
    assert.deepEqual([smallJpeg.width, smallJpeg.height], [160, 120]);
    // Images within the working resolution are not touched.
    assert.ok(!(await decodeImage(png, 'r.png')).notes.some((n) => n.startsWith('downscaled')));
  });

  test('a deflated data set is inflated only up to the limit, in Node (zlib) and browser (fflate) paths alike', async () => {
    const bomb = deflateBombDicom(64, 64, 256 * MiB);
    // The browser path: decodeDicom without an injected inflater uses fflate, streamed.
    const started = performance.now();
    await assert.rejects(decodeDicom(bomb, 'b.dcm'), (e: Error) => e instanceof ImageTooLargeError && /b\.dcm: the deflated data set inflates to more than 83886080 bytes/.test(e.message));
    assert.ok(performance.now() - started < 4000);
    await assert.rejects(decodeImage(bomb, 'b.dcm'), /b\.dcm: the deflated data set inflates to more than 83886080 bytes/);
    // An honest deflated file passes both ways.
    const zeros = deflateSync(new Uint8Array(1000));
    assert.equal(inflateBounded(zeros, 1000, 'z').length, 1000);
    assert.throws(() => inflateBounded(zeros, 999, 'z'), /z: the deflated data set inflates to more than 999 bytes/);
  });
});

describe('frame headers', () => {
  const { NativeCodecs, Context } = dcmjsCodecs;
  const encode = async (kind: string, width: number, height: number): Promise<Uint8Array> => {
    await NativeCodecs.initializeAsync();
    const context = new Context({
      width,
      height,
      bitsAllocated: 16,
      bitsStored: 12,
      samplesPerPixel: 1,
      pixelRepresentation: 0,
      planarConfiguration: 0,
      photometricInterpretation: 'MONOCHROME2',
      decodedBuffer: new Uint8Array(new Uint16Array(width * height).map((_, i) => (i * 13) & 0xfff).buffer),
    });
    const encoders: Record<string, (c: InstanceType<typeof Context>) => InstanceType<typeof Context>> = {
      jpeg: (c) => NativeCodecs.encodeJpeg(c, { lossy: false, predictor: 1 }),
      'jpeg-ls': (c) => NativeCodecs.encodeJpegLs(c, { lossy: false }),
      jpeg2000: (c) => NativeCodecs.encodeJpeg2000(c, { lossy: false }),
      htj2k: (c) => NativeCodecs.encodeHtJpeg2000(c, { lossy: false }),
      'jpeg-xl': (c) => NativeCodecs.encodeJpegXl(c, { lossy: false }),
    };
    return new Uint8Array(encoders[kind](context).getEncodedBuffer()!);
  };

  for (const kind of ['jpeg', 'jpeg-ls', 'jpeg2000', 'htj2k', 'jpeg-xl'] as const) {
    test(`${kind}: the size each encoder writes is read back`, async () => {
      for (const [w, h] of [[72, 40], [40, 72], [1000, 8], [257, 129]]) {
        const size = frameSize(kind, await encode(kind, w, h));
        assert.deepEqual([size?.width, size?.height], [w, h], `${kind} ${w}x${h}`);
      }
    });
  }

  test('a frame whose size differs from Rows/Columns is refused before decoding, a matching one decodes', async () => {
    const frame = await encode('jpeg2000', 64, 48);
    const base = (rows: number, columns: number) => grayImage({ rows, columns, bitsAllocated: 16, bitsStored: 12, samples: new Uint16Array(0) }).filter((e) => e.tag !== 0x7fe00010);
    const good = await decodeImage(writeDicom(base(48, 64), { transferSyntax: '1.2.840.10008.1.2.4.90', fragments: [frame] }), 'ok.dcm');
    assert.deepEqual([good.width, good.height], [64, 48]);
    await assert.rejects(
      decodeImage(writeDicom(base(32, 32), { transferSyntax: '1.2.840.10008.1.2.4.90', fragments: [frame] }), 'm.dcm'),
      /m\.dcm: the JPEG 2000 Lossless frame is 64x48 but Rows\/Columns say 32x32; refused before decoding/,
    );
  });

  test('malformed frame headers are clear errors', async () => {
    assert.throws(() => frameSize('jpeg', new Uint8Array([1, 2, 3, 4])), /the JPEG frame does not start with an SOI marker/);
    assert.throws(() => frameSize('jpeg', new Uint8Array([0xff, 0xd8, 0xff, 0xda, 0, 2])), /the JPEG frame has no frame header \(SOF\)/);
    assert.throws(() => frameSize('jpeg2000', new Uint8Array(40)), /does not start with SOC and SIZ/);
    assert.throws(() => frameSize('jpeg-xl', new Uint8Array([0xff, 0x0a])), /truncated in its size header/);
    const zeroHeight = await jpegDeclaring(64, 0);
    assert.throws(() => frameSize('jpeg', zeroHeight), /declares 64x0/);
  });
});

describe('overlays are drawn at most MAX_OVERLAY_SIDE', () => {
  test('a 4096 x 3000 image gets a 2048 x 1500 overlay; smaller images keep their size', async () => {
    assert.equal(MAX_OVERLAY_SIDE, 2048);
    const image: DecodedImage = { width: 4096, height: 3000, pixels: new Uint8Array(4096 * 3000).fill(100), maxValue: 255, format: 'png', source: 'big.png', metadata: {}, notes: [] };
    const geometry = computeGeometry(4096, 3000, { width: 224, height: 224, resize: 'pad' });
    const map = new Float32Array(49).map((_, i) => i);
    const finding = { finding: 'Effusion', probability: 0.5, logit: 0, map: { width: 7, height: 7, data: map } };
    const png = await renderHeatmap(image, { geometry }, finding);
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.width, meta.height], [2048, 1500]);
    const custom = overlayModelMap(image, map, 7, 7, geometry, { maxSide: 512 });
    assert.deepEqual([custom.width, custom.height, custom.rgb.length], [512, 375, 512 * 375 * 3]);
    // The scaled overlay is the full-size one, downscaled: compare the map's strongest corner.
    const full = overlayModelMap(image, map, 7, 7, geometry, { maxSide: 4096 });
    const at = (o: { rgb: Uint8Array; width: number }, x: number, y: number) => o.rgb[(y * o.width + x) * 3];
    assert.ok(Math.abs(at(full, 4000, 2900) - at(custom, 500, 362)) <= 3);
    const small: DecodedImage = { ...image, width: 1024, height: 1024, pixels: new Uint8Array(1024 * 1024) };
    const smallPng = await renderHeatmap(small, { geometry: computeGeometry(1024, 1024, { width: 224, height: 224, resize: 'pad' }) }, finding);
    assert.equal((await sharp(smallPng).metadata()).width, 1024);
  });
});

describe('resizeGray', () => {
  test('banded resizing matches one whole-image resample', async () => {
    const { resample, resizeGray } = await import('../../src/imaging/index.js');
    const [w, h, ow, oh] = [731, 1403, 300, 575];
    const src = new Uint16Array(w * h).map((_, i) => (i * 2654435761) % 4096);
    const whole = resample(src, w, h, ow, oh);
    const banded = resizeGray(src, w, h, ow, oh);
    let worst = 0;
    for (let i = 0; i < whole.length; i++) worst = Math.max(worst, Math.abs(banded[i] - Math.round(whole[i])));
    assert.ok(worst <= 1, `largest difference ${worst}`);
  });
});
