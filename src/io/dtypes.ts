/**
 * Byte-level facts about HostTensor dtypes shared by every file format in io/: element sizes,
 * typed-array constructors, and conversion between raw little-endian bytes and HostData.
 */
import { endianness } from 'node:os';
import type { DType, HostData, HostTensor } from './host-tensor.js';
import { numel } from './host-tensor.js';

type HostDataCtor = {
  new (length: number): HostData;
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): HostData;
  readonly BYTES_PER_ELEMENT: number;
};

const CTORS: Record<DType, HostDataCtor> = {
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
} as unknown as Record<DType, HostDataCtor>;

export const ALL_DTYPES = Object.keys(CTORS) as DType[];

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(CTORS, s);
}

export function elementSize(dtype: DType): number {
  return CTORS[dtype].BYTES_PER_ELEMENT;
}

/** The typed-array class that holds `dtype` (float16/bfloat16: raw bits in a Uint16Array). */
export function dataCtor(dtype: DType): HostDataCtor {
  return CTORS[dtype];
}

export const HOST_IS_LITTLE_ENDIAN = endianness() === 'LE';

/** Reverses the bytes of every element in place (for big-endian files). */
export function byteSwapInPlace(bytes: Uint8Array, elemSize: number): void {
  if (elemSize === 1) return;
  for (let i = 0; i + elemSize <= bytes.length; i += elemSize) {
    for (let a = i, b = i + elemSize - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

/**
 * Copies `bytes` (little-endian element data, any alignment) into a fresh, aligned typed array.
 * The copy also detaches the result from the (usually much larger) file buffer.
 */
export function hostDataFromBytes(dtype: DType, bytes: Uint8Array, littleEndian = true): HostData {
  const size = elementSize(dtype);
  if (bytes.length % size !== 0) {
    throw new Error(`${bytes.length} bytes is not a whole number of ${dtype} elements`);
  }
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  if (littleEndian !== HOST_IS_LITTLE_ENDIAN) byteSwapInPlace(copy, size);
  const Ctor = dataCtor(dtype);
  return new Ctor(copy.buffer, 0, bytes.length / size);
}

/** The tensor's element bytes in little-endian order (a view when the host is little-endian). */
export function hostDataBytes(t: HostTensor): Uint8Array {
  const d = t.data;
  const view = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (HOST_IS_LITTLE_ENDIAN) return view;
  const copy = Uint8Array.from(view);
  byteSwapInPlace(copy, elementSize(t.dtype));
  return copy;
}

/** Throws unless `t.data` has the typed-array class and length that dtype and shape require. */
export function checkHostTensor(t: HostTensor, what: string): void {
  if (!isDType(t.dtype)) throw new Error(`${what}: unknown dtype ${String(t.dtype)}`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`${what}: shape must be non-negative integers, got ${JSON.stringify(t.shape)}`);
  }
  const Ctor = dataCtor(t.dtype);
  if (!(t.data instanceof (Ctor as unknown as typeof Uint8Array))) {
    throw new Error(`${what}: ${t.dtype} data must be a ${Ctor.name}, got ${t.data?.constructor?.name}`);
  }
  const n = numel(t.shape);
  if (t.data.length !== n) {
    throw new Error(`${what}: shape ${JSON.stringify(t.shape)} needs ${n} elements, data has ${t.data.length}`);
  }
}
