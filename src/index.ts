/** cxr-lens as a library. See api.ts for the main entry points. */
export * from './api.js';
export { Predictor, type ImageSummary, type Prediction, type PredictorOptions } from './inference/predictor.js';
export { findingsFromLogits, sigmoid, type Finding } from './inference/findings.js';
export { listImageFiles, predictFiles, type FileResult, type PredictFilesOptions } from './inference/files.js';
export { importWeights, applyStateDict, type ImportOptions, type ImportResult, type ImportReport, type StateDict } from './models/import/index.js';
export { readPytorchCheckpoint, readPytorchCheckpointWithReport } from './models/import/pytorch/index.js';
export { ARCHITECTURE_NAMES, buildModel, type ArchitectureName, type BuildOptions } from './models/zoo/index.js';
export { readModelInfo, type ModelInfo } from './models/metadata.js';
export { torchvisionInit, zeroInit, type ParameterInit } from './models/init.js';
export { OrtSession, type SessionOptions } from './runtime/session.js';
export { NIH_FINDINGS } from './data/labels.js';
export * as onnx from './onnx/index.js';
export * as imaging from './imaging/index.js';
