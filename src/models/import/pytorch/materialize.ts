/**
 * Turns tensor references (storage, offset, size, strides) into C-contiguous host tensors.
 * Contiguous tensors cost one typed-array copy (none when a tensor is the sole user of a private storage); other
 * layouts are gathered row by row; float64, float16 and bfloat16 become float32.
 */
import { type DType, type HostTensor, elementCount } from '../../../onnx/tensor.js';
import { bfloat16ToFloat32, float16ToFloat32 } from './convert.js';
import { STORAGE_ELEMENT_SIZE, type StorageDType, type StorageRef, type TensorRef } from './torch-globals.js';

type SourceArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

type SourceArrayConstructor = {
  new (length: number): SourceArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): SourceArray;
};

const SOURCE_ARRAYS: Record<StorageDType, SourceArrayConstructor> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

/** The element type each storage type is returned as: every float type becomes float32. */
export const RETURNED_DTYPE: Record<StorageDType, DType> = {
  float32: 'float32',
  float64: 'float32',
  float16: 'float32',
  bfloat16: 'float32',
  int64: 'int64',
  int32: 'int32',
  int16: 'int16',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
};

const MAX_ELEMENTS = 2 ** 31;

/** The bytes stored under one storage key. */
export interface StorageBytes {
  bytes: Uint8Array;
  /** True when the bytes are a private copy (not a view of the caller's input) that tensors may keep. */
  owned: boolean;
}

interface StorageView {
  array: SourceArray;
  owned: boolean;
}

export class TensorMaterializer {
  private readonly views = new Map<string, StorageView>();

  constructor(
    private readonly storages: ReadonlyMap<string, StorageBytes>,
    /** How many of the tensors being built use each storage key: a storage used once can be handed over. */
    private readonly uses: ReadonlyMap<string, number>,
  ) {}

  build(name: string, ref: TensorRef): HostTensor {
    const { storage } = ref;
    const count = elementCount(ref.size);
    const layout = simplifyLayout(ref.size, ref.stride);
    // Zero strides let a tiny storage claim an enormous tensor; refuse before allocating it.
    if (count > MAX_ELEMENTS) throw new Error(`tensor '${name}' of shape [${ref.size.join(', ')}] is too large to load`);
    if (count > 0) {
      const last = ref.storageOffset + ref.size.reduce((sum, dim, i) => sum + (dim - 1) * ref.stride[i], 0);
      if (last >= storage.numel) {
        throw new Error(
          `tensor '${name}' of shape [${ref.size.join(', ')}] reads element ${last} of a storage of ${storage.numel} elements`,
        );
      }
    }
    const view = this.view(name, storage);
    const converts = RETURNED_DTYPE[storage.dtype] !== storage.dtype;
    let values: SourceArray;
    if (layout.dims.length <= 1 && (layout.dims.length === 0 || layout.strides[0] === 1)) {
      const start = ref.storageOffset;
      const wholeStorage = start === 0 && count === view.array.length;
      if (wholeStorage && view.owned && !converts && this.uses.get(storage.key) === 1) values = view.array;
      else values = converts ? view.array.subarray(start, start + count) : view.array.slice(start, start + count);
    } else {
      values = gather(view.array, ref.storageOffset, layout, count);
    }
    return { dtype: RETURNED_DTYPE[storage.dtype], dims: [...ref.size], data: toReturned(storage.dtype, values) };
  }

  private view(name: string, ref: StorageRef): StorageView {
    const id = `${ref.key}\u0000${ref.dtype}\u0000${ref.elementOffset}`;
    const cached = this.views.get(id);
    if (cached) return cached;
    const raw = this.storages.get(ref.key);
    if (!raw) throw new Error(`the data of storage '${ref.key}' (used by tensor '${name}') is missing`);
    const size = STORAGE_ELEMENT_SIZE[ref.dtype];
    const start = ref.elementOffset * size;
    const length = ref.numel * size;
    if (raw.bytes.byteLength < start + length) {
      throw new Error(
        `storage '${ref.key}' (used by tensor '${name}') should hold ${ref.numel} ${ref.dtype} elements ` +
          `(${start + length} bytes) but has ${raw.bytes.byteLength} bytes`,
      );
    }
    let bytes = raw.bytes.subarray(start, start + length);
    let owned = raw.owned;
    // Typed arrays need aligned offsets; legacy files place storages at arbitrary byte offsets.
    if (bytes.byteOffset % size !== 0) {
      bytes = new Uint8Array(bytes); // a copy even when the input is a Node Buffer, whose slice() is a view
      owned = true;
    }
    const view = { array: new SOURCE_ARRAYS[ref.dtype](bytes.buffer, bytes.byteOffset, ref.numel), owned };
    this.views.set(id, view);
    return view;
  }
}

function toReturned(dtype: StorageDType, values: SourceArray): HostTensor['data'] {
  if (dtype === 'float64') return new Float32Array(values as Float64Array);
  if (dtype === 'float16') return float16ToFloat32(values as Uint16Array);
  if (dtype === 'bfloat16') return bfloat16ToFloat32(values as Uint16Array);
  return values;
}

interface Layout {
  dims: number[];
  strides: number[];
}

/** Drops dims of size 1 and merges dims that are contiguous with each other, so copies run over long rows. */
function simplifyLayout(size: readonly number[], stride: readonly number[]): Layout {
  const dims: number[] = [];
  const strides: number[] = [];
  size.forEach((dim, i) => {
    if (dim === 1) return;
    const last = dims.length - 1;
    if (last >= 0 && strides[last] === stride[i] * dim) {
      dims[last] *= dim;
      strides[last] = stride[i];
    } else {
      dims.push(dim);
      strides.push(stride[i]);
    }
  });
  return { dims, strides };
}

/** Copies a strided view (any strides, zero and overlapping included) into a new C-contiguous array. */
function gather(source: SourceArray, offset: number, { dims, strides }: Layout, count: number): SourceArray {
  const target = new (source.constructor as SourceArrayConstructor)(count);
  if (count === 0) return target;
  // Element copies do not depend on the element type; one array type keeps the indexing monomorphic for TypeScript.
  const src = source as unknown as Float64Array;
  const dst = target as unknown as Float64Array;
  const inner = dims.length - 1;
  const rowLength = dims[inner];
  const rowStride = strides[inner];
  const counters = new Array<number>(inner).fill(0);
  let base = offset;
  for (let out = 0; out < count; out += rowLength) {
    if (rowStride === 1) dst.set(src.subarray(base, base + rowLength), out);
    else for (let j = 0, at = base; j < rowLength; j++, at += rowStride) dst[out + j] = src[at];
    for (let d = inner - 1; d >= 0; d--) {
      base += strides[d];
      if (++counters[d] < dims[d]) break;
      base -= strides[d] * dims[d];
      counters[d] = 0;
    }
  }
  return target;
}
