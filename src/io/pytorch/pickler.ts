/**
 * Pickles a PyValue the way torch.save's pickler (CPython's C `_pickle`, protocol 2) does, byte
 * for byte: memo numbering, BINPUT/BINGET, batching of SETITEMS/APPENDS in groups of 1000 (with
 * the exact-dict / generic-iterator differences), OrderedDict via REDUCE (+ BUILD for its
 * attributes), and tensors via torch._utils._rebuild_tensor_v2 with a BINPERSID storage id
 * ('storage', torch.<T>Storage, '<key>', 'cpu', numel). Storage keys are '0', '1', ... in
 * pickling order, as torch assigns them.
 *
 * Memoization: containers, tuples and tensors by JS identity (as Python memoizes by object
 * identity); strings by value. CPython shares equal strings in the cases that occur in
 * checkpoints (interned literals such as 'cpu', 'lr', 'momentum_buffer'; one-character strings),
 * so value memoization reproduces torch's bytes; it can differ only when a checkpoint holds two
 * equal non-interned strings built separately at run time.
 */
import type { DType, HostTensor } from '../host-tensor.js';
import { numel } from '../host-tensor.js';
import { checkHostTensor, hostDataBytes } from '../dtypes.js';
import { contiguousStrides } from './materialize.js';
import { PyDict, PyTuple, isHostTensor, isPlainObject, type PyValue } from './py-values.js';

const STORAGE_CLASS: Record<DType, string> = {
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  int16: 'ShortStorage',
  int8: 'CharStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

const BATCHSIZE = 1000;

export interface PickledCheckpoint {
  pickle: Uint8Array;
  /** Storage records in key order of assignment ('0', '1', ...). */
  storages: { key: string; bytes: Uint8Array }[];
}

class ByteSink {
  private chunks: Uint8Array[] = [];
  private cur = Buffer.alloc(1 << 16);
  private n = 0;
  byte(b: number): void {
    this.ensure(1);
    this.cur[this.n++] = b;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.cur.set(b, this.n);
    this.n += b.length;
  }
  u16(v: number): void {
    this.ensure(2);
    this.cur.writeUInt16LE(v, this.n);
    this.n += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.cur.writeUInt32LE(v, this.n);
    this.n += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.cur.writeInt32LE(v, this.n);
    this.n += 4;
  }
  f64be(v: number): void {
    this.ensure(8);
    this.cur.writeDoubleBE(v, this.n);
    this.n += 8;
  }
  private ensure(k: number): void {
    if (this.n + k <= this.cur.length) return;
    this.chunks.push(this.cur.subarray(0, this.n));
    this.cur = Buffer.alloc(Math.max(1 << 16, k));
    this.n = 0;
  }
  finish(): Uint8Array {
    return Buffer.concat([...this.chunks, this.cur.subarray(0, this.n)]);
  }
}

/** Python's minimal two's-complement little-endian encoding of an int (for LONG1). */
export function encodeLong(v: bigint): Uint8Array {
  if (v === 0n) return new Uint8Array(0);
  const abs = v < 0n ? -v : v;
  const nbits = abs.toString(2).length;
  let nbytes = (nbits >> 3) + 1;
  const mod = 1n << BigInt(8 * nbytes);
  let x = v < 0n ? mod + v : v;
  const out = new Uint8Array(nbytes);
  for (let i = 0; i < nbytes; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  if (v < 0n && nbytes > 1 && out[nbytes - 1] === 0xff && (out[nbytes - 2]! & 0x80) !== 0) nbytes--;
  return out.subarray(0, nbytes);
}

export function picklePyValue(root: PyValue): PickledCheckpoint {
  const w = new ByteSink();
  const objMemo = new Map<object, number>();
  const strMemo = new Map<string, number>();
  const globalMemo = new Map<string, number>();
  let memoSize = 0;
  const storages: { key: string; bytes: Uint8Array }[] = [];

  const put = (): number => {
    const i = memoSize++;
    if (i < 256) {
      w.byte(0x71); // BINPUT
      w.byte(i);
    } else {
      w.byte(0x72); // LONG_BINPUT
      w.u32(i);
    }
    return i;
  };
  const get = (i: number): void => {
    if (i < 256) {
      w.byte(0x68); // BINGET
      w.byte(i);
    } else {
      w.byte(0x6a); // LONG_BINGET
      w.u32(i);
    }
  };
  const memoObj = (o: object): void => {
    objMemo.set(o, put());
  };

  const saveGlobal = (module: string, name: string): void => {
    const q = `${module}\n${name}\n`;
    const hit = globalMemo.get(q);
    if (hit !== undefined) return get(hit);
    w.byte(0x63); // GLOBAL
    w.bytes(Buffer.from(q, 'utf8'));
    globalMemo.set(q, put());
  };

  const saveInt = (v: bigint): void => {
    if (v >= 0n && v <= 0xffn) {
      w.byte(0x4b); // BININT1
      w.byte(Number(v));
    } else if (v >= 0n && v <= 0xffffn) {
      w.byte(0x4d); // BININT2
      w.u16(Number(v));
    } else if (v >= -(1n << 31n) && v < 1n << 31n) {
      w.byte(0x4a); // BININT
      w.i32(Number(v));
    } else {
      const b = encodeLong(v);
      if (b.length > 255) throw new Error(`int ${v} too large to pickle`);
      w.byte(0x8a); // LONG1
      w.byte(b.length);
      w.bytes(b);
    }
  };

  const saveStr = (s: string): void => {
    const hit = strMemo.get(s);
    if (hit !== undefined) return get(hit);
    const b = Buffer.from(s, 'utf8');
    w.byte(0x58); // BINUNICODE
    w.u32(b.length);
    w.bytes(b);
    strMemo.set(s, put());
  };

  const saveTupleItems = (items: readonly (() => void)[], key: object | null): void => {
    const n = items.length;
    if (n === 0) {
      w.byte(0x29); // EMPTY_TUPLE (never memoized)
      return;
    }
    if (n <= 3) {
      for (const f of items) f();
      w.byte([0x85, 0x86, 0x87][n - 1]!); // TUPLE1/2/3
    } else {
      w.byte(0x28); // MARK
      for (const f of items) f();
      w.byte(0x74); // TUPLE
    }
    const i = put();
    if (key) objMemo.set(key, i);
  };

  // C pickler's batch_dict_exact: a single item uses SETITEM; otherwise MARK…SETITEMS batches
  // of 1000, repeated while a batch came out full (so 1000 items end with an empty batch).
  const batchDictExact = (entries: [PyValue, PyValue][]): void => {
    if (entries.length === 0) return;
    if (entries.length === 1) {
      save(entries[0]![0]);
      save(entries[0]![1]);
      w.byte(0x73); // SETITEM
      return;
    }
    let i = 0;
    let inBatch: number;
    do {
      inBatch = 0;
      w.byte(0x28); // MARK
      while (i < entries.length) {
        save(entries[i]![0]);
        save(entries[i]![1]);
        i++;
        if (++inBatch === BATCHSIZE) break;
      }
      w.byte(0x75); // SETITEMS
    } while (inBatch === BATCHSIZE);
  };

  // C pickler's batch_dict (iterator protocol, used for OrderedDict's dictitems).
  const batchDictIter = (entries: [PyValue, PyValue][]): void => {
    let i = 0;
    let n = 0;
    do {
      if (i >= entries.length) break;
      if (i + 1 === entries.length) {
        save(entries[i]![0]);
        save(entries[i]![1]);
        w.byte(0x73); // SETITEM
        break;
      }
      w.byte(0x28); // MARK
      n = 0;
      while (i < entries.length && n < BATCHSIZE) {
        save(entries[i]![0]);
        save(entries[i]![1]);
        i++;
        n++;
      }
      w.byte(0x75); // SETITEMS
    } while (n === BATCHSIZE);
  };

  // C pickler's batch_list_exact.
  const batchListExact = (items: PyValue[]): void => {
    if (items.length === 0) return;
    if (items.length === 1) {
      save(items[0]!);
      w.byte(0x61); // APPEND
      return;
    }
    let total = 0;
    do {
      let inBatch = 0;
      w.byte(0x28); // MARK
      while (total < items.length) {
        save(items[total]!);
        total++;
        if (++inBatch === BATCHSIZE) break;
      }
      w.byte(0x65); // APPENDS
    } while (total < items.length);
  };

  const saveTensor = (t: HostTensor): void => {
    checkHostTensor(t, 'tensor');
    saveGlobal('torch._utils', '_rebuild_tensor_v2');
    const key = String(storages.length);
    storages.push({ key, bytes: hostDataBytes(t) });
    const n = numel(t.shape);
    const shape = t.shape.map((d) => () => saveInt(BigInt(d)));
    const stride = contiguousStrides(t.shape).map((d) => () => saveInt(BigInt(d)));
    w.byte(0x28); // MARK (6-tuple of arguments)
    // persistent id ('storage', torch.<T>Storage, key, 'cpu', numel), then BINPERSID
    saveTupleItems(
      [() => saveStr('storage'), () => saveGlobal('torch', STORAGE_CLASS[t.dtype]), () => saveStr(key), () => saveStr('cpu'), () => saveInt(BigInt(n))],
      null,
    );
    w.byte(0x51); // BINPERSID
    saveInt(0n); // storage_offset
    saveTupleItems(shape, null);
    saveTupleItems(stride, null);
    w.byte(0x89); // requires_grad = False
    // backward_hooks = OrderedDict()
    saveGlobal('collections', 'OrderedDict');
    w.byte(0x29); // EMPTY_TUPLE
    w.byte(0x52); // REDUCE
    put();
    w.byte(0x74); // TUPLE
    put();
    w.byte(0x52); // REDUCE
    memoObj(t);
  };

  const save = (v: PyValue): void => {
    if (v === null) return w.byte(0x4e); // NONE
    if (v === true) return w.byte(0x88); // NEWTRUE
    if (v === false) return w.byte(0x89); // NEWFALSE
    if (typeof v === 'bigint') return saveInt(v);
    if (typeof v === 'number') {
      w.byte(0x47); // BINFLOAT
      return w.f64be(v);
    }
    if (typeof v === 'string') return saveStr(v);
    if (typeof v !== 'object') throw new Error(`cannot pickle a JS ${typeof v}`);
    const hit = objMemo.get(v);
    if (hit !== undefined) return get(hit);
    if (isHostTensor(v)) return saveTensor(v);
    if (Array.isArray(v)) {
      w.byte(0x5d); // EMPTY_LIST
      memoObj(v);
      return batchListExact(v);
    }
    if (v instanceof PyTuple) return saveTupleItems(v.items.map((x) => () => save(x)), v);
    if (v instanceof PyDict && !v.ordered) {
      if (v.state !== undefined) throw new Error('a plain dict cannot carry pickled state; use ordered: true');
      w.byte(0x7d); // EMPTY_DICT
      memoObj(v);
      return batchDictExact([...v.entries()]);
    }
    if (v instanceof Map) {
      // collections.OrderedDict: REDUCE(OrderedDict, ()), items, then BUILD with its __dict__.
      saveGlobal('collections', 'OrderedDict');
      w.byte(0x29); // EMPTY_TUPLE
      w.byte(0x52); // REDUCE
      memoObj(v);
      batchDictIter([...v.entries()] as [PyValue, PyValue][]);
      const state = v instanceof PyDict ? v.state : undefined;
      if (state !== undefined && state !== null) {
        save(state);
        w.byte(0x62); // BUILD
      }
      return;
    }
    if (isPlainObject(v)) {
      w.byte(0x7d); // EMPTY_DICT
      memoObj(v);
      return batchDictExact(Object.entries(v));
    }
    throw new Error(`cannot pickle a ${(v as object).constructor?.name ?? 'object'}`);
  };

  w.byte(0x80); // PROTO 2
  w.byte(2);
  save(root);
  w.byte(0x2e); // STOP
  return { pickle: w.finish(), storages };
}
