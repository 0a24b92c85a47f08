/** File-type detection by content (magic bytes), never by extension. Pure. */

export type DetectedFormat =
  | { format: 'png' }
  | { format: 'jpeg' }
  /** DICOM Part 10: 128-byte preamble, 'DICM', file-meta header. */
  | { format: 'dicom'; part10: true }
  /** A bare DICOM data set without preamble and file-meta header (ACR-NEMA style); the VR style is guessed. */
  | { format: 'dicom'; part10: false; explicitVr: boolean };

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function detectFormat(bytes: Uint8Array): DetectedFormat | undefined {
  if (startsWith(bytes, PNG_SIGNATURE)) return { format: 'png' };
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return { format: 'jpeg' };
  if (bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d) {
    return { format: 'dicom', part10: true };
  }
  return detectHeaderlessDicom(bytes);
}

/**
 * A headerless data set starts with a little-endian element of group 0x0008 (identifying), 0x0000 (command
 * length, old ACR-NEMA files) or 0x0002, followed either by a two-letter VR (explicit VR) or a 32-bit length
 * that fits in the file (implicit VR).
 */
function detectHeaderlessDicom(bytes: Uint8Array): DetectedFormat | undefined {
  if (bytes.length < 12) return undefined;
  const group = bytes[0] | (bytes[1] << 8);
  if (group !== 0x0008 && group !== 0x0000 && group !== 0x0002) return undefined;
  const isUpper = (b: number) => b >= 0x41 && b <= 0x5a;
  if (isUpper(bytes[4]) && isUpper(bytes[5])) return { format: 'dicom', part10: false, explicitVr: true };
  const length = (bytes[4] | (bytes[5] << 8) | (bytes[6] << 16) | (bytes[7] << 24)) >>> 0;
  if (length <= bytes.length - 8) return { format: 'dicom', part10: false, explicitVr: false };
  return undefined;
}

function startsWith(bytes: Uint8Array, prefix: number[]): boolean {
  if (bytes.length < prefix.length) return false;
  return prefix.every((b, i) => bytes[i] === b);
}
