/** Reading PyTorch checkpoints (torch.save: zip format and the pre-1.6 legacy format) into state dicts. */
export {
  type CheckpointReport,
  type PytorchCheckpoint,
  type ReadCheckpointOptions,
  type StateDict,
  readPytorchCheckpoint,
  readPytorchCheckpointWithReport,
} from './checkpoint.js';
export { CheckpointError, type CheckpointErrorReason } from './errors.js';
export { type KeyRename, WEIGHT_KEYS, isBookkeepingKey, normalizeStateDictKeys } from './state-dict.js';
