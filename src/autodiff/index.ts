/**
 * Reverse-mode autodiff over the project's ONNX graphs: gradient rules per op, gradient graphs for explanations,
 * and training-step graphs (forward in training mode, loss, backward, optimizer, BatchNorm statistics).
 */
export { addGradients, type GradientRequest } from './gradients.js';
export { registerGradient, differentiableOps, type GradientRule, type GradientContext } from './registry.js';
export { buildGradientGraph, gradientOutputName, type GradientGraph, type GradientGraphOptions } from './explain-graph.js';
export {
  buildTrainingGraph,
  trainablePrefixes,
  TRAINING_IO,
  type FlatSlot,
  type Trainable,
  type TrainingGraph,
  type TrainingGraphOptions,
} from './training-graph.js';
export { addLoss, validateLoss, type LossSpec, type LossInputs, type Reduction } from './losses.js';
export { addOptimizerUpdate, optimizerStateNames, validateOptimizer, type OptimizerSpec, type OptimizerInputs } from './optimizers.js';
export { pruneGraph, withPoolingIndices } from './forward.js';
