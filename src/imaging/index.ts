/** Imaging: decoding (PNG, JPEG, DICOM), display windowing, preprocessing and augmentation. No ONNX Runtime. */
export * from './browser.js';
export { decodeImage, decodeImageFile, type DecodeOptions } from './decode.js';
export { encodePng } from './encode.js';
