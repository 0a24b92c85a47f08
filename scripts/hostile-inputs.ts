/**
 * Hostile inputs: small files that declare or inflate to huge images (issue 17's decompression bombs), built in
 * memory in well under a second, so tests and the server's hostile-input suite can use the real thing.
 *
 *   node dist/scripts/hostile-inputs.js [out-dir]    # writes each file (default: ./hostile-inputs)
 *
 * Deflate bombs are made without ever holding the inflated bytes: each 1 MiB of zeros is raw-deflated once with a
 * full flush (a byte-aligned, self-contained block run), and that same block run is repeated; an empty final block
 * ends the stream. A PNG's zlib stream adds the Adler-32 of its all-zero data, which is (n mod 65521) << 16 | 1.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, deflateRawSync } from 'node:zlib';
import dcmjsCodecs from 'dcmjs-codecs';
import sharp from 'sharp';
import { pngFile } from '../src/imaging/encode.js';
import { el, grayImage, writeDicom, type Element } from '../test/imaging/dicom-writer.js';

export interface HostileInput {
  /** File name, also the `source` named in errors. */
  name: string;
  bytes: Uint8Array;
  /** What it does to a decoder without a budget. */
  attack: string;
  /** 'refused': a clear error; 'downscaled': decoded, at most the working resolution. */
  expect: 'refused' | 'downscaled';
  /** What the refusal says (tests match it). */
  error?: RegExp;
}

const MiB = 2 ** 20;
const FULL = { finishFlush: constants.Z_FULL_FLUSH } as const;
let zeroBlock: Buffer | undefined;

/** Raw deflate of `prefix` followed by `zeros` zero bytes, made without allocating the zeros (at most 1 MiB). */
export function deflatedZeros(zeros: number, prefix: Uint8Array = new Uint8Array(0)): Buffer {
  zeroBlock ??= deflateRawSync(Buffer.alloc(MiB), { level: 9, ...FULL });
  const parts: Buffer[] = [];
  if (prefix.length) parts.push(deflateRawSync(prefix, { level: 9, ...FULL }));
  for (let left = zeros; left > 0; left -= MiB) parts.push(left >= MiB ? zeroBlock : deflateRawSync(Buffer.alloc(left), { level: 9, ...FULL }));
  parts.push(Buffer.from([0x03, 0x00])); // final, empty, fixed-Huffman block
  return Buffer.concat(parts);
}

/** A PNG whose rows are all zero (filter byte and samples), any declared size, a few hundred bytes per MiB. */
export function zeroPng(width: number, height: number, bitDepth: 8 | 16, colorType: 0 | 2 | 4 | 6): Uint8Array {
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colorType];
  const n = height * (1 + (width * channels * bitDepth) / 8);
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((n % 65521) << 16) | 1) >>> 0);
  const idat = Buffer.concat([Buffer.from([0x78, 0x01]), deflatedZeros(n), adler]);
  return pngFile({ width, height, bitDepth, colorType }, idat);
}

/** The elements of a 16-bit MONOCHROME2 image of `rows` x `columns` without its pixel data. */
function header(rows: number, columns: number, bits: 8 | 16 = 16): Element[] {
  return grayImage({ rows, columns, bitsAllocated: bits, bitsStored: bits === 8 ? 8 : 12, samples: bits === 8 ? new Uint8Array(0) : new Uint16Array(0) }).filter(
    (e) => e.tag !== 0x7fe00010,
  );
}

/** A deflated-syntax DICOM: header of rows x columns, Pixel Data declaring (and inflating to) `pixelBytes` zeros. */
export function deflateBombDicom(rows: number, columns: number, pixelBytes: number): Uint8Array {
  const plain = writeDicom(header(rows, columns), { transferSyntax: '1.2.840.10008.1.2.1.99' });
  const metaEnd = 132 + 12 + new DataView(plain.buffer, plain.byteOffset).getUint32(140, true);
  const pixelHeader = Buffer.alloc(12);
  pixelHeader.writeUInt16LE(0x7fe0, 0);
  pixelHeader.writeUInt16LE(0x0010, 2);
  pixelHeader.write('OW', 4, 'latin1');
  pixelHeader.writeUInt32LE(pixelBytes, 8);
  const body = Buffer.concat([plain.subarray(metaEnd), pixelHeader]);
  return new Uint8Array(Buffer.concat([plain.subarray(0, metaEnd), deflatedZeros(pixelBytes, body)]));
}

/** An RLE Lossless DICOM of rows x columns 16-bit zeros: two PackBits segments of 128-byte runs. */
export function rleDicom(rows: number, columns: number, runsPerSegment?: number): Uint8Array {
  const runs = runsPerSegment ?? Math.ceil((rows * columns) / 128);
  const segment = new Uint8Array(2 * runs);
  for (let i = 0; i < runs; i++) segment[2 * i] = 0x81; // replicate the next byte 128 times
  const frame = new Uint8Array(64 + 2 * segment.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, 2, true);
  view.setUint32(4, 64, true);
  view.setUint32(8, 64 + segment.length, true);
  frame.set(segment, 64);
  frame.set(segment, 64 + segment.length);
  return writeDicom(header(rows, columns), { transferSyntax: '1.2.840.10008.1.2.5', fragments: [frame] });
}

/** A small real gray JPEG whose frame header (SOF0) is rewritten to declare `width` x `height`. */
export async function jpegDeclaring(width: number, height: number, real = 64): Promise<Uint8Array> {
  const jpeg = new Uint8Array(await sharp(Buffer.alloc(real * real, 128), { raw: { width: real, height: real, channels: 1 } }).jpeg({ quality: 50 }).toBuffer());
  if (width === real && height === real) return jpeg;
  for (let at = 2; at + 9 < jpeg.length; ) {
    if (jpeg[at + 1] === 0xc0) {
      new DataView(jpeg.buffer).setUint16(at + 5, height);
      new DataView(jpeg.buffer).setUint16(at + 7, width);
      return jpeg;
    }
    at += 2 + ((jpeg[at + 2] << 8) | jpeg[at + 3]);
  }
  throw new Error('no SOF0 in sharp JPEG');
}

/** A 64 x 64 frame through dcmjs-codecs' encoder, its size fields rewritten to `width` x `height` when given. */
async function encodedFrame(codec: 'jpeg2000' | 'jpeg-ls', width?: number, height?: number): Promise<Uint8Array> {
  const { NativeCodecs, Context } = dcmjsCodecs;
  await NativeCodecs.initializeAsync();
  const samples = new Uint16Array(64 * 64).map((_, i) => (i * 7) & 0xfff);
  const context = new Context({
    width: 64,
    height: 64,
    bitsAllocated: 16,
    bitsStored: 12,
    samplesPerPixel: 1,
    pixelRepresentation: 0,
    planarConfiguration: 0,
    photometricInterpretation: 'MONOCHROME2',
    decodedBuffer: new Uint8Array(samples.buffer),
  });
  const out = (codec === 'jpeg2000' ? NativeCodecs.encodeJpeg2000(context, { lossy: false }) : NativeCodecs.encodeJpegLs(context, { lossy: false })).getEncodedBuffer()!;
  const bytes = new Uint8Array(out);
  if (width === undefined || height === undefined) return bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  if (codec === 'jpeg2000') {
    // SOC, then SIZ: marker, Lsiz, Rsiz, Xsiz, Ysiz.
    view.setUint32(8, width);
    view.setUint32(12, height);
    return bytes;
  }
  for (let at = 2; at + 9 < bytes.length; ) {
    if (bytes[at + 1] === 0xf7) {
      view.setUint16(at + 5, height);
      view.setUint16(at + 7, width);
      return bytes;
    }
    at += 2 + ((bytes[at + 2] << 8) | bytes[at + 3]);
  }
  throw new Error('no SOF55 in the JPEG-LS frame');
}

function encapsulated(rows: number, columns: number, syntax: string, frame: Uint8Array, bits: 8 | 16 = 16): Uint8Array {
  return writeDicom([...header(rows, columns, bits), el(0x00080060, 'CS', 'DX')], { transferSyntax: syntax, fragments: [frame] });
}

const tooLarge = /more than \d+ pixels \(the decode budget\); refused before decoding/;

/** Every hostile input of issue 17, and the large-but-legitimate images that must come back downscaled. */
export async function hostileInputs(): Promise<HostileInput[]> {
  return [
    {
      name: 'deflate-1.5GiB.dcm',
      bytes: deflateBombDicom(2048, 2048, 1.5 * 2 ** 30),
      attack: 'deflated explicit VR data set (2048x2048 header) whose Pixel Data inflates to 1.5 GiB of zeros',
      expect: 'refused',
      error: /the deflated data set inflates to more than \d+ bytes \(the decode budget\)/,
    },
    {
      name: 'rle-16384.dcm',
      bytes: rleDicom(16384, 16384, 64),
      attack: 'RLE Lossless DICOM declaring 16384x16384 16-bit with 64 runs per segment',
      expect: 'refused',
      error: tooLarge,
    },
    {
      name: 'jpeg-30000-in-512.dcm',
      bytes: encapsulated(512, 512, '1.2.840.10008.1.2.4.50', await jpegDeclaring(30000, 30000), 8),
      attack: 'JPEG Baseline DICOM whose header says 512x512, its frame (SOF0) 30000x30000',
      expect: 'refused',
      error: /the JPEG Baseline \(Process 1\) frame is 30000x30000, more than \d+ pixels/,
    },
    {
      name: 'jpeg-1024-in-512.dcm',
      bytes: encapsulated(512, 512, '1.2.840.10008.1.2.4.50', await jpegDeclaring(1024, 1024, 1024), 8),
      attack: 'JPEG Baseline DICOM whose header says 512x512 wrapping a real 1024x1024 JPEG (within the budget)',
      expect: 'refused',
      error: /frame is 1024x1024 but Rows\/Columns say 512x512; refused before decoding/,
    },
    {
      name: 'j2k-30000-in-512.dcm',
      bytes: encapsulated(512, 512, '1.2.840.10008.1.2.4.90', await encodedFrame('jpeg2000', 30000, 30000)),
      attack: 'JPEG 2000 DICOM whose header says 512x512, its SIZ 30000x30000',
      expect: 'refused',
      error: /the JPEG 2000 Lossless frame is 30000x30000, more than \d+ pixels/,
    },
    {
      name: 'jpegls-30000-in-512.dcm',
      bytes: encapsulated(512, 512, '1.2.840.10008.1.2.4.80', await encodedFrame('jpeg-ls', 30000, 30000)),
      attack: 'JPEG-LS DICOM whose header says 512x512, its SOF55 30000x30000',
      expect: 'refused',
      error: /the JPEG-LS Lossless frame is 30000x30000, more than \d+ pixels/,
    },
    {
      name: 'png-16384.png',
      bytes: zeroPng(16384, 16384, 8, 0),
      attack: '16384x16384 8-bit gray PNG of zeros',
      expect: 'refused',
      error: tooLarge,
    },
    {
      name: 'png-16384x16383-rgba16.png',
      bytes: zeroPng(16384, 16383, 16, 6),
      attack: '16384x16383 RGBA 16-bit PNG of zeros (2.1 GiB of samples)',
      expect: 'refused',
      error: tooLarge,
    },
    {
      name: 'png-8x1000000.png',
      bytes: zeroPng(8, 1_000_000, 8, 0),
      attack: '8 x 1,000,000 gray PNG',
      expect: 'refused',
      error: /is 8x1000000, aspect ratio 125000\.0 above \d+; not a radiograph/,
    },
    {
      name: 'jpeg-30000.jpg',
      bytes: await jpegDeclaring(30000, 30000),
      attack: 'JPEG whose frame header declares 30000x30000',
      expect: 'refused',
      error: tooLarge,
    },
    {
      name: 'png-5792x5792.png',
      bytes: zeroPng(5792, 5792, 16, 0),
      attack: '5792x5792 16-bit gray PNG: at the pixel budget, must come back at the working resolution',
      expect: 'downscaled',
    },
    {
      name: 'rle-5792x5792.dcm',
      bytes: rleDicom(5792, 5792),
      attack: '5792x5792 16-bit RLE DICOM: at the pixel budget, must come back at the working resolution',
      expect: 'downscaled',
    },
  ];
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = resolve(process.argv[2] ?? 'hostile-inputs');
  mkdirSync(out, { recursive: true });
  for (const input of await hostileInputs()) {
    writeFileSync(join(out, input.name), input.bytes);
    console.log(`${input.name}\t${input.bytes.length} bytes\t${input.attack}`);
  }
}
