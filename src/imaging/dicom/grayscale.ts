/**
 * The DICOM grayscale display pipeline (PS3.3 C.11): stored value -> modality transform (Rescale or Modality LUT)
 * -> VOI (VOI LUT or window) -> inversion (MONOCHROME1 / Presentation LUT INVERSE) -> output gray level.
 * Pure TypeScript: the whole chain is folded into one lookup table over the 2^BitsStored stored values.
 */
import type { AppliedWindow } from '../image.js';

export interface Lut {
  /** Stored (or modality) value mapped to the first entry; lower inputs clamp to the first entry. */
  firstMapped: number;
  /** Bits per entry from the LUT Descriptor (output range is [0, 2^bits - 1]). */
  bits: number;
  data: Uint16Array;
}

export type ModalityTransform = { kind: 'rescale'; slope: number; intercept: number } | { kind: 'lut'; lut: Lut };

export type VoiTransform =
  | { kind: 'window'; center: number; width: number; function: 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID' }
  | { kind: 'lut'; lut: Lut };

export interface GrayscaleParams {
  bitsStored: number;
  signed: boolean;
  modality: ModalityTransform;
  /** Undefined: window over the stored range through the modality transform. */
  voi?: VoiTransform;
  invert: boolean;
  /** Output white level, e.g. 2^BitsStored - 1. */
  outputMax: number;
}

export interface DisplayLut {
  /** Output gray level indexed by the stored value's bit pattern (two's complement within Bits Stored). */
  table: Uint8Array | Uint16Array;
  applied: AppliedWindow;
}

/** Folds the grayscale pipeline into one table over all 2^BitsStored stored values. */
export function buildDisplayLut(p: GrayscaleParams): DisplayLut {
  const size = 2 ** p.bitsStored;
  const half = size / 2;
  const modalityValues = new Float64Array(size);
  let mMin = Infinity;
  let mMax = -Infinity;
  for (let i = 0; i < size; i++) {
    const stored = p.signed ? i - half : i;
    const m = p.modality.kind === 'rescale' ? stored * p.modality.slope + p.modality.intercept : lookup(p.modality.lut, stored);
    modalityValues[i] = m;
    if (m < mMin) mMin = m;
    if (m > mMax) mMax = m;
  }
  // Loop index i runs in value order; for signed data the bit pattern of value i - half is i ^ half.
  const table = p.outputMax <= 255 ? new Uint8Array(size) : new Uint16Array(size);
  const voi = p.voi;
  const fraction = voiFunction(voi, mMin, mMax);
  for (let i = 0; i < size; i++) {
    const level = Math.round(Math.min(1, Math.max(0, fraction(modalityValues[i]))) * p.outputMax);
    // Inverting after rounding makes an inverted image the exact complement of the non-inverted one.
    table[p.signed ? i ^ half : i] = p.invert ? p.outputMax - level : level;
  }
  let applied: AppliedWindow;
  if (voi === undefined) applied = { kind: 'stored-range', min: mMin, max: mMax };
  else if (voi.kind === 'window') applied = { kind: 'window', center: voi.center, width: voi.width, function: voi.function };
  else applied = { kind: 'voi-lut', entries: voi.lut.data.length, firstMapped: voi.lut.firstMapped, bits: voi.lut.bits };
  return { table, applied };
}

/** Maps a modality value to [0, 1] (before inversion), per PS3.3 C.11.2.1.2 with ymin = 0, ymax = 1. */
function voiFunction(voi: VoiTransform | undefined, mMin: number, mMax: number): (x: number) => number {
  if (voi === undefined) {
    const range = mMax - mMin;
    return range > 0 ? (x) => (x - mMin) / range : () => 0;
  }
  if (voi.kind === 'lut') {
    const lut = voi.lut;
    const top = 2 ** lut.bits - 1;
    return (x) => lookup(lut, x) / top;
  }
  const { center: c, width: w } = voi;
  switch (voi.function) {
    case 'LINEAR': {
      const low = c - 0.5 - (w - 1) / 2;
      const high = c - 0.5 + (w - 1) / 2;
      return (x) => (x <= low ? 0 : x > high ? 1 : (x - (c - 0.5)) / (w - 1) + 0.5);
    }
    case 'LINEAR_EXACT':
      return (x) => (x <= c - w / 2 ? 0 : x > c + w / 2 ? 1 : (x - c) / w + 0.5);
    case 'SIGMOID':
      return (x) => 1 / (1 + Math.exp((-4 * (x - c)) / w));
  }
}

/** LUT lookup with clamping to the first/last entry (PS3.3 C.11.1.1.1). Inputs are rounded to the nearest entry. */
export function lookup(lut: Lut, value: number): number {
  const i = Math.round(value) - lut.firstMapped;
  if (i <= 0) return lut.data[0];
  if (i >= lut.data.length) return lut.data[lut.data.length - 1];
  return lut.data[i];
}

export interface StoredLayout {
  bitsAllocated: 8 | 16;
  bitsStored: number;
  /** Right shift to bring the High Bit to bitsStored - 1 (0 for conforming data). */
  shift: number;
  signed: boolean;
}

/**
 * Applies the display table to raw samples (little-endian bytes, one sample per pixel). High bits above Bits Stored
 * (overlays, garbage) are masked off, which also makes the sign extension of signed samples irrelevant.
 */
export function applyDisplayLut(raw: Uint8Array, count: number, layout: StoredLayout, display: DisplayLut): Uint8Array | Uint16Array {
  const out = display.table instanceof Uint8Array ? new Uint8Array(count) : new Uint16Array(count);
  const table = display.table;
  const mask = 2 ** layout.bitsStored - 1;
  const shift = layout.shift;
  if (layout.bitsAllocated === 8) {
    for (let i = 0; i < count; i++) out[i] = table[(raw[i] >> shift) & mask];
  } else {
    for (let i = 0, j = 0; i < count; i++, j += 2) out[i] = table[((raw[j] | (raw[j + 1] << 8)) >> shift) & mask];
  }
  return out;
}
