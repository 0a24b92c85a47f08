/**
 * Input validity, and calibrating a model on labelled data (calibrate.ts: calibration maps, operating points and
 * checks; the maps themselves and their use are outputs/). Browser-safe parts: flags, image-checks, corrupt, check,
 * report. Node parts (ONNX Runtime, files): features, fit, calibrate.
 */
export * from './flags.js';
export * from './image-checks.js';
export * from './corrupt.js';
export { type SafetyScores, type CheckResult, checkInput, imageThresholds } from './check.js';
export { type FeatureMatrix, type GaussianModel, type LogisticModel, fitGaussian, fitLogistic, mahalanobisScore } from './detector.js';
export { SAFETY_OUTPUTS, assertSafetyOutputs, attachSafetyGraph, stripSafetyGraph } from './graph.js';
export { type ImageOutputs, type ImageSource, corrupted, fileSource, runImages } from './features.js';
export { DEFAULT_COMPONENTS, type SafetyFit, type SafetyFitData, type SafetyFitOptions, fitSafety } from './fit.js';
export {
  type CalibrateData,
  type CalibrateOptions,
  type CalibrateResult,
  type LabelledImages,
  type NegativeSet,
  type OperatingPointCheck,
  calibrateModel,
  chooseThresholds,
  labelledImages,
  meanEce,
} from './calibrate.js';
export { calibrationMarkdown, safetyMarkdown } from './report.js';
export {
  type PrevalenceEstimate,
  type PrevalenceOptions,
  type PriorEstimate,
  adaptableLabels,
  applyPriorShift,
  estimatePrevalences,
  estimatePrior,
  labelPrevalence,
  priorLogitShift,
  shiftThreshold,
} from './prior-shift.js';
export { type AdaptOptions, type AdaptResult, MIN_ADAPTATION_IMAGES, adaptToPrevalence } from './adapt.js';
