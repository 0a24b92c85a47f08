/** The decoded-image contract shared by every decoder and by preprocessing. Pure types and checks, no I/O. */

export type ImageFormat = 'png' | 'jpeg' | 'dicom';

/** The VOI (windowing) step a DICOM decode applied, so callers can show or audit it. */
export type AppliedWindow =
  | { kind: 'window'; center: number; width: number; function: 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID' }
  | { kind: 'voi-lut'; entries: number; firstMapped: number; bits: number; explanation?: string }
  /** No VOI in the file: the range of stored values allowed by Bits Stored, through the modality transform. */
  | { kind: 'stored-range'; min: number; max: number };

export interface ImageMetadata {
  /** DICOM View Position (0018,5101), e.g. 'PA', 'AP', 'LL'; upper-cased, trimmed. */
  viewPosition?: string;
  /** Patient Age (0010,1010) converted to years ('058Y' -> 58, '006M' -> 0.5). */
  patientAge?: number;
  patientSex?: 'M' | 'F' | 'O';
  /** Physical size of a pixel in mm, [row spacing, column spacing]. */
  pixelSpacing?: [number, number];
  /** Which tag the spacing came from: calibrated at the patient, or at the detector plane. */
  pixelSpacingSource?: 'PixelSpacing' | 'ImagerPixelSpacing';
  /** Photometric Interpretation as stored in the file (MONOCHROME1 is already inverted in the pixels). */
  photometric?: string;
  modality?: string;
  bodyPart?: string;
  imageLaterality?: string;
  seriesDescription?: string;
  /** Mean over pixels of (max - min) of the colour channels, on [0, 1]: 0 for gray files (PNG and JPEG only). */
  colourfulness?: number;
  sopClassUid?: string;
  /** Study, Series and SOP Instance UID (DICOM only): what ties a result back to the PACS's image. */
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  sopInstanceUid?: string;
  transferSyntaxUid?: string;
  /** Bits per sample of the source: PNG bit depth, DICOM Bits Stored. */
  bitsStored?: number;
  presentationIntent?: string;
  presentationLutShape?: string;
  /** The VOI step applied (DICOM only). */
  window?: AppliedWindow;
  /** True when the display inversion (MONOCHROME1 and/or Presentation LUT INVERSE) was applied to the pixels. */
  inverted?: boolean;
}

/**
 * A display-ready grayscale image: for DICOM after modality LUT, VOI windowing and inversion; for PNG/JPEG the
 * gray values (colour converted). Bright means dense (bone), dark means air, as on NIH's PNGs.
 */
export interface DecodedImage {
  width: number;
  height: number;
  /** Gray values, row-major, `width * height` entries in [0, maxValue]. */
  pixels: Uint8Array | Uint16Array;
  /** The value meaning full white: 255 for 8-bit, 65535 for 16-bit PNG, 2^BitsStored - 1 for DICOM. */
  maxValue: number;
  format: ImageFormat;
  /** Where the image came from (file path or caller's label); used in error messages. */
  source: string;
  metadata: ImageMetadata;
  /** Human-readable notes on conversions done, e.g. 'RGB converted to gray (ITU-R 601 luma)', 'MONOCHROME1 inverted'. */
  notes: string[];
}

/** Throws a clear error when `image` violates the DecodedImage contract (wrong length, values above maxValue, ...). */
export function assertDecodedImage(image: DecodedImage): void {
  const where = image.source || '<image>';
  const { width, height, pixels, maxValue } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`${where}: invalid image size ${width}x${height}`);
  }
  if (pixels.length !== width * height) {
    throw new Error(`${where}: ${pixels.length} pixels for a ${width}x${height} image (expected ${width * height})`);
  }
  const typeMax = pixels instanceof Uint8Array ? 255 : 65535;
  if (!Number.isInteger(maxValue) || maxValue < 1 || maxValue > typeMax) {
    throw new Error(`${where}: maxValue ${maxValue} is not in [1, ${typeMax}] for ${pixels.constructor.name}`);
  }
  if (maxValue < typeMax) {
    for (let i = 0; i < pixels.length; i++) {
      if (pixels[i] > maxValue) throw new Error(`${where}: pixel ${i} is ${pixels[i]}, above maxValue ${maxValue}`);
    }
  }
}
