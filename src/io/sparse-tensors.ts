/**
 * Compact storage of mostly-zero float32 tensors inside a safetensors file: a tensor `K` whose
 * kept entries are given by a mask is stored as `K:values` (F32, the kept entries in C order)
 * plus either `K:bits` (U8, the mask packed 8 entries per byte, least significant bit first:
 * numpy.packbits(mask, bitorder='little')) or `K:indices` (I16/I32, the kept entries' flat
 * indices, increasing), whichever is smaller; a tensor for which neither beats plain float32 is
 * stored dense under its own name. The `sparse_tensors` metadata entry records each encoded
 * tensor's shape and mask encoding, so a reader needs nothing else.
 */
import type { HostTensor, StateDict } from './host-tensor.js';
import { numel } from './host-tensor.js';
import { UserError } from '../util/errors.js';

export type MaskEncoding = 'bits' | 'indices';

export interface SparseLayoutEntry {
  shape: number[];
  mask: MaskEncoding;
}

/** Metadata key holding the JSON `{K: {shape, mask}}` of the encoded tensors. */
export const SPARSE_LAYOUT_KEY = 'sparse_tensors';
export const VALUES_SUFFIX = ':values';
const BITS_SUFFIX = ':bits';
const INDICES_SUFFIX = ':indices';
/** Largest flat index an I16 index tensor holds. */
const I16_MAX = 32767;

/** Bytes of each storage choice for `n` entries of which `nnz` are kept. */
export function storageBytes(n: number, nnz: number): { dense: number; bits: number; indices: number } {
  return { dense: 4 * n, bits: 4 * nnz + Math.ceil(n / 8), indices: 4 * nnz + (n - 1 <= I16_MAX ? 2 : 4) * nnz };
}

/** Mask (one byte per entry, non-zero = kept) → packed bits, least significant bit first. */
export function packBits(mask: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(mask.length / 8));
  for (let i = 0; i < mask.length; i++) if (mask[i]) out[i >> 3] |= 1 << (i & 7);
  return out;
}

export interface EncodedSparse {
  tensors: StateDict;
  layout: Record<string, SparseLayoutEntry>;
  /** Kept entries over all encoded tensors. */
  nonZeros: number;
}

/**
 * Encodes the tensors of `sd` that `keep` has a mask for (float32 only; the others go dense, in
 * their order). Entries outside the mask are dropped: the decoded tensor has +0 there.
 */
export function encodeSparse(sd: StateDict, keep: ReadonlyMap<string, Uint8Array>): EncodedSparse {
  const tensors: StateDict = new Map();
  const layout: Record<string, SparseLayoutEntry> = {};
  let nonZeros = 0;
  for (const [k, t] of sd) {
    const mask = keep.get(k);
    if (!mask || t.dtype !== 'float32') {
      tensors.set(k, t);
      continue;
    }
    const n = t.data.length;
    if (mask.length !== n) throw new Error(`sparse encoding of ${k}: mask has ${mask.length} entries, tensor ${n}`);
    let nnz = 0;
    for (let i = 0; i < n; i++) if (mask[i]) nnz++;
    const size = storageBytes(n, nnz);
    if (Math.min(size.bits, size.indices) >= size.dense) {
      tensors.set(k, t);
      nonZeros += nnz;
      continue;
    }
    const src = t.data as Float32Array;
    const values = new Float32Array(nnz);
    const useBits = size.bits <= size.indices;
    const indices = useBits ? undefined : n - 1 <= I16_MAX ? new Int16Array(nnz) : new Int32Array(nnz);
    for (let i = 0, j = 0; i < n; i++) {
      if (!mask[i]) continue;
      values[j] = src[i];
      if (indices) indices[j] = i;
      j++;
    }
    tensors.set(k + VALUES_SUFFIX, { dtype: 'float32', shape: [nnz], data: values });
    if (indices) tensors.set(k + INDICES_SUFFIX, { dtype: indices instanceof Int16Array ? 'int16' : 'int32', shape: [nnz], data: indices });
    else tensors.set(k + BITS_SUFFIX, { dtype: 'uint8', shape: [Math.ceil(n / 8)], data: packBits(mask) });
    layout[k] = { shape: [...t.shape], mask: useBits ? 'bits' : 'indices' };
    nonZeros += nnz;
  }
  return { tensors, layout, nonZeros };
}

/** Parses the `sparse_tensors` metadata entry. */
export function parseSparseLayout(json: string | undefined, source: string): Record<string, SparseLayoutEntry> {
  const bad = (why: string): never => {
    throw new UserError(`${source}: not a valid sparse checkpoint (${why})`);
  };
  if (json === undefined) bad(`no ${SPARSE_LAYOUT_KEY} metadata`);
  let raw: unknown;
  try {
    raw = JSON.parse(json!);
  } catch {
    bad(`${SPARSE_LAYOUT_KEY} metadata is not JSON`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad(`${SPARSE_LAYOUT_KEY} metadata is not an object`);
  const out: Record<string, SparseLayoutEntry> = {};
  for (const [k, v] of Object.entries(raw as object)) {
    const e = v as Partial<SparseLayoutEntry>;
    const okShape = Array.isArray(e?.shape) && e.shape.every((d) => Number.isSafeInteger(d) && d >= 0);
    if (!okShape || (e.mask !== 'bits' && e.mask !== 'indices')) bad(`${SPARSE_LAYOUT_KEY}.${k} is not {shape, mask: bits|indices}`);
    out[k] = { shape: e.shape!.slice(), mask: e.mask! };
  }
  return out;
}

/**
 * The dense tensors back, in the order they were encoded (each `K:values` becomes `K` where it
 * stood). Every inconsistency (missing part, mask count ≠ values, index out of range or not
 * increasing) is a UserError naming `source` and the tensor.
 */
export function decodeSparse(tensors: StateDict, layout: Record<string, SparseLayoutEntry>, source: string): StateDict {
  const bad = (k: string, why: string): never => {
    throw new UserError(`${source}: sparse tensor ${k}: ${why}`);
  };
  const out: StateDict = new Map();
  const parts = new Set<string>();
  for (const k of Object.keys(layout)) {
    parts.add(k + VALUES_SUFFIX);
    parts.add(k + (layout[k].mask === 'bits' ? BITS_SUFFIX : INDICES_SUFFIX));
  }
  for (const [name, t] of tensors) {
    if (!name.endsWith(VALUES_SUFFIX) || !layout[name.slice(0, -VALUES_SUFFIX.length)]) {
      if (!parts.has(name)) out.set(name, t);
      continue;
    }
    const k = name.slice(0, -VALUES_SUFFIX.length);
    out.set(k, decodeOne(k, layout[k], t, tensors, bad));
  }
  for (const k of Object.keys(layout)) if (!out.has(k)) bad(k, `no ${k}${VALUES_SUFFIX} tensor`);
  return out;
}

function decodeOne(
  k: string,
  e: SparseLayoutEntry,
  values: HostTensor,
  tensors: StateDict,
  bad: (k: string, why: string) => never,
): HostTensor {
  const n = numel(e.shape);
  if (values.dtype !== 'float32' || values.shape.length !== 1) bad(k, 'values are not a 1-D float32 tensor');
  const v = values.data as Float32Array;
  const data = new Float32Array(n);
  if (e.mask === 'bits') {
    const bits = tensors.get(k + BITS_SUFFIX);
    if (!bits) bad(k, `no ${k}${BITS_SUFFIX} tensor`);
    if (bits!.dtype !== 'uint8' || bits!.data.length !== Math.ceil(n / 8)) bad(k, `mask is not ${Math.ceil(n / 8)} uint8 bytes for ${n} entries`);
    const b = bits!.data as Uint8Array;
    let j = 0;
    for (let i = 0; i < n; i++) {
      if (!((b[i >> 3] >> (i & 7)) & 1)) continue;
      if (j >= v.length) bad(k, `mask has more set bits than the ${v.length} values`);
      data[i] = v[j++];
    }
    if (j !== v.length) bad(k, `mask has ${j} set bits for ${v.length} values`);
  } else {
    const idx = tensors.get(k + INDICES_SUFFIX);
    if (!idx) bad(k, `no ${k}${INDICES_SUFFIX} tensor`);
    if ((idx!.dtype !== 'int16' && idx!.dtype !== 'int32') || idx!.data.length !== v.length) bad(k, `indices are not ${v.length} int16/int32 entries`);
    const ix = idx!.data as Int16Array | Int32Array;
    let prev = -1;
    for (let j = 0; j < ix.length; j++) {
      const i = ix[j];
      if (!(i > prev && i < n)) bad(k, `index ${i} at position ${j} is out of range or not increasing`);
      data[i] = v[j];
      prev = i;
    }
  }
  return { dtype: 'float32', shape: e.shape.slice(), data };
}
