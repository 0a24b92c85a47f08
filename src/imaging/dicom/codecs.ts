/**
 * Compressed DICOM pixel data through dcmjs-codecs' WebAssembly build (libjpeg-turbo with 8/12/16-bit and lossless
 * JPEG, CharLS, OpenJPEG, OpenJPH, libjxl, RLE). The WASM module is loaded once, on first use.
 */
import dcmjsCodecs from 'dcmjs-codecs';

const { NativeCodecs, Context } = dcmjsCodecs;

type Decoder = 'rle' | 'jpeg' | 'jpeg-ls' | 'jpeg2000' | 'htj2k' | 'jpeg-xl';

export interface TransferSyntax {
  name: string;
  /** Undefined for native (uncompressed) syntaxes. */
  decoder?: Decoder;
  bigEndian?: boolean;
  deflated?: boolean;
}

export const TRANSFER_SYNTAXES: Record<string, TransferSyntax> = {
  '1.2.840.10008.1.2': { name: 'Implicit VR Little Endian' },
  '1.2.840.10008.1.2.1': { name: 'Explicit VR Little Endian' },
  '1.2.840.10008.1.2.1.99': { name: 'Deflated Explicit VR Little Endian', deflated: true },
  '1.2.840.10008.1.2.2': { name: 'Explicit VR Big Endian', bigEndian: true },
  '1.2.840.10008.1.2.5': { name: 'RLE Lossless', decoder: 'rle' },
  '1.2.840.10008.1.2.4.50': { name: 'JPEG Baseline (Process 1)', decoder: 'jpeg' },
  '1.2.840.10008.1.2.4.51': { name: 'JPEG Extended (Process 2 & 4)', decoder: 'jpeg' },
  '1.2.840.10008.1.2.4.57': { name: 'JPEG Lossless (Process 14)', decoder: 'jpeg' },
  '1.2.840.10008.1.2.4.70': { name: 'JPEG Lossless SV1 (Process 14, Selection Value 1)', decoder: 'jpeg' },
  '1.2.840.10008.1.2.4.80': { name: 'JPEG-LS Lossless', decoder: 'jpeg-ls' },
  '1.2.840.10008.1.2.4.81': { name: 'JPEG-LS Near-Lossless', decoder: 'jpeg-ls' },
  '1.2.840.10008.1.2.4.90': { name: 'JPEG 2000 Lossless', decoder: 'jpeg2000' },
  '1.2.840.10008.1.2.4.91': { name: 'JPEG 2000', decoder: 'jpeg2000' },
  '1.2.840.10008.1.2.4.201': { name: 'HTJ2K Lossless', decoder: 'htj2k' },
  '1.2.840.10008.1.2.4.202': { name: 'HTJ2K Lossless RPCL', decoder: 'htj2k' },
  '1.2.840.10008.1.2.4.203': { name: 'HTJ2K', decoder: 'htj2k' },
  '1.2.840.10008.1.2.4.110': { name: 'JPEG XL Lossless', decoder: 'jpeg-xl' },
  '1.2.840.10008.1.2.4.111': { name: 'JPEG XL JPEG Recompression', decoder: 'jpeg-xl' },
  '1.2.840.10008.1.2.4.112': { name: 'JPEG XL', decoder: 'jpeg-xl' },
};

let ready: Promise<void> | undefined;

/** Loads the codec WebAssembly once; later calls share the same promise. */
export function initCodecs(): Promise<void> {
  ready ??= NativeCodecs.initializeAsync();
  return ready;
}

export interface FrameInfo {
  width: number;
  height: number;
  bitsAllocated: number;
  bitsStored: number;
  signed: boolean;
  photometric: string;
}

/** Decodes one compressed grayscale frame to little-endian samples (1 or 2 bytes each). */
export async function decodeFrame(decoder: Decoder, encoded: Uint8Array, info: FrameInfo): Promise<Uint8Array> {
  await initCodecs();
  const context = new Context({
    width: info.width,
    height: info.height,
    bitsAllocated: info.bitsAllocated,
    bitsStored: info.bitsStored,
    samplesPerPixel: 1,
    pixelRepresentation: info.signed ? 1 : 0,
    planarConfiguration: 0,
    photometricInterpretation: info.photometric,
    encodedBuffer: encoded,
  });
  const decoded = runDecoder(decoder, context).getDecodedBuffer();
  if (!decoded || decoded.length === 0) throw new Error('the codec returned no pixels');
  return decoded;
}

function runDecoder(decoder: Decoder, context: InstanceType<typeof Context>) {
  switch (decoder) {
    case 'rle':
      return NativeCodecs.decodeRle(context);
    case 'jpeg':
      return NativeCodecs.decodeJpeg(context, { convertColorspaceToRgb: false });
    case 'jpeg-ls':
      return NativeCodecs.decodeJpegLs(context);
    case 'jpeg2000':
      return NativeCodecs.decodeJpeg2000(context);
    case 'htj2k':
      return NativeCodecs.decodeHtJpeg2000(context);
    case 'jpeg-xl':
      return NativeCodecs.decodeJpegXl(context);
  }
}
