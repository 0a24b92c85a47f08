/**
 * One training step as one ONNX graph run by ONNX Runtime: the forward pass in training mode, the loss, the
 * gradients from autodiff/, the optimizer update and BatchNorm's running statistics (graph.ts, losses.ts,
 * optimizers.ts), rewritten afterwards for speed (batch-norm-lowering.ts, batch-sums.ts, blocked-convolutions.ts
 * with blocked-layout.ts), and the session that runs it with the weights kept on the runtime's side (session.ts).
 */
export {
  buildTrainingGraph,
  trainablePrefixes,
  TRAINING_IO,
  type FlatSlot,
  type Trainable,
  type TrainingGraph,
  type TrainingGraphOptions,
} from './graph.js';
export { addLoss, validateLoss, type LossSpec, type LossInputs, type Reduction } from './losses.js';
export { addOptimizerUpdate, optimizerStateNames, validateOptimizer, type OptimizerSpec, type OptimizerInputs } from './optimizers.js';
export { TrainingSession, type TrainingSessionOptions } from './session.js';
