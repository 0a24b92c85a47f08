/**
 * The browser-safe part of imaging: no Node-only imports (no fs, no sharp). The numeric preprocessing here is the
 * exact code training and Node inference run. decodeDicom needs dcmjs-codecs' WebAssembly, which works in browsers.
 */
export * from './image.js';
export * from './detect.js';
export * from './spec.js';
export * from './resample.js';
export * from './geometry.js';
export * from './preprocess.js';
export * from './augment.js';
export { decodeDicom, inflateBounded, MAX_PIXELS, type DicomDecodeOptions } from './dicom/decode-dicom.js';
export * from './budget.js';
export { initCodecs, TRANSFER_SYNTAXES } from './dicom/codecs.js';
export { parseAgeString } from './dicom/metadata.js';
export { buildDisplayLut, type GrayscaleParams, type Lut, type ModalityTransform, type VoiTransform } from './dicom/grayscale.js';
export * from './colormap.js';
export * from './overlay.js';
