/**
 * The one numeric pipeline from decoded image to model input, shared by training, inference and the browser:
 * gray / maxValue -> resize (pad | crop | stretch) -> round to uint8 "model pixels" -> (x / 255 - mean) / std,
 * gray replicated to the spec's channels. Pure TypeScript.
 */
import type { DecodedImage } from './image.js';
import { computeGeometry, type Geometry } from './geometry.js';
import { resample, type Box } from './resample.js';
import { validatePreprocessingSpec, type PreprocessingSpec } from './spec.js';

export interface ModelPixels {
  /** spec.height x spec.width gray values 0..255, row-major: what a training cache stores. */
  pixels: Uint8Array;
  geometry: Geometry;
}

/** A CHW float32 tensor; structurally a HostTensor<'float32'> without the batch axis. */
export interface ModelTensor {
  dtype: 'float32';
  dims: [number, number, number];
  data: Float32Array;
}

/** Resizes a decoded image to the model's grid and rounds to uint8: the "model pixels" of `spec`. */
export function toModelPixels(image: DecodedImage, spec: PreprocessingSpec): ModelPixels {
  validatePreprocessingSpec(spec);
  const { width: sw, height: sh, pixels: src, maxValue } = image;
  if (src.length !== sw * sh) throw new Error(`${image.source}: ${src.length} pixels for a ${sw}x${sh} image`);
  const geometry = computeGeometry(sw, sh, spec);
  const { width, height } = spec;
  const out = new Uint8Array(width * height);
  const toByte = 255 / maxValue;
  if (spec.resize === 'pad') {
    const cw = Math.round(sw * geometry.scaleX);
    const ch = Math.round(sh * geometry.scaleY);
    const content = resample(src, sw, sh, cw, ch);
    for (let y = 0; y < ch; y++) {
      const dst = (y + geometry.offsetY) * width + geometry.offsetX;
      for (let x = 0; x < cw; x++) out[dst + x] = toUint8(content[y * cw + x] * toByte);
    }
  } else {
    const box: Box = {
      x0: -geometry.offsetX / geometry.scaleX,
      y0: -geometry.offsetY / geometry.scaleY,
      x1: (width - geometry.offsetX) / geometry.scaleX,
      y1: (height - geometry.offsetY) / geometry.scaleY,
    };
    const resized = resample(src, sw, sh, width, height, box);
    for (let i = 0; i < resized.length; i++) out[i] = toUint8(resized[i] * toByte);
  }
  return { pixels: out, geometry };
}

function toUint8(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/** Model pixels (uint8, spec.height x spec.width) -> normalised CHW float32, gray replicated to spec.channels. */
export function normalize(pixels: Uint8Array, spec: PreprocessingSpec): Float32Array {
  validatePreprocessingSpec(spec);
  const plane = spec.width * spec.height;
  if (pixels.length !== plane) throw new Error(`normalize: ${pixels.length} pixels, expected ${spec.height}x${spec.width}`);
  const out = allocateFloat32(plane * spec.channels);
  // One image between decodes: the 1 KiB table stays in cache where the pair table would not.
  normalizeInto(pixels, 0, spec, normalizationTables(spec), out, 0, false);
  return out;
}

/** A channel's table: float32 (v / 255 - mean) / std for each gray value v, and the same for each pair of values. */
export interface NormalizationTable {
  single: Float32Array;
  /**
   * Entry a + 256 * b holds single[a] then single[b] (as 8 bytes, read as one float64): two output values per
   * lookup, for little-endian machines. Built on first use.
   */
  pairs?: Float64Array;
}

/** Tables by "mean/std", kept for the few statistics a process uses (a pair table is 512 KiB). */
const tableCache = new Map<string, NormalizationTable>();
const TABLES_KEPT = 8;

/**
 * The table of each channel; a channel with the same mean and std as an earlier one gets that channel's table
 * (normalizeInto then copies its plane).
 */
export function normalizationTables(spec: PreprocessingSpec): NormalizationTable[] {
  const tables: NormalizationTable[] = [];
  for (let c = 0; c < spec.channels; c++) {
    const key = `${spec.mean[c]}/${spec.std[c]}`;
    let table = tableCache.get(key);
    if (table === undefined) {
      const single = new Float32Array(256);
      for (let v = 0; v < 256; v++) single[v] = (v / 255 - spec.mean[c]) / spec.std[c];
      table = { single };
      if (tableCache.size >= TABLES_KEPT) tableCache.delete(tableCache.keys().next().value as string);
      tableCache.set(key, table);
    }
    tables.push(table);
  }
  return tables;
}

/**
 * Writes the normalised CHW planes of one image (the plane of model pixels at `pixels[from]`) into `out` at `at`:
 * each channel through its table, or copied from the earlier channel that shares its table. `pairs`: look up two
 * pixels at a time in the 512 KiB pair table, which pays where many images are normalised one after another.
 */
export function normalizeInto(pixels: Uint8Array, from: number, spec: PreprocessingSpec, tables: readonly NormalizationTable[], out: Float32Array, at: number, pairs: boolean): void {
  const plane = spec.width * spec.height;
  for (let c = 0; c < tables.length; c++) {
    const earlier = tables.indexOf(tables[c]);
    if (earlier < c) out.copyWithin(at + c * plane, at + earlier * plane, at + (earlier + 1) * plane);
    else lookup(pixels, from, plane, tables[c], out, at + c * plane, pairs);
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function pairTable(table: NormalizationTable): Float64Array {
  if (table.pairs === undefined) {
    const values = new Float32Array(2 * 65536);
    const single = table.single;
    for (let b = 0, k = 0; b < 256; b++) {
      for (let a = 0; a < 256; a++, k += 2) {
        values[k] = single[a];
        values[k + 1] = single[b];
      }
    }
    // Table values are finite or infinite, never NaN, so no float64 built from two of them is a NaN that a
    // load and store could rewrite: the 8 bytes travel unchanged.
    table.pairs = new Float64Array(values.buffer);
  }
  return table.pairs;
}

/**
 * out[at + i] = table[pixels[from + i]] for i < n. Where the memory is aligned for it, four pixels are read as one
 * 32-bit word, and written as two float64s from the pair table (`usePairs`) or four values from the table;
 * elsewhere one pixel at a time.
 */
function lookup(pixels: Uint8Array, from: number, n: number, table: NormalizationTable, out: Float32Array, at: number, usePairs: boolean): void {
  let i = 0;
  const offset = pixels.byteOffset + from;
  const outOffset = out.byteOffset + at * 4;
  if (usePairs && LITTLE_ENDIAN && offset % 4 === 0 && outOffset % 8 === 0 && n >= 4096) {
    const words = new Uint32Array(pixels.buffer, offset, n >> 2);
    const pairs = pairTable(table);
    const target = new Float64Array(out.buffer, outOffset, words.length * 2);
    for (let w = 0, o = 0; w < words.length; w++, o += 2) {
      const q = words[w];
      target[o] = pairs[q & 0xffff];
      target[o + 1] = pairs[q >>> 16];
    }
    i = words.length * 4;
  }
  const single = table.single;
  if (i === 0 && LITTLE_ENDIAN && offset % 4 === 0) {
    const words = new Uint32Array(pixels.buffer, offset, n >> 2);
    for (let w = 0, o = at; w < words.length; w++, o += 4) {
      const q = words[w];
      out[o] = single[q & 255];
      out[o + 1] = single[(q >>> 8) & 255];
      out[o + 2] = single[(q >>> 16) & 255];
      out[o + 3] = single[q >>> 24];
    }
    i = words.length * 4;
  }
  for (; i < n; i++) out[at + i] = single[pixels[from + i]];
}

/**
 * A Float32Array of `length` that the caller fills entirely: under Node its memory is not zeroed first (a whole
 * batch tensor is megabytes); elsewhere (the browser) an ordinary one.
 */
export function allocateFloat32(length: number): Float32Array {
  const NodeBuffer = (globalThis as { Buffer?: { allocUnsafeSlow(size: number): Uint8Array } }).Buffer;
  return NodeBuffer !== undefined ? new Float32Array(NodeBuffer.allocUnsafeSlow(length * 4).buffer, 0, length) : new Float32Array(length);
}

/** decoded image -> model input tensor [channels, height, width] and the geometry of the mapping. */
export function preprocess(image: DecodedImage, spec: PreprocessingSpec): { tensor: ModelTensor; geometry: Geometry; pixels: Uint8Array } {
  const { pixels, geometry } = toModelPixels(image, spec);
  const tensor: ModelTensor = { dtype: 'float32', dims: [spec.channels, spec.height, spec.width], data: normalize(pixels, spec) };
  return { tensor, geometry, pixels };
}
