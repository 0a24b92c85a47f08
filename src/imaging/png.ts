/**
 * A direct decoder for the PNGs radiographs are saved as: gray, 8 or 16 bit, not interlaced, with no chunk that
 * could change what the pixels mean. NIH's and most exported films are exactly that, and decoding them with
 * node:zlib and an unfilter loop here skips sharp's per-call pipeline set-up and its copy out of libvips (the
 * largest part of a training image's decode). Anything else, and anything malformed, is left to sharp, so sharp's
 * error messages and its handling of colour, alpha, EXIF, ICC and gamma stay the only ones.
 * Node-only (node:zlib).
 */
import { crc32, inflateSync } from 'node:zlib';

/** Chunks that carry no pixel meaning: a file with only these (and IHDR, IDAT, IEND) is decoded here. */
const INERT_CHUNKS = new Set(['tIME', 'tEXt', 'zTXt', 'iTXt', 'pHYs']);
const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: number;
}

export interface GrayPng {
  width: number;
  height: number;
  /** Row-major gray samples: Uint8Array for 8-bit files, Uint16Array (native byte order) for 16-bit ones. */
  pixels: Uint8Array | Uint16Array;
}

/**
 * The IHDR of a PNG when it is a plain gray image this module decodes (see the module comment); undefined for
 * every other file, which then goes to sharp. Reads the header only.
 */
export function plainGrayPngHeader(bytes: Uint8Array): PngHeader | undefined {
  if (bytes.length < 8 + 25 + 12) return undefined;
  for (let i = 0; i < 8; i++) if (bytes[i] !== SIGNATURE[i]) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(8) !== 13 || chunkType(bytes, 12) !== 'IHDR') return undefined;
  const header: PngHeader = {
    width: view.getUint32(16),
    height: view.getUint32(20),
    bitDepth: bytes[24],
    colorType: bytes[25],
    interlace: bytes[28],
  };
  const plain = header.width > 0 && header.height > 0 && header.colorType === 0 && (header.bitDepth === 8 || header.bitDepth === 16) && header.interlace === 0 && bytes[26] === 0 && bytes[27] === 0;
  return plain ? header : undefined;
}

/**
 * Decodes a plain gray PNG whose header `plainGrayPngHeader` accepted and whose size the caller has checked
 * against its budget. Returns undefined, having decoded nothing into the result, when the file has any other chunk,
 * a bad CRC, a stream that does not inflate to exactly the image, or an unknown filter: sharp then decodes it (or
 * names what is wrong with it).
 */
export function decodePlainGrayPng(bytes: Uint8Array, header: PngHeader, maxDecodedBytes: number): GrayPng | undefined {
  const { width, height, bitDepth } = header;
  const bpp = bitDepth / 8;
  const stride = width * bpp;
  const rawLength = height * (stride + 1);
  if (rawLength > maxDecodedBytes) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idat: Uint8Array[] = [];
  let idatLength = 0;
  let idatClosed = false;
  let ended = false;
  for (let at = 8; !ended; ) {
    if (at + 12 > bytes.length) return undefined;
    const length = view.getUint32(at);
    if (length > bytes.length - at - 12) return undefined;
    const type = chunkType(bytes, at + 4);
    // The CRC covers the type and the data.
    if (crc32(bytes.subarray(at + 4, at + 8 + length)) !== view.getUint32(at + 8 + length)) return undefined;
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (type === 'IDAT') {
      if (idatClosed) return undefined;
      idat.push(data);
      idatLength += length;
    } else {
      if (idat.length > 0) idatClosed = true;
      if (type === 'IEND') ended = true;
      else if (type === 'IHDR' ? at !== 8 : !INERT_CHUNKS.has(type)) return undefined;
    }
    at += 12 + length;
  }
  if (idat.length === 0) return undefined;
  let raw: Uint8Array;
  try {
    // One byte more than the image allows, so too much data shows as a longer result instead of being cut off;
    // one output chunk of that size, so zlib's output is not gathered from 16 KiB pieces and copied again.
    const limit = rawLength + 1;
    raw = inflateSync(idat.length === 1 ? idat[0] : Buffer.concat(idat, idatLength), { maxOutputLength: limit, chunkSize: Math.max(64, limit) });
  } catch {
    return undefined;
  }
  if (raw.length !== rawLength) return undefined;
  // Unfiltered in place: row y moves down to y * stride, below where its filtered bytes are read from. The
  // pixels are then a view of zlib's output, unless that sits inside a shared pool (small images).
  const bytes8 = raw.byteOffset === 0 ? new Uint8Array(raw.buffer, 0, raw.length) : new Uint8Array(raw);
  if (!unfilter(bytes8, bytes8, height, stride, bpp)) return undefined;
  if (bitDepth === 8) return { width, height, pixels: bytes8.subarray(0, height * stride) };
  // Big-endian samples to native 16-bit values, each over its own two bytes.
  const pixels = new Uint16Array(bytes8.buffer, 0, width * height);
  for (let i = 0, j = 0; i < pixels.length; i++, j += 2) pixels[i] = (bytes8[j] << 8) | bytes8[j + 1];
  return { width, height, pixels };
}

function chunkType(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]);
}

/**
 * PNG's per-row filters (none, sub, up, average, Paeth) undone from `raw` (a filter byte per row) into `out`, which
 * may be `raw` itself: each output byte is written below every byte still to be read.
 */
function unfilter(raw: Uint8Array, out: Uint8Array, height: number, stride: number, bpp: number): boolean {
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const dst = y * stride;
    // The row above; for the first row it is all zeros, which turns up/average/Paeth into simpler filters.
    const up = dst - stride;
    const first = y === 0;
    if (filter === 0 || (filter === 2 && first)) out.set(raw.subarray(src, src + stride), dst);
    else if (filter === 1 || (filter === 4 && first)) {
      // Above the first row is zero: Paeth then picks the left neighbour, as sub does.
      for (let i = 0; i < bpp; i++) out[dst + i] = raw[src + i];
      for (let i = bpp; i < stride; i++) out[dst + i] = (raw[src + i] + out[dst + i - bpp]) & 0xff;
    } else if (filter === 2) {
      for (let i = 0; i < stride; i++) out[dst + i] = (raw[src + i] + out[up + i]) & 0xff;
    } else if (filter === 3) {
      if (first) {
        for (let i = 0; i < bpp; i++) out[dst + i] = raw[src + i];
        for (let i = bpp; i < stride; i++) out[dst + i] = (raw[src + i] + (out[dst + i - bpp] >> 1)) & 0xff;
      } else if (bpp === 1) average1(raw, out, src, dst, up, stride);
      else {
        for (let i = 0; i < bpp; i++) out[dst + i] = (raw[src + i] + (out[up + i] >> 1)) & 0xff;
        for (let i = bpp; i < stride; i++) out[dst + i] = (raw[src + i] + ((out[dst + i - bpp] + out[up + i]) >> 1)) & 0xff;
      }
    } else if (filter === 4) {
      if (bpp === 1 && y + 1 < height && raw[(y + 1) * (stride + 1)] === 4) {
        paethPair(raw, out, src, dst, stride);
        y++;
      } else if (bpp === 1) paeth1(raw, out, src, dst, up, stride);
      else {
        for (let i = 0; i < bpp; i++) out[dst + i] = (raw[src + i] + out[up + i]) & 0xff;
        for (let i = bpp; i < stride; i++) out[dst + i] = (raw[src + i] + paeth(out[dst + i - bpp], out[up + i], out[up + i - bpp])) & 0xff;
      }
    } else return false;
  }
  return true;
}

/** Average filter, one byte per pixel, not the first row: the left neighbour carried in a register. */
function average1(raw: Uint8Array, out: Uint8Array, src: number, dst: number, up: number, stride: number): void {
  let left = (raw[src] + (out[up] >> 1)) & 0xff;
  out[dst] = left;
  for (let i = 1; i < stride; i++) {
    left = (raw[src + i] + ((left + out[up + i]) >> 1)) & 0xff;
    out[dst + i] = left;
  }
}

/** Paeth filter, one byte per pixel, not the first row: left and upper-left neighbours carried in registers. */
function paeth1(raw: Uint8Array, out: Uint8Array, src: number, dst: number, up: number, stride: number): void {
  let upLeft = out[up];
  let left = (raw[src] + upLeft) & 0xff;
  out[dst] = left;
  for (let i = 1; i < stride; i++) {
    const above = out[up + i];
    left = (raw[src + i] + paeth(left, above, upLeft)) & 0xff;
    out[dst + i] = left;
    upLeft = above;
  }
}

/** The second row of a Paeth pair, kept aside: written in place it would overwrite the first row's input. */
let pairRow = new Uint8Array(0);

/**
 * Two consecutive Paeth rows (one byte per pixel, the first not the image's first row) in one sweep, the second
 * one pixel behind the first: each row is a chain of dependent steps, and two independent chains keep the
 * processor busier than one.
 */
function paethPair(raw: Uint8Array, out: Uint8Array, src0: number, dst0: number, stride: number): void {
  if (pairRow.length < stride) pairRow = new Uint8Array(stride);
  const row1 = pairRow;
  const up0 = dst0 - stride;
  const src1 = src0 + stride + 1;
  let upLeft0 = out[up0];
  let left0 = (raw[src0] + upLeft0) & 0xff;
  out[dst0] = left0;
  // Second row, pixel 0: only the pixel above it.
  let left1 = (raw[src1] + left0) & 0xff;
  row1[0] = left1;
  // The first row's pixels above and above-left of the second row's next pixel.
  let above1 = left0;
  let upLeft1 = left0;
  for (let i = 1; i < stride; i++) {
    const above0 = out[up0 + i];
    left0 = (raw[src0 + i] + paeth(left0, above0, upLeft0)) & 0xff;
    out[dst0 + i] = left0;
    upLeft0 = above0;
    if (i > 1) {
      left1 = (raw[src1 + i - 1] + paeth(left1, above1, upLeft1)) & 0xff;
      row1[i - 1] = left1;
      upLeft1 = above1;
    }
    above1 = left0;
  }
  if (stride > 1) row1[stride - 1] = (raw[src1 + stride - 1] + paeth(left1, above1, upLeft1)) & 0xff;
  out.set(row1.subarray(0, stride), dst0 + stride);
}

/**
 * PNG's Paeth predictor: of a (left), b (above) and c (upper left), the one nearest to a + b - c, ties going to a
 * then b. Written without branches: the choice depends on the image, so branches would be mispredicted often.
 */
function paeth(a: number, b: number, c: number): number {
  const x = b - c;
  const y = a - c;
  const z = x + y;
  const sx = x >> 31;
  const sy = y >> 31;
  const sz = z >> 31;
  const pa = (x ^ sx) - sx;
  const pb = (y ^ sy) - sy;
  const pc = (z ^ sz) - sz;
  // All ones when b or c is strictly nearer than a; then all ones when c is strictly nearer than b.
  const notA = ((pb - pa) | (pc - pa)) >> 31;
  const cOverB = (pc - pb) >> 31;
  return (a & ~notA) | (((b & ~cOverB) | (c & cOverB)) & notA);
}
