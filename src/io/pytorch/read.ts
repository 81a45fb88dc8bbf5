/**
 * Reads PyTorch checkpoints (`torch.save` output) without Python:
 *  - the zip format (torch ≥ 1.6): `<archive>/data.pkl` + `<archive>/data/<key>` storages
 *    (+ `version`, optional `byteorder`), `<archive>` being any folder name;
 *  - the legacy format: back-to-back pickles (magic number, protocol 1001, sys_info, the object,
 *    the storage keys), then each storage as int64 element count + raw bytes.
 * Unpickling is done by our safe VM (unpickler.ts); nothing in the file is ever executed.
 *
 * Zip parsing uses fflate (maintained, dependency-free, handles stored/deflated entries and
 * zip64); the torch-specific layout on top of it is ours.
 */
import { unzipSync } from 'fflate';
import { UserError, readUserFile } from '../../util/errors.js';
import { elementSize } from '../dtypes.js';
import type { DType } from '../host-tensor.js';
import { materialize } from './materialize.js';
import { PyDict, PyTuple, type PyValue } from './py-values.js';
import { GlobalRef, storageDtypeOf, unpickle, type Item, type StorageRef } from './unpickler.js';

export const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001n;

export type TorchFileFormat = 'zip' | 'legacy';

export interface TorchCheckpointInfo {
  value: PyValue;
  format: TorchFileFormat;
  /** Folder name inside the zip (torch uses the file's stem); undefined for legacy files. */
  archiveName?: string;
}

function isZip(buf: Uint8Array): boolean {
  return buf.length >= 4 && buf[0] === 0x50 && buf[1] === 0x4b && buf[2] === 0x03 && buf[3] === 0x04;
}

function storageRef(pid: Item, legacy: boolean, source: string): StorageRef {
  const bad = (): never => {
    throw new UserError(`${source}: unexpected persistent id in checkpoint pickle (expected a torch storage reference)`);
  };
  if (!(pid instanceof PyTuple)) return bad();
  const [tag, type, key, location, n, view] = pid.items as Item[];
  if (tag !== 'storage' || !(type instanceof GlobalRef) || typeof key !== 'string' || typeof location !== 'string' || typeof n !== 'bigint') {
    return bad();
  }
  const dtype = storageDtypeOf(type);
  if (dtype === undefined) throw new UserError(`${source}: refuses to unpickle storage type ${type.qualified}`);
  let elemOffset = 0;
  if (legacy) {
    if (pid.length !== 6) return bad();
    if (view !== null) {
      // (view_key, offset, view_size): a view into root storage `key` (pre-1.0 files).
      if (!(view instanceof PyTuple) || view.length !== 3 || typeof view.items[1] !== 'bigint') return bad();
      elemOffset = Number(view.items[1]);
    }
  } else if (pid.length !== 5) {
    return bad();
  }
  if (n < 0n) return bad();
  return { kind: 'storage', key, dtype, numel: Number(n), location, elemOffset };
}

/** Parses a checkpoint held in memory; `source` names it in errors. */
export function readTorchCheckpointBuffer(buf: Uint8Array, source = '<buffer>'): TorchCheckpointInfo {
  return isZip(buf) ? readZip(buf, source) : readLegacy(buf, source);
}

function readZip(buf: Uint8Array, source: string): TorchCheckpointInfo {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(buf);
  } catch (e) {
    throw new UserError(`${source}: not a readable PyTorch zip checkpoint (${(e as Error).message}; truncated or corrupt?)`);
  }
  const pkls = Object.keys(files).filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) {
    const isScript = Object.keys(files).some((n) => /^[^/]+\/constants\.pkl$/.test(n));
    throw new UserError(
      isScript
        ? `${source}: is a TorchScript archive (torch.jit.save), not a torch.save checkpoint`
        : `${source}: zip file without exactly one <archive>/data.pkl (not a PyTorch checkpoint)`,
    );
  }
  const prefix = pkls[0]!.slice(0, -'data.pkl'.length);
  const order = files[`${prefix}byteorder`];
  let littleEndian = true;
  if (order) {
    const s = Buffer.from(order).toString('latin1');
    if (s !== 'little' && s !== 'big') throw new UserError(`${source}: unknown byteorder record "${s}"`);
    littleEndian = s === 'little';
  }
  const { value } = unpickle(files[pkls[0]!]!, { source, persistentLoad: (pid) => storageRef(pid, false, source) });
  const result = materialize(value, {
    littleEndian,
    bytes: (ref) => {
      const d = files[`${prefix}data/${ref.key}`];
      if (!d) throw new UserError(`${source}: storage record ${prefix}data/${ref.key} is missing`);
      const want = ref.dtype ? ref.numel * elementSize(ref.dtype) : ref.numel;
      if (d.length < want) throw new UserError(`${source}: storage ${ref.key} has ${d.length} bytes, needs ${want}`);
      return d;
    },
  }, source);
  return { value: result, format: 'zip', archiveName: prefix.slice(0, -1) };
}

function readLegacy(buf: Uint8Array, source: string): TorchCheckpointInfo {
  if (buf.length >= 262 && Buffer.from(buf.subarray(257, 262)).toString('latin1') === 'ustar') {
    throw new UserError(`${source}: is a pre-0.4 tar-format PyTorch checkpoint, which is not supported`);
  }
  if (buf.length < 2 || buf[0] !== 0x80) {
    throw new UserError(`${source}: not a PyTorch checkpoint (neither a zip archive nor a pickle)`);
  }
  const opts = { source };
  let r = unpickle(buf, opts, 0);
  if (r.value !== LEGACY_MAGIC) throw new UserError(`${source}: not a PyTorch checkpoint (invalid magic number)`);
  r = unpickle(buf, opts, r.end);
  if (r.value !== LEGACY_PROTOCOL) throw new UserError(`${source}: unsupported legacy checkpoint protocol ${String(r.value)}`);
  r = unpickle(buf, opts, r.end);
  const sysInfo = r.value;
  const le = sysInfo instanceof PyDict ? sysInfo.get('little_endian') : undefined;
  if (typeof le !== 'boolean') throw new UserError(`${source}: legacy checkpoint without sys_info.little_endian`);

  const refs = new Map<string, DType | null>();
  r = unpickle(buf, {
    source,
    persistentLoad: (pid) => {
      const ref = storageRef(pid, true, source);
      if (ref.dtype === null) throw new UserError(`${source}: untyped storage in a legacy checkpoint`);
      if (!refs.has(ref.key)) refs.set(ref.key, ref.dtype);
      return ref;
    },
  }, r.end);
  const main = r.value;
  r = unpickle(buf, opts, r.end);
  const keys = r.value;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) {
    throw new UserError(`${source}: legacy checkpoint storage key list is malformed`);
  }
  const data = new Map<string, Uint8Array>();
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = r.end;
  for (const key of keys as string[]) {
    const dtype = refs.get(key);
    if (!dtype) throw new UserError(`${source}: storage ${key} is stored but never referenced`);
    if (pos + 8 > buf.length) throw new UserError(`${source}: truncated before storage ${key}`);
    const n = dv.getBigInt64(pos, true);
    const bytes = Number(n) * elementSize(dtype);
    if (n < 0n || pos + 8 + bytes > buf.length) throw new UserError(`${source}: truncated in storage ${key}`);
    data.set(key, buf.subarray(pos + 8, pos + 8 + bytes));
    pos += 8 + bytes;
  }
  const value = materialize(main, {
    littleEndian: le,
    bytes: (ref) => {
      const d = data.get(ref.key);
      if (!d) throw new UserError(`${source}: storage ${ref.key} is referenced but not stored`);
      return d;
    },
  }, source);
  return { value, format: 'legacy' };
}

/** Reads a `.pth` / `.state` / `.tar` checkpoint written by torch.save (or by writeTorchCheckpoint). */
export function readTorchCheckpoint(path: string): PyValue {
  return readTorchCheckpointInfo(path).value;
}

export function readTorchCheckpointInfo(path: string): TorchCheckpointInfo {
  return readTorchCheckpointBuffer(readUserFile(path, 'checkpoint'), path);
}
