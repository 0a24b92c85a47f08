/** Reading a torch.save checkpoint (.pth, .pt, .pth.tar) into a state dict of host tensors. */
import type { HostTensor } from '../../../onnx/tensor.js';
import { CheckpointError } from './errors.js';
import { isPickle, readLegacyCheckpoint } from './legacy-format.js';
import { RETURNED_DTYPE, TensorMaterializer } from './materialize.js';
import type { PickledCheckpoint } from './pickled-checkpoint.js';
import { describeNonCheckpoint } from '../sniff.js';
import {
  type KeyRename,
  type ModuleAttributes,
  findUnknownModule,
  isBookkeepingKey,
  normalizeStateDictKeys,
  selectStateDict,
} from './state-dict.js';
import type { StorageDType } from './torch-globals.js';
import { isZip, readZipCheckpoint } from './zip-format.js';

/** Parameter and buffer names (torchvision's) to C-contiguous tensors, in the checkpoint's order. */
export type StateDict = Map<string, HostTensor>;

export interface ReadCheckpointOptions {
  /** Top-level entry that holds the weights, overriding the selection rule (see selectStateDict). */
  entry?: string;
  /** Strip DataParallel / torch.compile prefixes and rename legacy DenseNet keys (default true). */
  normalizeKeys?: boolean;
}

export interface CheckpointReport {
  format: 'zip' | 'legacy';
  /** Key of the entry the weights came from; empty when the checkpoint is the state dict itself. */
  entryPath: string[];
  /** Other top-level entries, not read (epoch, optimizer, ...). */
  ignoredEntries: string[];
  /** Tensors stored as float64, float16 or bfloat16 and returned as float32. */
  convertedToFloat32: { name: string; from: Exclude<StorageDType, 'float32'> }[];
  /** Entries kept in the state dict that hold no weights (BatchNorm's num_batches_tracked): callers may skip them. */
  bookkeeping: string[];
  renamedKeys: KeyRename[];
  /** The class of the whole pickled module (torch.save(model)) the weights were read from, if they were. */
  moduleClass?: string;
  /** That module's attributes describing its outputs (torchxrayvision's targets and op_threshs). */
  moduleAttributes?: ModuleAttributes;
}

export interface PytorchCheckpoint {
  stateDict: StateDict;
  report: CheckpointReport;
}

/** Reads the state dict; `fileName` only names the file in error messages. */
export function readPytorchCheckpoint(bytes: Uint8Array, fileName: string, options?: ReadCheckpointOptions): StateDict {
  return readPytorchCheckpointWithReport(bytes, fileName, options).stateDict;
}

/** Reads the state dict and says where it came from and what was converted, renamed or ignored. */
export function readPytorchCheckpointWithReport(
  bytes: Uint8Array,
  fileName: string,
  options: ReadCheckpointOptions = {},
): PytorchCheckpoint {
  // A plain Uint8Array view: a Node Buffer's slice() would not copy.
  const pickled = openContainer(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), fileName);
  refuseWhatIsNotWeights(pickled, fileName);

  let selection;
  try {
    selection = selectStateDict(pickled.root, options.entry);
  } catch (error) {
    throw new CheckpointError(fileName, 'no-weights', (error as Error).message);
  }

  const uses = new Map<string, number>();
  for (const tensor of selection.weights.values()) uses.set(tensor.storage.key, (uses.get(tensor.storage.key) ?? 0) + 1);
  const materializer = new TensorMaterializer(pickled.loadStorages(new Set(uses.keys())), uses);
  const convertedToFloat32: CheckpointReport['convertedToFloat32'] = [];
  const raw: StateDict = new Map();
  for (const [name, ref] of selection.weights) {
    try {
      raw.set(name, materializer.build(name, ref));
    } catch (error) {
      if (error instanceof CheckpointError) throw error;
      throw new CheckpointError(fileName, 'malformed', (error as Error).message);
    }
    const from = ref.storage.dtype;
    if (from !== 'float32' && RETURNED_DTYPE[from] === 'float32') convertedToFloat32.push({ name, from });
  }

  let stateDict = raw;
  let renamedKeys: KeyRename[] = [];
  if (options.normalizeKeys ?? true) {
    try {
      ({ stateDict, renamed: renamedKeys } = normalizeStateDictKeys(raw));
    } catch (error) {
      throw new CheckpointError(fileName, 'malformed', (error as Error).message);
    }
  }
  return {
    stateDict,
    report: {
      format: pickled.format,
      entryPath: selection.entryPath,
      ignoredEntries: selection.ignoredEntries,
      convertedToFloat32,
      bookkeeping: [...stateDict.keys()].filter(isBookkeepingKey),
      renamedKeys,
      ...(selection.moduleClass ? { moduleClass: selection.moduleClass, moduleAttributes: selection.moduleAttributes } : {}),
    },
  };
}

function openContainer(bytes: Uint8Array, fileName: string): PickledCheckpoint {
  if (isZip(bytes)) return readZipCheckpoint(bytes, fileName);
  if (isPickle(bytes)) return readLegacyCheckpoint(bytes, fileName);
  throw new CheckpointError(fileName, 'not-a-checkpoint', `not a PyTorch checkpoint: it looks like ${describeNonCheckpoint(bytes)}`);
}

/**
 * Any Python global we do not rebuild is refused before anything is decoded; a whole pickled module of a class we
 * do not know gets its own message, since its forward pass could compute anything.
 */
function refuseWhatIsNotWeights(pickled: PickledCheckpoint, fileName: string): void {
  const [first, ...others] = pickled.unknownGlobals;
  if (first === undefined) return;
  const module = findUnknownModule(pickled.root);
  if (module) {
    const where = module.entry === undefined ? '' : ` in its entry '${module.entry}'`;
    throw new CheckpointError(
      fileName,
      'whole-module',
      `the checkpoint pickles a whole model object of class ${module.className}${where}, which this reader does not know: ` +
        "it reads whole models only of torch.nn's layers and torchvision's and torchxrayvision's classifiers, and never " +
        'runs code from a file. Load it in Python and save the weights: torch.save(model.state_dict(), "weights.pth")',
    );
  }
  const more = others.length ? ` (and ${others.length} more: ${others.slice(0, 3).join(', ')}${others.length > 3 ? ', ...' : ''})` : '';
  throw new CheckpointError(
    fileName,
    'unknown-global',
    `the checkpoint refers to the Python global ${first}${more}, which this reader does not rebuild: it only ` +
      'rebuilds tensors, plain containers and known model classes, and never runs code from a file. Save only the ' +
      'weights in Python: torch.save(model.state_dict(), "weights.pth")',
  );
}
