/**
 * The JS picture of the Python objects a PyTorch checkpoint holds. Python's int/float
 * distinction must survive a read → write round trip, so:
 *   int → bigint, float → number, bool → boolean, None → null, str → string,
 *   list → Array, tuple → PyTuple, dict / OrderedDict → PyDict (ordered flag), tensor → HostTensor.
 * Writers also accept plain JS objects (as dicts) and any Map (as an OrderedDict, e.g. a StateDict).
 */
import type { HostTensor } from '../host-tensor.js';

export type PyValue =
  | null
  | boolean
  | bigint
  | number
  | string
  | PyValue[]
  | PyTuple
  | PyDict
  | HostTensor
  | Map<PyValue, PyValue>
  | { [key: string]: PyValue };

export class PyTuple {
  constructor(readonly items: PyValue[]) {}
  get length(): number {
    return this.items.length;
  }
}

/**
 * A Python dict (ordered=false) or collections.OrderedDict (ordered=true). Keys compare like JS
 * Map keys: strings and bigints by value (Python's `1 == 1.0` aliasing is not modelled).
 * `state` holds what pickle's BUILD sets on the object, e.g. a state_dict's `{_metadata: ...}`.
 */
export class PyDict extends Map<PyValue, PyValue> {
  ordered: boolean;
  state: PyValue | undefined;
  constructor(entries?: Iterable<readonly [PyValue, PyValue]> | null, opts: { ordered?: boolean; state?: PyValue } = {}) {
    super(entries ?? undefined);
    this.ordered = opts.ordered ?? false;
    this.state = opts.state;
  }
}

export function isHostTensor(v: unknown): v is HostTensor {
  return (
    typeof v === 'object' && v !== null &&
    'dtype' in v && 'shape' in v && 'data' in v &&
    ArrayBuffer.isView((v as HostTensor).data) && Array.isArray((v as HostTensor).shape)
  );
}

export function isPlainObject(v: unknown): v is { [key: string]: PyValue } {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Reads `key` from a PyDict, Map or plain object (undefined when absent or not a mapping). */
export function pyGet(obj: PyValue | undefined, key: string): PyValue | undefined {
  if (obj instanceof Map) return obj.get(key);
  if (isPlainObject(obj) && !isHostTensor(obj)) return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
  return undefined;
}

/** A Python int or float as a JS number (ints beyond 2^53 lose precision); undefined otherwise. */
export function pyNumber(v: PyValue | undefined): number | undefined {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return v;
  return undefined;
}

/** Python's `repr`-like short description of a value's type, for error messages. */
export function pyTypeName(v: PyValue | undefined): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'number') return 'float';
  if (typeof v === 'string') return 'str';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyDict) return v.ordered ? 'OrderedDict' : 'dict';
  if (v instanceof Map) return 'dict';
  if (isHostTensor(v)) return 'Tensor';
  return 'dict';
}

/**
 * A JS number as a Python int (bigint). Use it for values that are ints in PyTorch checkpoints
 * (epoch, step counts): a plain JS number is always written as a Python float (`epoch: 0` would
 * come out as 0.0 and break the reference's `range(start_epoch, ...)`).
 */
export function toPyInt(n: number): bigint {
  if (!Number.isSafeInteger(n)) throw new Error(`toPyInt: ${n} is not a safe integer`);
  return BigInt(n);
}
