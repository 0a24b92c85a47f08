/**
 * DICOM -> display-ready DecodedImage: single-frame grayscale only, every common transfer syntax.
 * Parsing by dicom-parser, decompression by dcmjs-codecs (WASM); no Node-only imports, so it can run in a browser.
 */
import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { Inflate } from 'fflate';
import { checkDeclaredSize, DEFAULT_DECODE_BUDGET, fitWithin, ImageTooLargeError, inflateLimit, resolveBudget, type DecodeBudget } from '../budget.js';
import { detectFormat } from '../detect.js';
import type { DecodedImage } from '../image.js';
import { resizeGray } from '../resample.js';
import { decodeFrame, TRANSFER_SYNTAXES, type TransferSyntax } from './codecs.js';
import { frameSize } from './frame-size.js';
import { applyDisplayLut, buildDisplayLut, type Lut, type ModalityTransform, type VoiTransform } from './grayscale.js';
import { readMetadata } from './metadata.js';

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
/** The default decode budget's pixel limit (DEFAULT_DECODE_BUDGET.maxPixels), the same for PNG, JPEG and DICOM. */
export const MAX_PIXELS = DEFAULT_DECODE_BUDGET.maxPixels;

export interface DicomDecodeOptions {
  /** Smallest accepted width and height in pixels (default 8): smaller "images" are not radiographs. */
  minSide?: number;
  /** Overrides of DEFAULT_DECODE_BUDGET (pixel, byte and aspect limits, working resolution). */
  budget?: Partial<DecodeBudget>;
  /**
   * Raw inflate of a deflated data set that throws once the output would pass `limit` bytes (Node passes
   * node:zlib's, several times faster); default inflateBounded (fflate, streamed, browser-safe).
   */
  inflateRaw?: (deflated: Uint8Array, limit: number) => Uint8Array;
}

export async function decodeDicom(bytes: Uint8Array, source: string, options: DicomDecodeOptions = {}): Promise<DecodedImage> {
  const fail = (why: string): never => {
    throw new Error(`${source}: ${why}`);
  };
  const detected = detectFormat(bytes);
  if (detected?.format !== 'dicom') fail('not a DICOM file (no DICM marker at byte 128 and no recognisable data set)');
  const notes: string[] = [];
  const budget = resolveBudget(options.budget);
  const inflate = (deflated: Uint8Array): Uint8Array => {
    const limit = inflateLimit(budget);
    if (!options.inflateRaw) return inflateBounded(deflated, limit, source);
    const inflated = options.inflateRaw(deflated, limit);
    if (inflated.length > limit) throw tooMuchInflated(source, limit);
    return inflated;
  };
  const ds = parse(bytes, source, detected?.format === 'dicom' && !detected.part10 ? detected.explicitVr : undefined, notes, inflate);

  const tsUid = ds.string('x00020010')?.trim() ?? IMPLICIT_LE;
  const syntax = TRANSFER_SYNTAXES[tsUid] ?? fail(`unsupported transfer syntax ${tsUid}`);
  const pixelData = ds.elements.x7fe00010;
  if (!pixelData) {
    if (ds.elements.x7fe00008 || ds.elements.x7fe00009) fail('float pixel data (7FE0,0008/0009) is not supported');
    const sopClass = ds.string('x00080016') ?? 'unknown';
    fail(`no Pixel Data (7FE0,0010): not an image (SOP Class UID ${sopClass})`);
  }
  const frames = ds.intString('x00280008') ?? 1;
  if (frames > 1) fail(`multi-frame DICOM (${frames} frames) is not supported; expected one radiograph per file`);
  const samplesPerPixel = ds.uint16('x00280002') ?? 1;
  const photometric = ds.string('x00280004')?.trim().toUpperCase() ?? fail('Photometric Interpretation (0028,0004) is missing');
  if (samplesPerPixel !== 1 || (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2')) {
    fail(`colour DICOM (${photometric}, ${samplesPerPixel} samples per pixel) is not supported; expected MONOCHROME1/2 grayscale`);
  }
  const height = ds.uint16('x00280010') ?? 0;
  const width = ds.uint16('x00280011') ?? 0;
  const minSide = options.minSide ?? 8;
  if (width < 1 || height < 1) fail(`image has zero size (${width}x${height})`);
  if (width < minSide || height < minSide) fail(`image is ${width}x${height}, smaller than ${minSide} pixels on a side`);
  checkDeclaredSize(source, width, height, budget);
  const bitsAllocated = ds.uint16('x00280100') ?? fail('Bits Allocated (0028,0100) is missing');
  if (bitsAllocated !== 8 && bitsAllocated !== 16) fail(`Bits Allocated ${bitsAllocated} is not supported (only 8 and 16)`);
  const bitsStored = ds.uint16('x00280101') ?? bitsAllocated;
  if (bitsStored < 1 || bitsStored > bitsAllocated) fail(`Bits Stored ${bitsStored} is not in [1, Bits Allocated ${bitsAllocated}]`);
  const highBit = ds.uint16('x00280102') ?? bitsStored - 1;
  if (highBit < bitsStored - 1 || highBit >= bitsAllocated) fail(`High Bit ${highBit} is inconsistent with Bits Stored ${bitsStored}`);
  const signed = (ds.uint16('x00280103') ?? 0) === 1;

  const count = width * height;
  let raw: Uint8Array;
  let bytesPerSample: 1 | 2;
  let shift = 0;
  if (syntax.decoder === undefined) {
    if (pixelData.encapsulatedPixelData) fail(`encapsulated pixel data in a native transfer syntax (${syntax.name})`);
    bytesPerSample = bitsAllocated === 8 ? 1 : 2;
    raw = nativePixels(ds, pixelData, count, bytesPerSample, syntax, fail);
    shift = highBit + 1 - bitsStored;
  } else {
    if (!pixelData.encapsulatedPixelData || !pixelData.fragments?.length) fail(`${syntax.name} pixel data is not encapsulated`);
    let encoded: Uint8Array;
    try {
      encoded = dicomParser.readEncapsulatedPixelDataFromFragments(ds, pixelData, 0, pixelData.fragments!.length);
    } catch (e) {
      return fail(`corrupt encapsulated pixel data: ${describe(e)}`);
    }
    // The codec allocates what the frame's own header declares: check that before decoding, not only Rows/Columns.
    let declared: ReturnType<typeof frameSize>;
    try {
      declared = frameSize(syntax.decoder, encoded);
    } catch (e) {
      return fail(`cannot decode ${syntax.name} pixel data: ${describe(e)}`);
    }
    if (declared) {
      checkDeclaredSize(source, declared.width, declared.height, budget, `the ${syntax.name} frame`);
      const same = (declared.width === width && declared.height === height) || (declared.transposable && declared.width === height && declared.height === width);
      if (!same) fail(`the ${syntax.name} frame is ${declared.width}x${declared.height} but Rows/Columns say ${width}x${height}; refused before decoding`);
    }
    try {
      raw = await decodeFrame(syntax.decoder, encoded, { width, height, bitsAllocated, bitsStored, signed, photometric });
    } catch (e) {
      return fail(`cannot decode ${syntax.name} pixel data: ${describe(e)}`);
    }
    if (raw.length !== count && raw.length !== count * 2) {
      fail(`${syntax.name} decoder returned ${raw.length} bytes for ${width}x${height} pixels (corrupt or truncated pixel data)`);
    }
    bytesPerSample = raw.length === count ? 1 : 2;
  }

  const presentationLutShape = ds.string('x20500020')?.trim().toUpperCase();
  // PS3.3 C.8.11.6: in DX images INVERSE accompanies MONOCHROME1 and describes that same inversion, so the two are
  // one inversion, not two; INVERSE on MONOCHROME2 inverts.
  const invert = photometric === 'MONOCHROME1' || presentationLutShape === 'INVERSE';
  const modality = readModalityTransform(ds, signed, notes, fail);
  // The VOI LUT's first mapped value is SS when the modality output can be negative, else US.
  const negativeInput = modality.kind === 'rescale' && (signed || modality.intercept < 0 || modality.slope < 0);
  const voi = readVoiTransform(ds, negativeInput, notes, fail);
  const outputMax = 2 ** Math.max(8, bitsStored) - 1;
  const display = buildDisplayLut({ bitsStored, signed, modality, voi, invert, outputMax });
  let pixels = applyDisplayLut(raw, count, { bitsAllocated: bytesPerSample === 1 ? 8 : 16, bitsStored, shift, signed }, display);
  if (photometric === 'MONOCHROME1') notes.push('MONOCHROME1 inverted');
  if (presentationLutShape === 'INVERSE' && photometric !== 'MONOCHROME1') notes.push('Presentation LUT Shape INVERSE applied');

  const metadata = readMetadata(ds, notes);
  metadata.transferSyntaxUid = tsUid;
  metadata.bitsStored = bitsStored;
  metadata.window = display.applied;
  metadata.inverted = invert;
  // The working resolution: larger images are downscaled here, once, so nothing downstream holds the full size.
  const working = fitWithin(width, height, budget.maxWorkingSide);
  if (working.width !== width || working.height !== height) {
    pixels = resizeGray(pixels, width, height, working.width, working.height);
    notes.push(`downscaled from ${width}x${height} to ${working.width}x${working.height} (working resolution: ${budget.maxWorkingSide} px on the long side)`);
    if (metadata.pixelSpacing) metadata.pixelSpacing = [(metadata.pixelSpacing[0] * height) / working.height, (metadata.pixelSpacing[1] * width) / working.width];
  }
  return { width: working.width, height: working.height, pixels, maxValue: outputMax, format: 'dicom', source, metadata, notes };
}

/**
 * Raw-inflates `deflated`, stopping with ImageTooLargeError as soon as the output passes `limit` bytes: fed in
 * small pieces, so a bomb (1 MiB of zeros per kilobyte) never makes more than a few MiB past the limit.
 */
export function inflateBounded(deflated: Uint8Array, limit: number, source: string): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const inflater = new Inflate((chunk) => {
    total += chunk.length;
    if (total > limit) throw tooMuchInflated(source, limit);
    chunks.push(chunk);
  });
  const piece = 16384;
  for (let at = 0; at < deflated.length; at += piece) inflater.push(deflated.subarray(at, at + piece), at + piece >= deflated.length);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

export function tooMuchInflated(source: string, limit: number): ImageTooLargeError {
  return new ImageTooLargeError(`${source}: the deflated data set inflates to more than ${limit} bytes (the decode budget); refused`);
}

/** Parses with dicom-parser, turning its string/object throws into one clear Error. */
function parse(bytes: Uint8Array, source: string, headerlessExplicit: boolean | undefined, notes: string[], inflate: (deflated: Uint8Array) => Uint8Array): DataSet {
  const options: dicomParser.ParseDicomOptions = {
    // Deflated data sets: inflate with fflate so the same code runs in browsers (dicom-parser would need pako),
    // within the decode budget.
    inflater: ((array: Uint8Array, position: number) => {
      const inflated = inflate(array.subarray(position));
      const full = new Uint8Array(position + inflated.length);
      full.set(array.subarray(0, position));
      full.set(inflated, position);
      return full;
    }) as unknown as dicomParser.ParseDicomOptions['inflater'],
  };
  if (headerlessExplicit !== undefined) {
    options.TransferSyntaxUID = headerlessExplicit ? EXPLICIT_LE : IMPLICIT_LE;
    notes.push(`no DICOM file-meta header; read as ${headerlessExplicit ? 'explicit' : 'implicit'} VR little endian`);
  }
  try {
    return dicomParser.parseDicom(bytes, options);
  } catch (e) {
    if (e instanceof ImageTooLargeError) throw e;
    throw new Error(`${source}: corrupt or truncated DICOM: ${describe(e)}`);
  }
}

/** Native pixel data as little-endian samples, after checking that all of it is there. */
function nativePixels(
  ds: DataSet,
  element: Element,
  count: number,
  bytesPerSample: 1 | 2,
  syntax: TransferSyntax,
  fail: (why: string) => never,
): Uint8Array {
  const needed = count * bytesPerSample;
  const available = Math.min(element.length, ds.byteArray.length - element.dataOffset);
  if (available < needed) fail(`truncated pixel data: ${available} bytes, ${needed} needed`);
  const samples = ds.byteArray.subarray(element.dataOffset, element.dataOffset + needed);
  if (!syntax.bigEndian || bytesPerSample === 1) return samples;
  const swapped = new Uint8Array(needed);
  for (let i = 0; i + 1 < needed; i += 2) {
    swapped[i] = samples[i + 1];
    swapped[i + 1] = samples[i];
  }
  return swapped;
}

function readModalityTransform(ds: DataSet, signed: boolean, notes: string[], fail: (why: string) => never): ModalityTransform {
  const item = ds.elements.x00283000?.items?.[0]?.dataSet;
  if (item) {
    notes.push('Modality LUT Sequence applied');
    return { kind: 'lut', lut: readLut(item, signed, 'Modality LUT Sequence', notes, fail) };
  }
  const slope = ds.floatString('x00281053') ?? 1;
  const intercept = ds.floatString('x00281052') ?? 0;
  if (!Number.isFinite(slope) || slope === 0 || !Number.isFinite(intercept)) {
    fail(`invalid Rescale Slope/Intercept (${ds.string('x00281053')}, ${ds.string('x00281052')})`);
  }
  return { kind: 'rescale', slope, intercept };
}

function readVoiTransform(ds: DataSet, negativeInput: boolean, notes: string[], fail: (why: string) => never): VoiTransform | undefined {
  const item = ds.elements.x00283010?.items?.[0]?.dataSet;
  if (item) {
    const lut = readLut(item, negativeInput, 'VOI LUT Sequence', notes, fail);
    notes.push('VOI LUT Sequence applied' + (ds.elements.x00281050 ? ' (preferred over Window Center/Width)' : ''));
    return { kind: 'lut', lut };
  }
  const center = ds.floatString('x00281050', 0);
  const width = ds.floatString('x00281051', 0);
  if (center === undefined || width === undefined) return undefined;
  const fn = (ds.string('x00281056')?.trim().toUpperCase() || 'LINEAR') as string;
  if (fn !== 'LINEAR' && fn !== 'LINEAR_EXACT' && fn !== 'SIGMOID') fail(`unknown VOI LUT Function '${fn}'`);
  const minWidth = fn === 'LINEAR' ? 1 : Number.MIN_VALUE;
  if (!Number.isFinite(center) || !(width >= minWidth)) {
    notes.push(`Window Center/Width ${center}/${width} is invalid for ${fn}; stored range used instead`);
    return undefined;
  }
  return { kind: 'window', center, width, function: fn as 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID' };
}

/** A Modality or VOI LUT from its sequence item: LUT Descriptor (0028,3002) and LUT Data (0028,3006). */
function readLut(item: DataSet, signedInput: boolean, what: string, notes: string[], fail: (why: string) => never): Lut {
  const descriptor = item.elements.x00283002;
  const dataElement = item.elements.x00283006;
  if (!descriptor || descriptor.length < 6 || !dataElement) fail(`${what} lacks LUT Descriptor or LUT Data`);
  const parser = item.byteArrayParser;
  const at = descriptor!.dataOffset;
  const entries = parser.readUint16(item.byteArray, at) || 65536;
  let firstMapped = parser.readUint16(item.byteArray, at + 2);
  if (signedInput && firstMapped > 32767) firstMapped -= 65536;
  let bits = parser.readUint16(item.byteArray, at + 4);
  if (bits < 1 || bits > 16) fail(`${what} has ${bits} bits per entry`);
  const byteLength = Math.min(dataElement!.length, item.byteArray.length - dataElement!.dataOffset);
  const data = new Uint16Array(entries);
  if (bits <= 8 && byteLength < entries * 2 && byteLength >= entries) {
    for (let i = 0; i < entries; i++) data[i] = item.byteArray[dataElement!.dataOffset + i];
  } else {
    if (byteLength < entries * 2) fail(`${what} LUT Data has ${byteLength} bytes for ${entries} entries`);
    for (let i = 0; i < entries; i++) data[i] = parser.readUint16(item.byteArray, dataElement!.dataOffset + 2 * i);
  }
  // Some writers declare fewer bits than the entries use (e.g. 12 for 16-bit data): widen to what the data needs.
  const largest = data.reduce((a, b) => Math.max(a, b), 0);
  if (largest > 2 ** bits - 1) {
    const needed = Math.ceil(Math.log2(largest + 1));
    notes.push(`${what}: entries reach ${largest}, above ${bits} bits per entry; treated as ${needed}-bit`);
    bits = needed;
  }
  return { firstMapped, bits, data };
}

function describe(e: unknown): string {
  // A codec that hits corrupt data can trap inside WebAssembly ('unreachable', 'memory access out of bounds').
  if (e instanceof Error && e.name === 'RuntimeError') return `corrupt compressed data (the codec aborted: ${e.message})`;
  if (e instanceof Error) return e.message;
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object' && 'exception' in e) return describe((e as { exception: unknown }).exception);
  return String(e);
}
