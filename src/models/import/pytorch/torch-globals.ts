/**
 * The Python globals a torch.save checkpoint of weights may name, implemented as plain data builders, and the
 * records they produce (storage and tensor references, resolved into arrays only after the state dict is chosen).
 */
import { halfToFloat } from './convert.js';
import { type AcceptsState, type GlobalImplementation, PickleGlobal, pythonInt } from './pickle.js';

/** Element types of torch storages that this reader decodes. */
export type StorageDType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'bfloat16'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool';

export const STORAGE_ELEMENT_SIZE: Record<StorageDType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

const STORAGE_TYPES = new Map<string, StorageDType>([
  ['FloatStorage', 'float32'],
  ['DoubleStorage', 'float64'],
  ['HalfStorage', 'float16'],
  ['BFloat16Storage', 'bfloat16'],
  ['LongStorage', 'int64'],
  ['IntStorage', 'int32'],
  ['ShortStorage', 'int16'],
  ['CharStorage', 'int8'],
  ['ByteStorage', 'uint8'],
  ['BoolStorage', 'bool'],
  ['UntypedStorage', 'uint8'],
]);

/** The element type of a storage class global such as torch.FloatStorage, or undefined for one we cannot decode. */
export function storageDType(storageClass: unknown): StorageDType | undefined {
  if (!(storageClass instanceof PickleGlobal) || storageClass.module !== 'torch') return undefined;
  return STORAGE_TYPES.get(storageClass.name);
}

/** A storage as the pickle names it: a key into the archive (zip) or into the storage area (legacy). */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: StorageDType,
    /** Elements the storage holds. */
    readonly numel: number,
    /** Element offset into the key's data (pre-1.0 legacy storage views; 0 otherwise). */
    readonly elementOffset = 0,
  ) {}
}

/** A tensor as torch rebuilds it: a view of a storage with an element offset and strides. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly size: readonly number[],
    readonly stride: readonly number[],
  ) {}
}

/** A numpy dtype, enough to decode numpy scalars (e.g. a best AUC saved as np.float64). */
class NumpyDType implements AcceptsState {
  littleEndian = true;
  constructor(readonly code: string) {}

  setState(state: unknown): void {
    if (Array.isArray(state) && typeof state[1] === 'string') this.littleEndian = state[1] !== '>';
  }
}

function numpyScalar([dtype, data]: unknown[]): number | bigint | boolean {
  if (!(dtype instanceof NumpyDType) || !(data instanceof Uint8Array)) throw new Error('expected (dtype, bytes)');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = dtype.littleEndian;
  const decoders: Record<string, () => number | bigint | boolean> = {
    f8: () => view.getFloat64(0, le),
    f4: () => view.getFloat32(0, le),
    f2: () => halfToFloat(view.getUint16(0, le)),
    i8: () => pythonInt(view.getBigInt64(0, le)),
    u8: () => pythonInt(view.getBigUint64(0, le)),
    i4: () => view.getInt32(0, le),
    u4: () => view.getUint32(0, le),
    i2: () => view.getInt16(0, le),
    u2: () => view.getUint16(0, le),
    i1: () => view.getInt8(0),
    u1: () => view.getUint8(0),
    b1: () => view.getUint8(0) !== 0,
  };
  const decode = decoders[dtype.code];
  if (!decode) throw new Error(`numpy scalars of dtype '${dtype.code}' are not supported`);
  return decode(); // a DataView read past the bytes throws, which the unpickler reports
}

function int(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${what} must be a non-negative integer`);
  }
  return value;
}

function ints(value: unknown, what: string): number[] {
  if (!Array.isArray(value)) throw new Error(`${what} must be a tuple`);
  return value.map((item) => int(item, what));
}

function rebuildTensor([storage, offset, size, stride]: unknown[]): TensorRef {
  if (!(storage instanceof StorageRef)) throw new Error('the first argument must be a storage');
  const dims = ints(size, 'size');
  const strides = ints(stride, 'stride');
  if (dims.length !== strides.length) throw new Error(`size has ${dims.length} dims but stride ${strides.length}`);
  return new TensorRef(storage, int(offset, 'storage offset'), dims, strides);
}

function tensorArgument(value: unknown): TensorRef {
  if (!(value instanceof TensorRef)) throw new Error('expected a tensor');
  return value;
}

function latin1Bytes(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 255) throw new Error('a latin-1 string holds a character above 255');
    bytes[i] = code;
  }
  return bytes;
}

/**
 * An nn.Module of a class whose pickled state we read as data (`_parameters`, `_buffers`, `_modules` and plain
 * attributes); nothing of the class ever runs, and its state is whatever the pickle's BUILD gives, unchecked.
 */
export class PickledModule implements AcceptsState {
  state = new Map<unknown, unknown>();
  constructor(readonly className: string) {}

  setState(state: unknown): void {
    if (state instanceof Map) this.state = state;
  }
}

/**
 * Module classes whose pickles (torch.save(model)) are read: torch.nn's layers and containers, torchvision's
 * classification models and torchxrayvision's classifiers. Their state is all the reader needs; a class outside
 * this list is refused by name, since its forward pass could compute anything.
 */
export const READABLE_MODULE_CLASSES = [
  ...['container.Sequential', 'container.ModuleList', 'container.ModuleDict', 'conv.Conv2d', 'batchnorm.BatchNorm2d']
    .concat(['activation.ReLU', 'activation.ReLU6', 'activation.Sigmoid', 'pooling.MaxPool2d', 'pooling.AvgPool2d'])
    .concat(['pooling.AdaptiveAvgPool2d', 'linear.Linear', 'linear.Identity', 'dropout.Dropout', 'flatten.Flatten'])
    .concat(['upsampling.Upsample'])
    .map((name) => `torch.nn.modules.${name}`),
  'torch.nn.parallel.data_parallel.DataParallel',
  ...['DenseNet', '_DenseBlock', '_DenseLayer', '_Transition'].map((name) => `torchvision.models.densenet.${name}`),
  ...['ResNet', 'Bottleneck', 'BasicBlock'].map((name) => `torchvision.models.resnet.${name}`),
  ...['MobileNetV2', 'InvertedResidual', 'ConvBNReLU', 'ConvBNActivation'].map((name) => `torchvision.models.mobilenetv2.${name}`),
  'torchvision.ops.misc.Conv2dNormActivation',
  'torchvision.ops.misc.ConvNormActivation',
  'torchvision.models.alexnet.AlexNet',
  ...['DenseNet', '_DenseBlock', '_DenseLayer', '_Transition', 'ResNet'].map((name) => `torchxrayvision.models.${name}`),
];

/** Globals that are only ever passed around as values (storage classes, dtypes), never called. */
const DATA_ONLY: GlobalImplementation = {};
const TORCH_DTYPES = ['float16', 'bfloat16', 'float32', 'float64', 'half', 'float', 'double', 'long', 'int', 'short']
  .concat(['int64', 'int32', 'int16', 'int8', 'uint8', 'bool']);

/** Known globals by qualified name. Everything else is refused by the checkpoint reader. */
const KNOWN_GLOBALS = new Map<string, GlobalImplementation>([
  ['collections.OrderedDict', { call: (args) => new Map(args.length ? pairs(args[0]) : []) }],
  ['builtins.set', { call: (args) => new Set(args.length ? iterable(args[0]) : []) }],
  ['builtins.frozenset', { call: (args) => new Set(args.length ? iterable(args[0]) : []) }],
  ['__builtin__.set', { call: (args) => new Set(args.length ? iterable(args[0]) : []) }],
  ['__builtin__.frozenset', { call: (args) => new Set(args.length ? iterable(args[0]) : []) }],
  // Protocol 2 writes Python 3 bytes as _codecs.encode(text, 'latin1').
  [
    '_codecs.encode',
    {
      call: ([text, encoding]) => {
        if (typeof text !== 'string') throw new Error('expected a string');
        if (typeof encoding === 'string' && /^utf-?8$/i.test(encoding)) return new TextEncoder().encode(text);
        if (typeof encoding === 'string' && /^(latin-?1|iso-8859-1)$/i.test(encoding)) return latin1Bytes(text);
        throw new Error(`encoding ${String(encoding)} is not supported`);
      },
    },
  ],
  ['torch._utils._rebuild_tensor', { call: rebuildTensor }],
  ['torch._utils._rebuild_tensor_v2', { call: rebuildTensor }],
  ['torch._utils._rebuild_parameter', { call: ([tensor]) => tensorArgument(tensor) }],
  ['torch._utils._rebuild_parameter_with_state', { call: ([tensor]) => tensorArgument(tensor) }],
  // Tensors with Python attributes or of a subclass: rebuild the plain tensor, drop the attributes.
  [
    'torch._tensor._rebuild_from_type_v2',
    {
      call: ([rebuild, , args]) => {
        if (!(rebuild instanceof PickleGlobal) || !rebuild.implementation?.call || !Array.isArray(args)) {
          throw new Error('expected a known rebuild function and its arguments');
        }
        return tensorArgument(rebuild.implementation.call(args));
      },
    },
  ],
  ['torch.Tensor', DATA_ONLY],
  ['torch.nn.parameter.Parameter', DATA_ONLY],
  ['torch.Size', { call: ([dims]) => ints(dims, 'torch.Size') }],
  ['torch.device', { call: (args) => args.join(':') }],
  ['numpy.dtype', { call: ([code]) => new NumpyDType(String(code)) }],
  ['numpy.core.multiarray.scalar', { call: numpyScalar }],
  ['numpy._core.multiarray.scalar', { call: numpyScalar }],
  ...[...STORAGE_TYPES.keys(), ...TORCH_DTYPES].map((name): [string, GlobalImplementation] => [`torch.${name}`, DATA_ONLY]),
  ...READABLE_MODULE_CLASSES.map((name): [string, GlobalImplementation] => [name, { call: () => new PickledModule(name) }]),
]);

function iterable(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (value instanceof Set) return [...value];
  throw new Error('expected a list');
}

function pairs(value: unknown): [unknown, unknown][] {
  if (value instanceof Map) return [...value];
  return iterable(value).map((pair) => {
    if (!Array.isArray(pair) || pair.length !== 2) throw new Error('expected (key, value) pairs');
    return [pair[0], pair[1]];
  });
}

export function resolveTorchGlobal(module: string, name: string): GlobalImplementation | undefined {
  return KNOWN_GLOBALS.get(`${module}.${name}`);
}
