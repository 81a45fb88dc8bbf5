/**
 * Second phase of reading a checkpoint: replace every PendingTensor in the unpickled object graph
 * by a contiguous HostTensor built from its storage bytes (storage offset and any strides
 * honoured), and reject VM objects that are not data (bare storages, classes).
 */
import type { DType, HostData, HostTensor } from '../host-tensor.js';
import { numel } from '../host-tensor.js';
import { dataCtor, elementSize, hostDataFromBytes } from '../dtypes.js';
import { UserError } from '../../util/errors.js';
import { PyDict, PyTuple, type PyValue } from './py-values.js';
import { GlobalRef, PendingTensor, isStorageRef, type Item, type StorageRef } from './unpickler.js';

export interface StorageSource {
  /** Raw bytes of the whole root storage `key`. */
  bytes(ref: StorageRef): Uint8Array;
  /** Byte order of the storage data in the file. */
  littleEndian: boolean;
}

/** C-order strides as torch computes them (sizes of 0 count as 1). */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= Math.max(shape[i]!, 1);
  }
  return strides;
}

export function materialize(root: Item, storages: StorageSource, source: string): PyValue {
  const storageCache = new Map<string, HostData>();
  const done = new Map<PendingTensor, HostTensor>();

  const storageData = (ref: StorageRef, dtype: DType): HostData => {
    const cacheKey = `${ref.key}\u0000${dtype}`;
    let d = storageCache.get(cacheKey);
    if (!d) {
      const bytes = storages.bytes(ref);
      const size = elementSize(dtype);
      const usable = bytes.subarray(0, bytes.length - (bytes.length % size));
      d = hostDataFromBytes(dtype, usable, storages.littleEndian);
      storageCache.set(cacheKey, d);
    }
    return d;
  };

  const tensorOf = (p: PendingTensor): HostTensor => {
    const hit = done.get(p);
    if (hit) return hit;
    const st = storageData(p.storage, p.dtype);
    const n = numel(p.size);
    const offset = p.storageOffset + p.storage.elemOffset;
    const Ctor = dataCtor(p.dtype);
    let data: HostData;
    if (n === 0) {
      data = new Ctor(0);
    } else {
      let last = offset;
      for (let d = 0; d < p.size.length; d++) last += (p.size[d]! - 1) * p.stride[d]!;
      if (p.size.length !== p.stride.length || last >= st.length) {
        throw new UserError(
          `${source}: tensor of shape [${p.size.join(', ')}] does not fit in storage ${p.storage.key} ` +
            `(${st.length} ${p.dtype} elements; truncated or corrupt file?)`,
        );
      }
      const want = contiguousStrides(p.size);
      const contiguous = p.size.every((s, d) => s <= 1 || p.stride[d] === want[d]);
      if (contiguous) {
        data = st.slice(offset, offset + n) as HostData;
      } else {
        data = gather(st, new Ctor(n), offset, p.size, p.stride);
      }
    }
    const t: HostTensor = { dtype: p.dtype, shape: p.size.slice(), data };
    done.set(p, t);
    return t;
  };

  const convert = (v: Item): PyValue => {
    if (v instanceof PendingTensor) return tensorOf(v);
    if (v instanceof GlobalRef) throw new UserError(`${source}: checkpoint holds ${v.qualified} as a value (not tensor checkpoint data)`);
    if (isStorageRef(v)) throw new UserError(`${source}: checkpoint holds a bare storage (${v.key}) outside a tensor`);
    return v as PyValue;
  };

  // Iterative walk (checkpoints can nest deeply; cycles are possible in hostile files).
  const seen = new Set<object>();
  const todo: Item[] = [root];
  const result = convert(root);
  while (todo.length > 0) {
    const v = todo.pop()!;
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    if (Array.isArray(v)) {
      seen.add(v);
      for (let i = 0; i < v.length; i++) {
        v[i] = convert(v[i] as Item);
        todo.push(v[i] as Item);
      }
    } else if (v instanceof PyTuple) {
      seen.add(v);
      for (let i = 0; i < v.items.length; i++) {
        v.items[i] = convert(v.items[i] as Item);
        todo.push(v.items[i] as Item);
      }
    } else if (v instanceof PyDict) {
      seen.add(v);
      for (const [k, val] of v) {
        if (k instanceof PendingTensor || typeof k === 'object' && k !== null && !(k instanceof PyTuple)) {
          throw new UserError(`${source}: checkpoint dict has a ${k instanceof PendingTensor ? 'tensor' : 'non-hashable'} key`);
        }
        const c = convert(val as Item);
        v.set(k, c);
        todo.push(c as Item);
        if (k instanceof PyTuple) todo.push(k);
      }
      if (v.state !== undefined) {
        v.state = convert(v.state as Item);
        todo.push(v.state as Item);
      }
    }
  }
  return result;
}

function gather(src: HostData, out: HostData, offset: number, size: number[], stride: number[]): HostData {
  const nd = size.length;
  const idx = new Array<number>(nd).fill(0);
  const s = src as unknown as ArrayLike<number | bigint>;
  const o = out as unknown as { [i: number]: number | bigint };
  let p = offset;
  for (let i = 0; i < out.length; i++) {
    o[i] = s[p]!;
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++;
      p += stride[d]!;
      if (idx[d]! < size[d]!) break;
      p -= stride[d]! * size[d]!;
      idx[d] = 0;
    }
  }
  return out;
}
