/**
 * From logits to what a person reads: each finding's probability (its own sigmoid, recalibrated where the model
 * carries a calibration fitted on validation data) and a decision only at a validated threshold. Pure and small:
 * inference, safety (which fits the calibration and thresholds), the server and the browser all use it.
 */
export { findingsFromLogits, sigmoid, type Finding, type OutputRules } from './findings.js';
export {
  type CalibrationMethod,
  type FitCalibrationOptions,
  type LabelledLogits,
  MIN_PER_CLASS,
  MIN_SLOPE,
  MIN_SLOPE_SPREAD,
  calibratedProbabilities,
  calibratedProbability,
  fitCalibration,
  isCalibrated,
  labelColumn,
} from './calibration.js';
