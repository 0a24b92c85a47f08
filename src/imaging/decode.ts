/**
 * Node front door for decoding: reads files, detects the format by content, decodes plain gray PNGs with png.ts,
 * other PNGs and JPEGs with sharp, and DICOM with the pure decoder. Node-only (fs, zlib, sharp); the browser uses
 * decodeDicom and its own PNG/JPEG decoding.
 */
import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { checkDeclaredSize, ImageTooLargeError, resolveBudget, type DecodeBudget } from './budget.js';
import { detectFormat } from './detect.js';
import type { DicomDecodeOptions } from './dicom/decode-dicom.js';
import type { DecodedImage, ImageFormat } from './image.js';
import { decodePlainGrayPng, plainGrayPngHeader } from './png.js';

export type DecodeOptions = DicomDecodeOptions;

/**
 * Reads and decodes an image file; every failure is an Error naming the file and the problem. The file is read on
 * the calling thread: an image file reads in a small part of its decode time, while each of the four steps of
 * fs.promises' readFile (open, stat, read, close) waits for a thread-pool thread to be scheduled, which on a busy
 * machine costs more than the read.
 */
export async function decodeImageFile(path: string, options: DecodeOptions = {}): Promise<DecodedImage> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${path}: file not found`);
    if (code === 'EISDIR') throw new Error(`${path}: is a directory, not an image file`);
    throw new Error(`${path}: cannot read file (${(e as Error).message})`);
  }
  return decodeImage(bytes, path, options);
}

/** Decodes image bytes (PNG, JPEG or DICOM, detected by content); `source` names them in errors. */
export async function decodeImage(bytes: Uint8Array, source = '<buffer>', options: DecodeOptions = {}): Promise<DecodedImage> {
  if (bytes.length === 0) throw new Error(`${source}: file is empty`);
  const detected = detectFormat(bytes);
  if (!detected) {
    const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new Error(`${source}: unrecognised image format (not PNG, JPEG or DICOM; first bytes ${head})`);
  }
  if (detected.format === 'dicom') {
    const { decodeDicom, tooMuchInflated } = await dicom();
    return decodeDicom(bytes, source, { inflateRaw: (data, limit) => inflateCapped(data, limit, source, tooMuchInflated), ...options });
  }
  return decodeRaster(bytes, source, detected.format, options);
}

/**
 * sharp and the DICOM decoder (with its WASM codecs) are loaded on first use: most of a worker thread's start-up
 * went into loading them, and a worker decoding plain gray PNGs needs neither.
 */
let sharpModule: Promise<typeof import('sharp')> | undefined;
let dicomModule: Promise<typeof import('./dicom/decode-dicom.js')> | undefined;
const loadSharp = async () => (await (sharpModule ??= import('sharp'))).default;
const dicom = () => (dicomModule ??= import('./dicom/decode-dicom.js'));

/** node:zlib's raw inflate, stopped by zlib itself as soon as the output passes `limit` bytes. */
function inflateCapped(data: Uint8Array, limit: number, source: string, tooMuchInflated: (source: string, limit: number) => Error): Uint8Array {
  try {
    return inflateRawSync(data, { maxOutputLength: limit });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooMuchInflated(source, limit);
    throw e;
  }
}

/**
 * Plain gray PNGs (most radiographs) through png.ts; other PNGs and JPEGs through sharp (libpng / libjpeg-turbo),
 * converted to one gray channel with PIL's 'L' weights.
 */
async function decodeRaster(bytes: Uint8Array, source: string, format: ImageFormat, options: DecodeOptions): Promise<DecodedImage> {
  const notes: string[] = [];
  const budget = resolveBudget(options.budget);
  const minSide = options.minSide ?? 8;
  const header = format === 'png' ? plainGrayPngHeader(bytes) : undefined;
  if (header !== undefined) {
    checkDeclaredSize(source, header.width, header.height, budget);
    // Images over the working resolution go to sharp, which shrinks them while decoding.
    const png = Math.max(header.width, header.height) <= budget.maxWorkingSide ? decodePlainGrayPng(bytes, header, budget.maxDecodedBytes) : undefined;
    if (png !== undefined) {
      const { width, height, pixels } = png;
      if (width < minSide || height < minSide) throw new Error(`${source}: image is ${width}x${height}, smaller than ${minSide} pixels on a side`);
      const sixteen = header.bitDepth === 16;
      return { width, height, pixels, maxValue: sixteen ? 65535 : 255, format, source, metadata: { bitsStored: header.bitDepth, colourfulness: 0 }, notes };
    }
  }
  let decoded: Awaited<ReturnType<typeof rawPixels>>;
  try {
    decoded = await rawPixels(bytes, source, budget);
  } catch (e) {
    if (e instanceof ImageTooLargeError) throw e;
    throw new Error(`${source}: cannot decode ${format.toUpperCase()}: ${(e as Error).message}`);
  }
  const { data, info, orientation, colour, space, downscaledFrom } = decoded;

  const { width, height, channels } = info;
  if (width < minSide || height < minSide) throw new Error(`${source}: image is ${width}x${height}, smaller than ${minSide} pixels on a side`);
  if (orientation && orientation > 1) notes.push(`EXIF orientation ${orientation} applied`);
  if (downscaledFrom) notes.push(`downscaled from ${downscaledFrom} to ${width}x${height} while decoding (working resolution: ${budget.maxWorkingSide} px on the long side)`);
  const sixteen = data.byteLength === width * height * channels * 2;
  const samples = sixteen
    ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2)
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const count = width * height;
  if (samples.length !== count * channels) throw new Error(`${source}: decoder returned ${samples.length} samples for ${width}x${height}x${channels}`);
  const maxValue = sixteen ? 65535 : 255;
  const pixels = sixteen ? new Uint16Array(count) : new Uint8Array(count);
  const hasAlpha = channels === 2 || channels === 4;
  // Radiographs are gray: the mean chroma of a colour file tells a photo or a drawing from a film saved in colour.
  let colourfulness = 0;
  if (channels <= 2) {
    for (let i = 0; i < count; i++) pixels[i] = samples[i * channels];
  } else {
    // PIL's convert('L'): L = R*299/1000 + G*587/1000 + B*114/1000, in its fixed-point form (exact when R = G = B).
    let chroma = 0;
    for (let i = 0, j = 0; i < count; i++, j += channels) {
      const r = samples[j];
      const g = samples[j + 1];
      const b = samples[j + 2];
      pixels[i] = Math.floor((r * 19595 + g * 38470 + b * 7471 + 0x8000) / 65536);
      chroma += Math.max(r, g, b) - Math.min(r, g, b);
    }
    colourfulness = chroma / (count * maxValue);
  }
  if (colour) {
    const from = space === 'cmyk' ? 'CMYK (via sRGB)' : hasAlpha ? 'RGBA' : 'RGB';
    notes.push(`${from} converted to gray (ITU-R 601 luma, as PIL's convert('L'))`);
  }
  if (hasAlpha) {
    let opaque = true;
    for (let j = channels - 1; j < samples.length; j += channels) {
      if (samples[j] !== maxValue) {
        opaque = false;
        break;
      }
    }
    notes.push(opaque ? 'alpha channel (fully opaque) dropped' : 'alpha channel is not opaque; ignored (transparent pixels keep their colour)');
  }
  return {
    width,
    height,
    pixels,
    maxValue,
    format,
    source,
    metadata: { bitsStored: sixteen ? 16 : 8, colourfulness },
    notes,
  };
}

/**
 * Raw interleaved samples at the file's own depth (8 or 16 bit), EXIF orientation applied. The output colourspace is
 * set explicitly: left alone, libvips hands gray+alpha and some gray JPEGs back as sRGB and 16-bit colour as 8-bit.
 * The header's size is checked against the budget before any pixel is decoded; an image larger than the working
 * resolution is shrunk while it is decoded (libjpeg's shrink-on-load, then libvips' streaming resize), so the full
 * resolution is never held.
 */
async function rawPixels(bytes: Uint8Array, source: string, budget: DecodeBudget) {
  // failOn 'warning' turns truncated or corrupt files into errors instead of partially grey images.
  // The header alone first (no pixels decoded), so the refusal names the size and the budget.
  const sharp = await loadSharp();
  const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  if (meta.width === undefined || meta.height === undefined) throw new Error('no image size in the header');
  checkDeclaredSize(source, meta.width, meta.height, budget);
  const image = sharp(bytes, { failOn: 'warning', limitInputPixels: budget.maxPixels, sequentialRead: true });
  const sixteen = meta.depth === 'ushort';
  const gray = meta.space === 'b-w' || meta.space === 'grey16';
  // 8-bit gray+alpha has no two-channel 8-bit target; as sRGB+alpha its three colour channels are equal.
  const target = gray ? (sixteen ? 'grey16' : meta.hasAlpha ? 'srgb' : 'b-w') : sixteen ? 'rgb16' : 'srgb';
  const orientation = meta.orientation;
  const oriented = orientation && orientation > 1 ? image.autoOrient() : image;
  const max = budget.maxWorkingSide;
  const large = Math.max(meta.width, meta.height) > max;
  // Lanczos-3, libvips' default; JPEGs are first shrunk by libjpeg (by 2, 4 or 8) while decoding.
  const sized = large ? oriented.resize(max, max, { fit: 'inside', withoutEnlargement: true }) : oriented;
  const { data, info } = await sized
    .toColourspace(target)
    .raw({ depth: sixteen ? 'ushort' : 'uchar' })
    .toBuffer({ resolveWithObject: true });
  const expected = info.width * info.height * info.channels * (sixteen ? 2 : 1);
  if (data.byteLength !== expected || data.byteLength > budget.maxDecodedBytes) {
    throw new Error(`the decoder returned ${data.byteLength} bytes for ${info.width}x${info.height}x${info.channels} (budget ${budget.maxDecodedBytes})`);
  }
  const downscaledFrom = large ? `${meta.width}x${meta.height}` : undefined;
  return { data, info, orientation, colour: !gray, space: meta.space, downscaledFrom };
}
