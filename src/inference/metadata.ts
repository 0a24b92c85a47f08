/** Patient metadata from decoded files into a model's metadata input. Pure (the browser's private mode uses it). */
import type { ImageMetadata } from '../imaging/image.js';
import { METADATA_FEATURES, type PatientMetadata, encodeMetadata } from '../models/patient-metadata.js';
import { type HostTensor, float32 } from '../onnx/tensor.js';

/** The patient metadata a decoded file carries (DICOM tags; PNG and JPEG have none). */
export function fromImage(meta: ImageMetadata): PatientMetadata {
  return { age: meta.patientAge, sex: meta.patientSex, view: meta.viewPosition };
}

/** Encoded metadata rows [batch, features] for a model's metadata input. */
export function metadataBatch(rows: readonly (PatientMetadata | undefined)[]): HostTensor<'float32'> {
  const width = METADATA_FEATURES.length;
  const out = float32([rows.length, width]);
  rows.forEach((row, i) => encodeMetadata(row, out.data, i * width));
  return out;
}
