/**
 * A tiny test-only DICOM writer, so tests can build files that no real sample provides (VOI LUT Sequence, SIGMOID,
 * AP/lateral views, signed data, multi-frame, colour, broken files) from real pixels. Explicit or implicit VR,
 * little or big endian, native or encapsulated pixel data, with or without a Part 10 header.
 */

export type ElementValue = string | number[] | Uint8Array | Element[][];

export interface Element {
  /** 0xGGGGEEEE */
  tag: number;
  vr: string;
  value: ElementValue;
}

export interface WriteOptions {
  transferSyntax?: string;
  /** false: bare data set without preamble and file-meta header. */
  part10?: boolean;
  /** Compressed frames: written as encapsulated Pixel Data with these fragments (one frame). */
  fragments?: Uint8Array[];
}

export const IMPLICIT_LE = '1.2.840.10008.1.2';
export const EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const EXPLICIT_BE = '1.2.840.10008.1.2.2';

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OW', 'SQ', 'UC', 'UN', 'UR', 'UT']);

export function el(tag: number, vr: string, value: ElementValue): Element {
  return { tag, vr, value };
}

export function writeDicom(elements: Element[], options: WriteOptions = {}): Uint8Array {
  const ts = options.transferSyntax ?? EXPLICIT_LE;
  const implicit = ts === IMPLICIT_LE;
  const bigEndian = ts === EXPLICIT_BE;
  const body = elements.filter((e) => e.tag >>> 16 !== 0x0002 && !(options.fragments && e.tag === 0x7fe00010));
  const out = new Bytes();
  if (options.part10 !== false) {
    out.raw(new Uint8Array(128));
    out.raw(ascii('DICM'));
    const sopClass = (elements.find((e) => e.tag === 0x00080016)?.value as string) ?? '1.2.840.10008.5.1.4.1.1.1.1';
    const meta = new Bytes();
    writeElements(meta, [
      el(0x00020001, 'OB', new Uint8Array([0, 1])),
      el(0x00020002, 'UI', sopClass),
      el(0x00020003, 'UI', '1.2.826.0.1.3680043.8.498.1'),
      el(0x00020010, 'UI', ts),
      el(0x00020012, 'UI', '1.2.826.0.1.3680043.8.498.2'),
    ], false, false);
    writeElements(out, [el(0x00020000, 'UL', [meta.length])], false, false);
    out.raw(meta.bytes());
  }
  writeElements(out, body, implicit, bigEndian);
  if (options.fragments) {
    out.tag(0x7fe00010, bigEndian);
    out.raw(ascii('OB'));
    out.u16(0, bigEndian);
    out.u32(0xffffffff, bigEndian);
    const items = [new Uint8Array(0), ...options.fragments];
    for (const fragment of items) {
      const padded = fragment.length % 2 ? concat(fragment, new Uint8Array(1)) : fragment;
      out.tag(0xfffee000, bigEndian);
      out.u32(padded.length, bigEndian);
      out.raw(padded);
    }
    out.tag(0xfffee0dd, bigEndian);
    out.u32(0, bigEndian);
  }
  return out.bytes();
}

function writeElements(out: Bytes, elements: Element[], implicit: boolean, bigEndian: boolean): void {
  for (const e of [...elements].sort((a, b) => (a.tag >>> 0) - (b.tag >>> 0))) {
    const value = e.vr === 'SQ' ? encodeSequence(e.value as Element[][], implicit, bigEndian) : encodeValue(e, bigEndian);
    out.tag(e.tag, bigEndian);
    if (implicit) {
      out.u32(value.length, bigEndian);
    } else {
      out.raw(ascii(e.vr));
      if (LONG_VRS.has(e.vr)) {
        out.u16(0, bigEndian);
        out.u32(value.length, bigEndian);
      } else {
        out.u16(value.length, bigEndian);
      }
    }
    out.raw(value);
  }
}

function encodeSequence(items: Element[][], implicit: boolean, bigEndian: boolean): Uint8Array {
  const out = new Bytes();
  for (const item of items) {
    const inner = new Bytes();
    writeElements(inner, item, implicit, bigEndian);
    out.tag(0xfffee000, bigEndian);
    out.u32(inner.length, bigEndian);
    out.raw(inner.bytes());
  }
  return out.bytes();
}

function encodeValue(e: Element, bigEndian: boolean): Uint8Array {
  const v = e.value;
  if (typeof v === 'string') {
    const bytes = ascii(v);
    return bytes.length % 2 ? concat(bytes, new Uint8Array([e.vr === 'UI' ? 0 : 0x20])) : bytes;
  }
  if (v instanceof Uint8Array) return v.length % 2 ? concat(v, new Uint8Array(1)) : v;
  const numbers = v as number[];
  const size = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8 }[e.vr];
  if (!size) throw new Error(`dicom-writer: numeric value for VR ${e.vr}`);
  const buf = new Uint8Array(numbers.length * size);
  const view = new DataView(buf.buffer);
  numbers.forEach((n, i) => {
    const at = i * size;
    if (e.vr === 'US') view.setUint16(at, n, !bigEndian);
    else if (e.vr === 'SS') view.setInt16(at, n, !bigEndian);
    else if (e.vr === 'UL') view.setUint32(at, n, !bigEndian);
    else if (e.vr === 'SL') view.setInt32(at, n, !bigEndian);
    else if (e.vr === 'FL') view.setFloat32(at, n, !bigEndian);
    else view.setFloat64(at, n, !bigEndian);
  });
  return buf;
}

class Bytes {
  private chunks: Uint8Array[] = [];
  length = 0;
  raw(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }
  u16(v: number, bigEndian: boolean): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, !bigEndian);
    this.raw(b);
  }
  u32(v: number, bigEndian: boolean): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, !bigEndian);
    this.raw(b);
  }
  tag(tag: number, bigEndian: boolean): void {
    this.u16(tag >>> 16, bigEndian);
    this.u16(tag & 0xffff, bigEndian);
  }
  bytes(): Uint8Array {
    return concat(...this.chunks);
  }
}

function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Pixel samples as little- or big-endian bytes for OW/OB Pixel Data. */
export function sampleBytes(samples: Uint8Array | Uint16Array | Int16Array, bigEndian = false): Uint8Array {
  if (samples instanceof Uint8Array) return samples;
  const out = new Uint8Array(samples.length * 2);
  const view = new DataView(out.buffer);
  samples.forEach((v, i) => view.setUint16(2 * i, v & 0xffff, !bigEndian));
  return out;
}

export interface GrayImage {
  rows: number;
  columns: number;
  bitsAllocated: 8 | 16;
  bitsStored: number;
  signed?: boolean;
  photometric?: string;
  samples: Uint8Array | Uint16Array | Int16Array;
}

/** The Image Pixel module plus identifying attributes for a grayscale image; add more elements as needed. */
export function grayImage(image: GrayImage, extra: Element[] = [], bigEndian = false): Element[] {
  return [
    el(0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.1.1'),
    el(0x00080018, 'UI', '1.2.826.0.1.3680043.8.498.3'),
    el(0x00080060, 'CS', 'DX'),
    el(0x00280002, 'US', [1]),
    el(0x00280004, 'CS', image.photometric ?? 'MONOCHROME2'),
    el(0x00280010, 'US', [image.rows]),
    el(0x00280011, 'US', [image.columns]),
    el(0x00280100, 'US', [image.bitsAllocated]),
    el(0x00280101, 'US', [image.bitsStored]),
    el(0x00280102, 'US', [image.bitsStored - 1]),
    el(0x00280103, 'US', [image.signed ? 1 : 0]),
    el(0x7fe00010, image.bitsAllocated === 8 ? 'OB' : 'OW', sampleBytes(image.samples, bigEndian)),
    ...extra,
  ];
}

/** Replaces or adds elements by tag. */
export function withElements(elements: Element[], changes: Element[]): Element[] {
  const tags = new Set(changes.map((c) => c.tag));
  return [...elements.filter((e) => !tags.has(e.tag)), ...changes];
}
