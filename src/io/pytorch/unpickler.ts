/**
 * A SAFE unpickler for PyTorch checkpoints: a small pickle VM that understands exactly the
 * opcodes torch.save emits (protocol 2, plus the few protocol 4 framing opcodes) and a fixed
 * whitelist of globals that it interprets itself. Nothing is ever imported or executed: a global
 * outside the whitelist, or any other opcode (INST, OBJ, NEWOBJ, EXT*, PERSID, ...), is refused
 * with a UserError naming the file.
 *
 * Why hand-written: the npm pickle parsers (pickleparser, jpickle, unpickle) turn Python ints and
 * floats into the same JS number, which breaks the int/float round trip that byte-exact rewriting
 * needs, and they resolve unknown globals to placeholder objects instead of refusing them. The
 * safety boundary has to be ours anyway, and the VM for this opcode subset is small.
 */
import type { DType } from '../host-tensor.js';
import { UserError } from '../../util/errors.js';
import { PyDict, PyTuple, type PyValue } from './py-values.js';

/** A whitelisted Python global, kept symbolic (never resolved to code). */
export class GlobalRef {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** What a container format hands back for a BINPERSID storage reference. */
export interface StorageRef {
  readonly kind: 'storage';
  key: string;
  /** null for torch.UntypedStorage (the dtype then comes from _rebuild_tensor_v3). */
  dtype: DType | null;
  /** Number of elements of the storage as pickled (bytes for untyped storages). */
  numel: number;
  location: string;
  /** Legacy-format views: element offset into the root storage (0 otherwise). */
  elemOffset: number;
}

/** A tensor whose storage bytes are fetched after unpickling (see materialize.ts). */
export class PendingTensor {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly size: number[],
    readonly stride: number[],
    readonly dtype: DType,
  ) {}
}

/** Storage classes torch pickles as `torch.<Name>Storage`. */
export const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

/** `torch.<dtype>` globals (as pickled by torch.dtype.__reduce__), for _rebuild_tensor_v3. */
const TORCH_DTYPES: Record<string, DType> = {
  float32: 'float32',
  float: 'float32',
  float64: 'float64',
  double: 'float64',
  float16: 'float16',
  half: 'float16',
  bfloat16: 'bfloat16',
  int64: 'int64',
  long: 'int64',
  int32: 'int32',
  int: 'int32',
  int16: 'int16',
  short: 'int16',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
};

const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._tensor._rebuild_from_type_v2',
  'torch.Size',
]);
const TYPES = new Set(['torch.Tensor', 'torch.nn.parameter.Parameter', 'torch.UntypedStorage']);

function isWhitelisted(module: string, name: string): boolean {
  const q = `${module}.${name}`;
  if (CALLABLES.has(q) || TYPES.has(q)) return true;
  return module === 'torch' && (name in STORAGE_DTYPES || name in TORCH_DTYPES);
}

export function storageDtypeOf(g: GlobalRef): DType | null | undefined {
  if (g.module !== 'torch') return undefined;
  if (g.name === 'UntypedStorage') return null;
  return STORAGE_DTYPES[g.name];
}

const MARK = Symbol('mark');
/** Values on the VM stack: Python values plus the VM's own intermediate objects. */
export type Item = PyValue | GlobalRef | StorageRef | PendingTensor | typeof MARK;

export interface UnpickleOptions {
  /** File name used in error messages. */
  source: string;
  /** Resolves a BINPERSID id; absent → persistent ids are refused. */
  persistentLoad?: (pid: Item) => Item;
}

export interface UnpickleResult {
  value: Item;
  /** Offset just past the STOP opcode (legacy files hold several pickles back to back). */
  end: number;
}

const utf8 = new TextDecoder('utf-8');

/** Runs the VM on `buf` from `start` to the first STOP. */
export function unpickle(buf: Uint8Array, opts: UnpickleOptions, start = 0): UnpickleResult {
  const src = opts.source;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = start;
  let stack: Item[] = [];
  const metastack: Item[][] = [];
  const memo = new Map<number, Item>();

  const fail = (why: string): never => {
    throw new UserError(`${src}: invalid PyTorch checkpoint pickle (${why})`);
  };
  const need = (n: number): number => {
    if (pos + n > buf.length) fail(`truncated at byte ${pos}`);
    const p = pos;
    pos += n;
    return p;
  };
  const u8 = () => buf[need(1)]!;
  const u16 = () => dv.getUint16(need(2), true);
  const u32 = () => dv.getUint32(need(4), true);
  const i32 = () => dv.getInt32(need(4), true);
  const bytes = (n: number) => buf.subarray(need(n), pos);
  const line = (): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) fail(`unterminated text argument at byte ${pos}`);
    const s = utf8.decode(buf.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): Item => {
    if (stack.length === 0) fail(`stack underflow at byte ${pos - 1}`);
    return stack.pop()!;
  };
  const top = (): Item => {
    if (stack.length === 0) fail(`empty stack at byte ${pos - 1}`);
    return stack[stack.length - 1]!;
  };
  const popMark = (): Item[] => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) fail(`MARK expected at byte ${pos - 1}`);
    stack = prev!;
    return items;
  };
  const getMemo = (i: number): Item => {
    if (!memo.has(i)) fail(`memo ${i} not defined at byte ${pos}`);
    return memo.get(i)!;
  };
  const setItems = (d: Item, kv: Item[]) => {
    if (!(d instanceof PyDict)) fail(`SETITEM(S) on ${describe(d)}`);
    if (kv.length % 2 !== 0) fail('odd number of items for SETITEMS');
    for (let i = 0; i < kv.length; i += 2) (d as PyDict).set(asValue(kv[i]!), asValue(kv[i + 1]!));
  };
  const appendItems = (l: Item, items: Item[]) => {
    if (!Array.isArray(l)) fail(`APPEND(S) on ${describe(l)}`);
    for (const it of items) (l as PyValue[]).push(asValue(it));
  };
  // Containers may hold VM objects (storages, globals, pending tensors) for now; materialize()
  // resolves tensors and rejects anything else that is left over.
  const asValue = (v: Item): PyValue => {
    if (v === MARK) fail('MARK used as a value');
    return v as PyValue;
  };
  const refuse = (module: string, name: string): never => {
    throw new UserError(`${src}: refuses to unpickle ${module}.${name} (not a tensor checkpoint class)`);
  };
  const global = (module: string, name: string): GlobalRef => {
    if (!isWhitelisted(module, name)) refuse(module, name);
    return new GlobalRef(module, name);
  };

  for (;;) {
    const opPos = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) fail(`pickle protocol ${v} is not supported`);
        break;
      }
      case 0x95: // FRAME (protocol 4): an 8-byte length, framing is irrelevant when all is in memory
        need(8);
        break;
      case 0x2e: // STOP
        return { value: pop(), end: pos };
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new PyDict());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x74: { // TUPLE (popMark replaces `stack`, so evaluate it before touching the stack)
        const items = popMark().map(asValue);
        stack.push(new PyTuple(items));
        break;
      }
      case 0x85: // TUPLE1
        stack.push(new PyTuple([asValue(pop())]));
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([asValue(a), asValue(b)]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([asValue(a), asValue(b), asValue(c)]));
        break;
      }
      case 0x6c: { // LIST
        const items = popMark().map(asValue);
        stack.push(items);
        break;
      }
      case 0x64: { // DICT
        const d = new PyDict();
        const kv = popMark();
        setItems(d, kv);
        stack.push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        stack.push(getMemo(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(getMemo(u32()));
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4b: // BININT1
        stack.push(BigInt(u8()));
        break;
      case 0x4d: // BININT2
        stack.push(BigInt(u16()));
        break;
      case 0x4a: // BININT
        stack.push(BigInt(i32()));
        break;
      case 0x8a: // LONG1
        stack.push(decodeLong(bytes(u8())));
        break;
      case 0x47: // BINFLOAT (big-endian double)
        stack.push(dv.getFloat64(need(8), false));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8.decode(bytes(u8())));
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8.decode(bytes(u32())));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str; torch.load decodes as utf-8)
        stack.push(utf8.decode(bytes(u8())));
        break;
      case 0x54: { // BINSTRING
        const n = i32();
        if (n < 0) fail(`negative BINSTRING length at byte ${opPos}`);
        stack.push(utf8.decode(bytes(n)));
        break;
      }
      case 0x63: { // GLOBAL
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail(`STACK_GLOBAL needs two strings at byte ${opPos}`);
        stack.push(global(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        if (!(fn instanceof GlobalRef)) fail(`REDUCE on ${describe(fn)} at byte ${opPos}`);
        if (!(args instanceof PyTuple)) fail(`REDUCE arguments are not a tuple at byte ${opPos}`);
        stack.push(callGlobal(fn as GlobalRef, (args as PyTuple).items as Item[], src, opPos));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        build(obj, state, src, opPos);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail(`persistent id at byte ${opPos} outside a checkpoint`);
        stack.push(opts.persistentLoad!(pid));
        break;
      }
      default:
        throw new UserError(
          `${src}: refuses pickle opcode 0x${op.toString(16).padStart(2, '0')} ` +
            `(${OPCODE_NAMES[op] ?? 'unknown'}) at byte ${opPos} (not used by tensor checkpoints)`,
        );
    }
  }
}

/** Names of opcodes we refuse, so the error says what the file tried to do. */
const OPCODE_NAMES: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x82: 'EXT1', 0x83: 'EXT2',
  0x84: 'EXT4', 0x50: 'PERSID', 0x8b: 'LONG4', 0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES',
  0x8e: 'BINBYTES8', 0x8d: 'BINUNICODE8', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET',
  0x49: 'INT', 0x4c: 'LONG', 0x46: 'FLOAT', 0x53: 'STRING', 0x56: 'UNICODE', 0x70: 'PUT',
  0x67: 'GET',
};

export function isStorageRef(v: unknown): v is StorageRef {
  return typeof v === 'object' && v !== null && (v as StorageRef).kind === 'storage' && !(v instanceof Map);
}

function describe(v: Item): string {
  if (v === MARK) return 'MARK';
  if (v instanceof GlobalRef) return v.qualified;
  if (v instanceof PendingTensor) return 'tensor';
  if (isStorageRef(v)) return 'storage';
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyDict) return 'dict';
  return typeof v;
}

/** Python's two's-complement little-endian long encoding. */
export function decodeLong(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v;
}

function intArg(v: Item, what: string, src: string): number {
  if (typeof v !== 'bigint' || v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new UserError(`${src}: invalid tensor ${what} ${describe(v)} in checkpoint pickle`);
  }
  return Number(v);
}

function intTuple(v: Item, what: string, src: string): number[] {
  if (!(v instanceof PyTuple)) throw new UserError(`${src}: tensor ${what} is ${describe(v)}, expected a tuple`);
  return v.items.map((x) => intArg(x as Item, what, src));
}

/** An argument that must carry no Python state (backward hooks, metadata, parameter state). */
function isEmptyState(v: Item): boolean {
  if (v === null) return true;
  if (v instanceof PyDict) return v.size === 0 && v.state === undefined;
  if (v instanceof PyTuple) return v.items.every((x) => isEmptyState(x as Item));
  return false;
}

function rebuildTensor(args: Item[], dtypeOverride: DType | undefined, src: string): PendingTensor {
  const [storage, offset, size, stride] = args;
  if (!isStorageRef(storage)) throw new UserError(`${src}: tensor rebuilt from ${describe(storage!)}, expected a storage`);
  const dtype = dtypeOverride ?? storage.dtype;
  if (!dtype) throw new UserError(`${src}: untyped storage ${storage.key} without a dtype`);
  return new PendingTensor(storage, intArg(offset!, 'storage offset', src), intTuple(size!, 'size', src), intTuple(stride!, 'stride', src), dtype);
}

function callGlobal(fn: GlobalRef, args: Item[], src: string, at: number): Item {
  const bad = (why: string): never => {
    throw new UserError(`${src}: ${fn.qualified}${why} at byte ${at}`);
  };
  switch (fn.qualified) {
    case 'collections.OrderedDict': {
      const d = new PyDict(null, { ordered: true });
      if (args.length === 0) return d;
      const items = args[0];
      if (args.length !== 1 || !(Array.isArray(items) || items instanceof PyTuple)) bad(' with unexpected arguments');
      for (const kv of Array.isArray(items) ? items : (items as PyTuple).items) {
        const pair = Array.isArray(kv) ? kv : kv instanceof PyTuple ? kv.items : undefined;
        if (!pair || pair.length !== 2) bad(' needs (key, value) pairs');
        d.set(pair![0]!, pair![1]!);
      }
      return d;
    }
    case 'torch._utils._rebuild_tensor':
      if (args.length !== 4) bad(` expects 4 arguments, got ${args.length}`);
      return rebuildTensor(args, undefined, src);
    case 'torch._utils._rebuild_tensor_v2':
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (args.length !== 6 && args.length !== 7) bad(` expects 6 or 7 arguments, got ${args.length}`);
      if (!isEmptyState(args[5]!) || (args.length === 7 && !isEmptyState(args[6]!))) bad(' with hooks or metadata');
      return rebuildTensor(args, undefined, src);
    case 'torch._utils._rebuild_tensor_v3': {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
      if (args.length !== 7 && args.length !== 8) bad(` expects 7 or 8 arguments, got ${args.length}`);
      const dt = args[6];
      const dtype = dt instanceof GlobalRef && dt.module === 'torch' ? TORCH_DTYPES[dt.name] : undefined;
      if (!dtype) bad(` with dtype ${describe(dt!)}`);
      if (!isEmptyState(args[5]!) || (args.length === 8 && !isEmptyState(args[7]!))) bad(' with hooks or metadata');
      return rebuildTensor(args, dtype, src);
    }
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state': {
      // (data, requires_grad, backward_hooks[, state]): a Parameter is just its data here.
      if (!(args[0] instanceof PendingTensor)) bad(' of a non-tensor');
      if (!isEmptyState(args[2] ?? null) || !isEmptyState(args[3] ?? null)) bad(' with hooks or state');
      return args[0]!;
    }
    case 'torch._tensor._rebuild_from_type_v2': {
      // (func, type, args, state): only plain Tensor / Parameter with no Python state.
      const [func, type, inner, state] = args;
      if (!(type instanceof GlobalRef) || !TYPES.has(type.qualified) || type.name === 'UntypedStorage') bad(` of type ${describe(type!)}`);
      if (!(func instanceof GlobalRef) || !func.qualified.startsWith('torch._utils._rebuild_')) bad(` via ${describe(func!)}`);
      if (!(inner instanceof PyTuple)) bad(' with non-tuple arguments');
      if (!isEmptyState(state ?? null)) bad(' with Python state');
      return callGlobal(func as GlobalRef, (inner as PyTuple).items as Item[], src, at);
    }
    case 'torch.Size': {
      const t = args[0];
      if (args.length !== 1 || !(t instanceof PyTuple)) bad(' expects one tuple');
      return t!;
    }
    default:
      return bad(' is not callable here');
  }
}

function build(obj: Item, state: Item, src: string, at: number): void {
  // Only OrderedDicts carry state in checkpoints: a state_dict's `{_metadata: ...}` attribute.
  if (obj instanceof PyDict && obj.ordered && (state instanceof PyDict || state === null)) {
    obj.state = state;
    return;
  }
  if (obj instanceof PendingTensor && isEmptyState(state)) return;
  throw new UserError(`${src}: refuses BUILD of ${describe(obj)} with ${describe(state)} at byte ${at} (not a tensor checkpoint)`);
}
