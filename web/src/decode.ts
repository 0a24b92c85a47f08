/**
 * Decoding in the browser, to the same DecodedImage the server's decoder gives: PNG with a pure-JS decoder
 * (fast-png: exact samples, 16-bit kept, no colour management), JPEG by the browser's own decoder, DICOM by the
 * library's decoder with the codec WebAssembly served beside the viewer. Gray conversion uses the server's formula
 * (PIL's 'L' weights in fixed point), so a PNG or DICOM gives identical pixels on both sides.
 */
import { decode as decodePngBytes } from 'fast-png';
import { type DecodedImage, decodeDicom, detectFormat, initCodecs } from '../../src/imaging/browser.js';
import codecsWasmUrl from 'dcmjs-codecs/build/dcmjs-native-codecs.wasm?url';
import dcmjsCodecs from 'dcmjs-codecs';

// dcmjs-codecs fetches its WebAssembly through eval("fetch(...)"), which the server's Content-Security-Policy
// (no 'unsafe-eval') forbids; fetch it directly instead. Compiling it needs only 'wasm-unsafe-eval'.
(dcmjsCodecs.NativeCodecs as unknown as { _getWebAssemblyBytes: () => Promise<ArrayBuffer> })._getWebAssemblyBytes = async () => {
  const response = await fetch(codecsWasmUrl);
  if (!response.ok) throw new Error(`cannot load the DICOM codecs (${codecsWasmUrl}: HTTP ${response.status})`);
  return response.arrayBuffer();
};

export async function decodeInBrowser(bytes: Uint8Array, name: string): Promise<DecodedImage> {
  if (bytes.length === 0) throw new Error(`${name}: file is empty`);
  const format = detectFormat(bytes)?.format;
  if (format === 'dicom') {
    await initCodecs({ webAssemblyModulePathOrUrl: codecsWasmUrl });
    return decodeDicom(bytes, name);
  }
  if (format === 'png') return decodePng(bytes, name);
  if (format === 'jpeg') return decodeJpeg(bytes, name);
  throw new Error(`${name}: not a PNG, JPEG or DICOM image`);
}

/** PIL's convert('L') in fixed point, exactly as the server's decoder. */
function luma(r: number, g: number, b: number): number {
  return Math.floor((r * 19595 + g * 38470 + b * 7471 + 0x8000) / 65536);
}

function decodePng(bytes: Uint8Array, name: string): DecodedImage {
  let png;
  try {
    png = decodePngBytes(bytes);
  } catch (error) {
    throw new Error(`${name}: cannot decode PNG: ${(error as Error).message}`);
  }
  const { width, height, depth } = png;
  const count = width * height;
  const notes: string[] = [];
  let samples: ArrayLike<number> = png.data;
  let channels = png.channels;
  if (png.palette) {
    const expanded = paletteToRgb(png.data, png.palette);
    samples = expanded;
    channels = 3;
  }
  const sixteen = depth === 16;
  const maxValue = sixteen ? 65535 : 255;
  // 1-, 2- and 4-bit gray are scaled to 8 bits, as libspng does on the server.
  const scale = !png.palette && depth < 8 ? 255 / (2 ** depth - 1) : 1;
  if (samples.length < count * channels) throw new Error(`${name}: cannot decode PNG: truncated pixel data`);
  const pixels = sixteen ? new Uint16Array(count) : new Uint8Array(count);
  if (channels <= 2) {
    for (let i = 0; i < count; i++) pixels[i] = Math.round(samples[i * channels] * scale);
  } else {
    for (let i = 0, j = 0; i < count; i++, j += channels) pixels[i] = luma(samples[j], samples[j + 1], samples[j + 2]);
    notes.push(`${channels === 4 ? 'RGBA' : 'RGB'} converted to gray (ITU-R 601 luma, as PIL's convert('L'))`);
  }
  if (channels === 2 || channels === 4) notes.push('alpha channel dropped');
  return { width, height, pixels, maxValue, format: 'png', source: name, metadata: { bitsStored: sixteen ? 16 : 8 }, notes };
}

function paletteToRgb(indices: ArrayLike<number>, palette: number[][]): Uint8Array {
  const out = new Uint8Array(indices.length * 3);
  for (let i = 0; i < indices.length; i++) {
    const [r, g, b] = palette[indices[i]] ?? [0, 0, 0];
    out[i * 3] = r;
    out[i * 3 + 1] = g;
    out[i * 3 + 2] = b;
  }
  return out;
}

/** The browser's JPEG decoder (libjpeg-turbo in Chromium); values can differ by a level or so from the server's. */
async function decodeJpeg(bytes: Uint8Array, name: string): Promise<DecodedImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as BlobPart], { type: 'image/jpeg' }), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new Error(`${name}: cannot decode JPEG (corrupt or truncated)`);
  }
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d')!;
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = context.getImageData(0, 0, width, height).data;
  const pixels = new Uint8Array(width * height);
  let colour = false;
  for (let i = 0, j = 0; i < pixels.length; i++, j += 4) {
    if (rgba[j] !== rgba[j + 1] || rgba[j] !== rgba[j + 2]) colour = true;
    pixels[i] = luma(rgba[j], rgba[j + 1], rgba[j + 2]);
  }
  const notes = ['decoded by the browser (values may differ slightly from the server decoder)'];
  if (colour) notes.push("RGB converted to gray (ITU-R 601 luma, as PIL's convert('L'))");
  return { width, height, pixels, maxValue: 255, format: 'jpeg', source: name, metadata: { bitsStored: 8 }, notes };
}
