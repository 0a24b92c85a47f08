/** Host-side tensors: plain typed arrays with ONNX element types, independent of any runtime. */

export type DType = 'float32' | 'float64' | 'float16' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'int64' | 'bool';

export type TypedArrayOf<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'float64'
    ? Float64Array
    : D extends 'float16'
      ? Uint16Array
      : D extends 'int8'
        ? Int8Array
        : D extends 'uint8' | 'bool'
          ? Uint8Array
          : D extends 'int16'
            ? Int16Array
            : D extends 'uint16'
              ? Uint16Array
              : D extends 'int32'
                ? Int32Array
                : BigInt64Array;

export type AnyTypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | BigInt64Array;

/** A dense, C-contiguous tensor held in memory. */
export interface HostTensor<D extends DType = DType> {
  readonly dtype: D;
  readonly dims: readonly number[];
  readonly data: TypedArrayOf<D>;
}

/** ONNX TensorProto.DataType codes. */
export const ONNX_DTYPE_CODE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

const CODE_TO_DTYPE = new Map<number, DType>(Object.entries(ONNX_DTYPE_CODE).map(([d, c]) => [c, d as DType]));

export function dtypeFromOnnxCode(code: number): DType {
  const dtype = CODE_TO_DTYPE.get(code);
  if (!dtype) throw new Error(`ONNX element type ${code} is not supported`);
  return dtype;
}

export const BYTES_PER_ELEMENT: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  int64: 8,
  bool: 1,
};

const ARRAY_CONSTRUCTORS = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
} as const;

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function allocate<D extends DType>(dtype: D, length: number): TypedArrayOf<D> {
  return new ARRAY_CONSTRUCTORS[dtype](length) as TypedArrayOf<D>;
}

export function tensor<D extends DType>(dtype: D, dims: readonly number[], data?: TypedArrayOf<D>): HostTensor<D> {
  const count = elementCount(dims);
  const values = data ?? allocate(dtype, count);
  if (values.length !== count) {
    throw new Error(`tensor of shape [${dims.join(', ')}] needs ${count} elements, got ${values.length}`);
  }
  return { dtype, dims: [...dims], data: values };
}

export function float32(dims: readonly number[], values?: ArrayLike<number>): HostTensor<'float32'> {
  return tensor('float32', dims, values ? Float32Array.from(values) : undefined);
}

export function int64(dims: readonly number[], values: ArrayLike<number | bigint>): HostTensor<'int64'> {
  return tensor('int64', dims, BigInt64Array.from(Array.from(values, (v) => BigInt(v))));
}

/** Copies bytes (any alignment) into a fresh typed array of the given element type, little endian. */
export function typedArrayFromBytes<D extends DType>(dtype: D, bytes: Uint8Array): TypedArrayOf<D> {
  const size = BYTES_PER_ELEMENT[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new Error(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new ARRAY_CONSTRUCTORS[dtype](copy.buffer, 0, bytes.byteLength / size) as TypedArrayOf<D>;
}

export function bytesOf(data: AnyTypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function shapeToString(dims: readonly (number | string)[]): string {
  return `[${dims.join(', ')}]`;
}
