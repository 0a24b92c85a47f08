/**
 * The direct decoder for plain gray PNGs (png.ts): every filter on 8- and 16-bit rows against a reference filter
 * written here, equality with sharp on files libpng wrote, and every file it must leave to sharp.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { decodeImage } from '../../src/imaging/index.js';
import { pngFile } from '../../src/imaging/encode.js';
import { decodePlainGrayPng, plainGrayPngHeader } from '../../src/imaging/png.js';
import { sharedDataPath } from '../helpers/fixtures.js';
import { writePng } from './png-writer.js';
import { readBytes } from './util.js';

const LIMIT = 2 ** 27;

/** PNG's predictor for filter `f`, written plainly (branches, no tricks) as the reference. */
function predict(f: number, a: number, b: number, c: number): number {
  if (f === 0) return 0;
  if (f === 1) return a;
  if (f === 2) return b;
  if (f === 3) return (a + b) >> 1;
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Gray samples as a PNG whose row y uses filter filters[y % filters.length]. */
function filteredPng(width: number, height: number, bitDepth: 8 | 16, samples: ArrayLike<number>, filters: number[], extra: Uint8Array[] = []): Uint8Array {
  const bpp = bitDepth / 8;
  const stride = width * bpp;
  const bytes = new Uint8Array(height * stride);
  for (let i = 0; i < width * height; i++) {
    if (bitDepth === 8) bytes[i] = samples[i];
    else {
      bytes[2 * i] = samples[i] >> 8;
      bytes[2 * i + 1] = samples[i] & 0xff;
    }
  }
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const f = filters[y % filters.length];
    raw[y * (stride + 1)] = f;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? bytes[y * stride + i - bpp] : 0;
      const b = y > 0 ? bytes[(y - 1) * stride + i] : 0;
      const c = y > 0 && i >= bpp ? bytes[(y - 1) * stride + i - bpp] : 0;
      raw[y * (stride + 1) + 1 + i] = (bytes[y * stride + i] - predict(f, a, b, c)) & 0xff;
    }
  }
  const file = pngFile({ width, height, bitDepth, colorType: 0 }, new Uint8Array(deflateSync(raw)));
  if (extra.length === 0) return file;
  // Ancillary chunks go after IHDR (8 + 25 bytes).
  return new Uint8Array(Buffer.concat([file.subarray(0, 33), ...extra, file.subarray(33)]));
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return new Uint8Array(out);
}

function noise(count: number, max: number, seed: number): Uint16Array {
  const out = new Uint16Array(count);
  let s = seed;
  for (let i = 0; i < count; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    // Smooth rows with noise, so every predictor wins somewhere.
    out[i] = Math.min(max, Math.floor(((Math.sin(i / 7) + 1) / 2) * max * 0.8 + (s / 2 ** 32) * max * 0.2));
  }
  return out;
}

function decodeDirect(bytes: Uint8Array) {
  const header = plainGrayPngHeader(bytes);
  return header === undefined ? undefined : decodePlainGrayPng(bytes, header, LIMIT);
}

describe('plain gray PNG decoder', () => {
  for (const bitDepth of [8, 16] as const) {
    const max = bitDepth === 8 ? 255 : 65535;
    for (const filters of [[0], [1], [2], [3], [4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]) {
      test(`${bitDepth}-bit rows with filters ${filters.join(',')} decode to the samples written`, () => {
        // Narrow images too: one or two pixels per row, and an odd row count for paired Paeth rows.
        for (const [width, height] of [[37, 23], [1, 9], [2, 5], [300, 4]]) {
          const samples = noise(width * height, max, filters.length * 31 + bitDepth + width);
          const decoded = decodeDirect(filteredPng(width, height, bitDepth, samples, filters));
          assert.ok(decoded !== undefined);
          assert.equal(decoded.width, width);
          assert.equal(decoded.height, height);
          assert.ok(decoded.pixels instanceof (bitDepth === 8 ? Uint8Array : Uint16Array));
          assert.deepEqual(Array.from(decoded.pixels), Array.from(samples), `${width}x${height}`);
        }
      });
    }
  }

  test('files libpng wrote (adaptive filters, 8 and 16 bit) decode as sharp decodes them', async () => {
    for (const [bitDepth, width, height] of [[8, 301, 77], [16, 64, 129], [8, 1024, 9]] as const) {
      const samples = noise(width * height, bitDepth === 8 ? 255 : 65535, width);
      const input = bitDepth === 8 ? Buffer.from(Uint8Array.from(samples)) : Buffer.from(samples.buffer);
      const png = await sharp(input, { raw: { width, height, channels: 1, ...(bitDepth === 16 ? { premultiplied: false } : {}) } })
        .toColourspace(bitDepth === 16 ? 'grey16' : 'b-w')
        .png({ compressionLevel: 6, adaptiveFiltering: true })
        .toBuffer();
      const decoded = decodeDirect(png);
      assert.ok(decoded !== undefined, `${bitDepth}-bit ${width}x${height} was left to sharp`);
      const viaSharp = await sharp(png).toColourspace(bitDepth === 16 ? 'grey16' : 'b-w').raw({ depth: bitDepth === 16 ? 'ushort' : 'uchar' }).toBuffer();
      const expected = bitDepth === 16 ? new Uint16Array(viaSharp.buffer, viaSharp.byteOffset, viaSharp.byteLength / 2) : new Uint8Array(viaSharp);
      assert.deepEqual(Array.from(decoded.pixels), Array.from(expected));
    }
  });

  test('NIH originals decode here, to the pixels sharp gives', async () => {
    const dir = sharedDataPath('nih-cxr14-subset/images-1024');
    const files = readdirSync(dir).filter((f) => f.endsWith('.png')).sort().slice(0, 4);
    for (const file of files) {
      const bytes = readBytes(join(dir, file));
      const decoded = decodeDirect(bytes);
      if (file === '00000004_000.png') {
        assert.equal(decoded, undefined, 'the RGBA original is left to sharp');
        continue;
      }
      assert.ok(decoded !== undefined, file);
      const viaSharp = await sharp(bytes).toColourspace('b-w').raw().toBuffer();
      assert.ok(Buffer.from(decoded.pixels.buffer, decoded.pixels.byteOffset, decoded.pixels.byteLength).equals(viaSharp), file);
    }
  });

  test('files with any other layout or chunk, or anything malformed, are left to sharp', () => {
    const samples = noise(16 * 16, 255, 7);
    const good = filteredPng(16, 16, 8, samples, [4]);
    assert.ok(decodeDirect(good) !== undefined);
    const leftToSharp: [string, Uint8Array][] = [
      ['RGB', writePng(16, 16, 8, 2, new Uint8Array(16 * 16 * 3))],
      ['gray + alpha', writePng(16, 16, 8, 4, new Uint8Array(16 * 16 * 2))],
      ['zero width', writePng(0, 16, 8, 0, [])],
      ['a gamma chunk', filteredPng(16, 16, 8, samples, [4], [chunk('gAMA', new Uint8Array([0, 0, 0xb1, 0x8f]))])],
      ['an EXIF chunk', filteredPng(16, 16, 8, samples, [4], [chunk('eXIf', new Uint8Array(8))])],
      ['a transparency chunk', filteredPng(16, 16, 8, samples, [4], [chunk('tRNS', new Uint8Array([0, 0]))])],
      ['a bad CRC', (() => {
        const bad = filteredPng(16, 16, 8, samples, [4], [chunk('tEXt', new TextEncoder().encode('Comment\0x'))]);
        bad[33 + 8 + 2] ^= 1;
        return bad;
      })()],
      ['no IEND (truncated)', good.subarray(0, good.length - 12)],
      ['cut inside IDAT', good.subarray(0, good.length - 20)],
      ['an unknown filter', filteredPng(16, 16, 8, samples, [5 as number])],
      ['too little image data', pngFile({ width: 16, height: 16, bitDepth: 8, colorType: 0 }, new Uint8Array(deflateSync(new Uint8Array(16 * 17 - 1))))],
      ['too much image data', pngFile({ width: 16, height: 16, bitDepth: 8, colorType: 0 }, new Uint8Array(deflateSync(new Uint8Array(16 * 17 + 1))))],
      ['not deflate data', pngFile({ width: 16, height: 16, bitDepth: 8, colorType: 0 }, new Uint8Array(64).fill(0x5a))],
    ];
    for (const [what, bytes] of leftToSharp) assert.equal(decodeDirect(bytes), undefined, what);
    // Inert chunks (text, time, physical size) do not stop it.
    const withText = filteredPng(16, 16, 8, samples, [4], [chunk('tEXt', new TextEncoder().encode('Comment\0x')), chunk('pHYs', new Uint8Array(9))]);
    assert.deepEqual(Array.from(decodeDirect(withText)!.pixels), Array.from(samples));
  });

  test('decodeImage gives the same image for a plain gray PNG whether or not it has a chunk that sends it to sharp', async () => {
    for (const bitDepth of [8, 16] as const) {
      const samples = noise(40 * 30, bitDepth === 8 ? 255 : 65535, 3);
      const direct = await decodeImage(filteredPng(40, 30, bitDepth, samples, [0, 1, 2, 3, 4]), 'direct.png');
      // A gAMA chunk is not applied by sharp, but it makes png.ts hand the file over.
      const viaSharp = await decodeImage(filteredPng(40, 30, bitDepth, samples, [0, 1, 2, 3, 4], [chunk('gAMA', new Uint8Array([0, 0, 0xb1, 0x8f]))]), 'sharp.png');
      assert.deepEqual({ ...direct, source: '' }, { ...viaSharp, source: '' });
      assert.equal(direct.pixels.constructor, viaSharp.pixels.constructor);
    }
  });
});
