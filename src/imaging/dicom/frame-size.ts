/**
 * The size a compressed DICOM frame declares in its own header, read without decoding it: the codec allocates
 * what the frame says, not what Rows/Columns say, so a 512 x 512 DICOM can carry a 30000 x 30000 JPEG. Pure.
 *
 * JPEG (SOFn) and JPEG-LS (SOF55): Y, X after the precision byte. JPEG 2000 and HTJ2K: the SIZ segment (the
 * codestream may sit in a JP2/JPH box file). JPEG XL: the SizeHeader after the FF0A signature (bare codestream or
 * the jxlc/first jxlp box of a container). RLE has no header of its own: its output is Rows x Columns.
 */

export interface FrameSize {
  width: number;
  height: number;
  /** JPEG XL: the orientation may transpose the output; the size is then checked both ways. */
  transposable?: boolean;
}

type Codec = 'rle' | 'jpeg' | 'jpeg-ls' | 'jpeg2000' | 'htj2k' | 'jpeg-xl';

/** The frame's declared size; throws with the reason when its header cannot be found or declares no size. */
export function frameSize(codec: Codec, bytes: Uint8Array): FrameSize | undefined {
  switch (codec) {
    case 'rle':
      return undefined;
    case 'jpeg':
    case 'jpeg-ls':
      return jpegSize(bytes, codec === 'jpeg-ls');
    case 'jpeg2000':
    case 'htj2k':
      return j2kSize(bytes);
    case 'jpeg-xl':
      return jxlSize(bytes);
  }
}

const u16 = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];
const u32 = (b: Uint8Array, at: number) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;

function jpegSize(b: Uint8Array, ls: boolean): FrameSize {
  const kind = ls ? 'JPEG-LS' : 'JPEG';
  if (b[0] !== 0xff || b[1] !== 0xd8) throw new Error(`the ${kind} frame does not start with an SOI marker`);
  let at = 2;
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) throw new Error(`the ${kind} frame has no marker at byte ${at} before its frame header`);
    const marker = b[at + 1];
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    const length = u16(b, at + 2);
    // SOF0-3, 5-7, 9-11, 13-15 (not DHT C4, JPG C8, DAC CC); JPEG-LS SOF55 (F7).
    const sof = marker === 0xf7 || (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc);
    if (sof) {
      if (at + 9 > b.length) break;
      const height = u16(b, at + 5);
      const width = u16(b, at + 7);
      if (width === 0 || height === 0) throw new Error(`the ${kind} frame header declares ${width}x${height} (size defined later in the stream is not supported)`);
      return { width, height };
    }
    if (marker === 0xda || marker === 0xd9) break; // scan or end before any frame header
    if (length < 2) throw new Error(`the ${kind} frame has a marker segment of length ${length}`);
    at += 2 + length;
  }
  throw new Error(`the ${kind} frame has no frame header (SOF)`);
}

function j2kSize(b: Uint8Array): FrameSize {
  let codestream = b;
  // JP2 / JPH file format: boxes; the codestream is in 'jp2c'.
  if (u32(b, 0) === 12 && u32(b, 4) === 0x6a502020) {
    const found = findBox(b, 'jp2c');
    if (!found) throw new Error('the JPEG 2000 file has no codestream box (jp2c)');
    codestream = found;
  }
  if (u16(codestream, 0) !== 0xff4f || u16(codestream, 2) !== 0xff51 || codestream.length < 4 + 2 + 2 + 16) {
    throw new Error('the JPEG 2000 frame does not start with SOC and SIZ markers');
  }
  const xsiz = u32(codestream, 8);
  const ysiz = u32(codestream, 12);
  const xo = u32(codestream, 16);
  const yo = u32(codestream, 20);
  if (xsiz <= xo || ysiz <= yo) throw new Error(`the JPEG 2000 frame declares an empty image (SIZ ${xsiz}x${ysiz}, offset ${xo},${yo})`);
  return { width: xsiz - xo, height: ysiz - yo };
}

/** The payload of the first box of `type` among the top-level boxes of an ISO BMFF-style file. */
function findBox(b: Uint8Array, type: string, skip = 0): Uint8Array | undefined {
  let at = 0;
  while (at + 8 <= b.length) {
    let size = u32(b, at);
    let header = 8;
    if (size === 1) {
      if (at + 16 > b.length) return undefined;
      size = u32(b, at + 8) * 2 ** 32 + u32(b, at + 12);
      header = 16;
    } else if (size === 0) size = b.length - at;
    const name = String.fromCharCode(b[at + 4], b[at + 5], b[at + 6], b[at + 7]);
    if (name === type) return b.subarray(at + header + skip, Math.min(b.length, at + size));
    if (size < header) return undefined;
    at += size;
  }
  return undefined;
}

function jxlSize(b: Uint8Array): FrameSize {
  let codestream = b;
  if (u32(b, 0) === 12 && u32(b, 4) === 0x4a584c20) {
    const found = findBox(b, 'jxlc') ?? findBox(b, 'jxlp', 4);
    if (!found) throw new Error('the JPEG XL file has no codestream box (jxlc or jxlp)');
    codestream = found;
  }
  if (codestream[0] !== 0xff || codestream[1] !== 0x0a) throw new Error('the JPEG XL frame does not start with its signature (FF 0A)');
  // SizeHeader, bits least significant first (ISO/IEC 18181-1, A.2 and D.2).
  let bit = 16;
  const read = (n: number): number => {
    let v = 0;
    for (let i = 0; i < n; i++, bit++) {
      const byte = codestream[bit >> 3];
      if (byte === undefined) throw new Error('the JPEG XL frame is truncated in its size header');
      v += ((byte >> (bit & 7)) & 1) * 2 ** i;
    }
    return v;
  };
  const u32Field = () => 1 + read([9, 13, 18, 30][read(2)]);
  const small = read(1) === 1;
  const height = small ? (read(5) + 1) * 8 : u32Field();
  const ratio = read(3);
  const ratios: [number, number][] = [[1, 1], [12, 10], [4, 3], [3, 2], [16, 9], [5, 4], [2, 1]];
  const width = ratio === 0 ? (small ? (read(5) + 1) * 8 : u32Field()) : Math.floor((height * ratios[ratio - 1][0]) / ratios[ratio - 1][1]);
  return { width, height, transposable: true };
}
