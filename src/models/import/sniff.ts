/** Recognising weight files by their first bytes, and naming what a file that is not one looks like. */

function startsWith(bytes: Uint8Array, signature: readonly number[], at = 0): boolean {
  return signature.every((byte, i) => bytes[at + i] === byte);
}

function ascii(text: string): number[] {
  return [...text].map((c) => c.charCodeAt(0));
}

const SIGNATURES: [number[], number, string][] = [
  [[0x89, ...ascii('PNG\r\n\x1a\n')], 0, 'a PNG image'],
  [[0xff, 0xd8, 0xff], 0, 'a JPEG image'],
  [ascii('DICM'), 128, 'a DICOM file'],
  [ascii('GIF8'), 0, 'a GIF image'],
  [ascii('II*\0'), 0, 'a TIFF image'],
  [ascii('MM\0*'), 0, 'a TIFF image'],
  [[0x89, ...ascii('HDF\r\n\x1a\n')], 0, 'an HDF5 file (Keras .h5 weights?), not a PyTorch checkpoint'],
  [[0x93, ...ascii('NUMPY')], 0, 'a NumPy .npy array'],
  [[0x1f, 0x8b], 0, 'gzip-compressed data: decompress it first'],
  [ascii('ustar'), 257, 'a tar archive (PyTorch before 0.1.10 wrote tar checkpoints, which are not supported)'],
  [[0x28, 0xb5, 0x2f, 0xfd], 0, 'zstd-compressed data: decompress it first'],
];

/** ONNX ModelProto: field 1 (ir_version, a small varint) then another ModelProto field. */
export function looksLikeOnnx(bytes: Uint8Array): boolean {
  const modelProtoTags = [0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42];
  return bytes[0] === 0x08 && bytes[1] > 0 && bytes[1] < 0x20 && modelProtoTags.includes(bytes[2]);
}

/** safetensors: an 8-byte little-endian header length, then a JSON header. */
function looksLikeSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  return headerLength < BigInt(bytes.length) && bytes[8] === 0x7b /* { */;
}

function textStart(bytes: Uint8Array): string | undefined {
  const head = bytes.subarray(0, 200);
  if (!head.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b !== 0x7f))) return undefined;
  return new TextDecoder().decode(head).split('\n')[0].slice(0, 60);
}

export function describeNonCheckpoint(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'an empty file';
  for (const [signature, at, description] of SIGNATURES) if (startsWith(bytes, signature, at)) return description;
  if (looksLikeOnnx(bytes)) return 'an ONNX model, not a PyTorch checkpoint: use it as an ONNX model instead';
  if (looksLikeSafetensors(bytes)) return 'a safetensors file, not a torch.save checkpoint';
  const text = textStart(bytes);
  if (text?.startsWith('version https://git-lfs')) return 'a Git LFS pointer, not the checkpoint itself: run `git lfs pull`';
  if (text !== undefined) return `text starting "${text}" (an error page saved instead of the download?)`;
  const hex = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return `unrecognised data (first bytes ${hex})`;
}
