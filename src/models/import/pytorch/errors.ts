/** Why a checkpoint could not be read; the CLI can pick its advice from `reason`. */
export type CheckpointErrorReason =
  /** The file ends early: an interrupted download or copy. */
  | 'truncated'
  /** Not written by torch.save at all (an image, an ONNX model, text, ...). */
  | 'not-a-checkpoint'
  /** torch.save(model) of a class this reader does not know: only Python with the model's code can rebuild it. */
  | 'whole-module'
  /** A TorchScript archive (torch.jit.save). */
  | 'torchscript'
  /** The pickle names a Python global this reader does not rebuild (it never runs code from a file). */
  | 'unknown-global'
  /** No tensors where the weights should be. */
  | 'no-weights'
  /** A well-formed checkpoint using something this reader does not support (e.g. big-endian, complex tensors). */
  | 'unsupported'
  /** Inconsistent structure: damaged data. */
  | 'malformed';

export class CheckpointError extends Error {
  constructor(
    readonly fileName: string,
    readonly reason: CheckpointErrorReason,
    message: string,
  ) {
    super(`${fileName}: ${message}`);
    this.name = 'CheckpointError';
  }
}
