/**
 * torch.save without Python: a PyValue (dicts, OrderedDicts/StateDicts, lists, tuples, ints as
 * bigint, floats as number, tensors as HostTensor) → torch's zip format, byte-identical to what
 * torch 1.13's `torch.save(obj, path)` writes for the same object (see pickler.ts and torch-zip.ts).
 *
 * Intentional choices: every tensor gets its own storage (views of a shared storage are written
 * as separate copies, as a HostTensor has no storage to share); no `byteorder` or
 * `.data/serialization_id` records by default (torch 1.13 writes neither; newer torch reads files
 * without them as native-endian, i.e. little-endian on every platform torch supports).
 */
import * as path from 'node:path';
import { writeFileAtomic, writeFileAtomicSync } from '../atomic.js';
import { picklePyValue } from './pickler.js';
import type { PyValue } from './py-values.js';
import { torchZipChunks, type ZipRecord } from './torch-zip.js';

export interface TorchWriteOptions {
  /** Folder name inside the zip; default: the file name without its last extension, as torch does. */
  archiveName?: string;
  /** Also write a `byteorder` record ("little"), as torch ≥ 2.1 does. Default false (torch 1.13). */
  byteorder?: boolean;
}

/** torch's archive name for a file: its base name without the last extension. */
export function torchArchiveName(file: string): string {
  const base = path.basename(file);
  const dot = base.lastIndexOf('.');
  const stem = dot > 0 ? base.slice(0, dot) : dot === 0 ? '' : base;
  // torch refuses an empty stem (".hidden"); "archive" is what it uses for in-memory buffers.
  return stem === '' ? 'archive' : stem;
}

export function torchCheckpointChunks(obj: PyValue, opts: TorchWriteOptions & { archiveName: string }): Uint8Array[] {
  const { pickle, storages } = picklePyValue(obj);
  const records: ZipRecord[] = [{ name: 'data.pkl', data: pickle }];
  if (opts.byteorder) records.push({ name: 'byteorder', data: Buffer.from('little', 'latin1') });
  const sorted = [...storages].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)); // Python's sorted(keys)
  for (const s of sorted) records.push({ name: `data/${s.key}`, data: s.bytes });
  records.push({ name: 'version', data: Buffer.from('3\n', 'latin1') });
  return torchZipChunks(opts.archiveName, records);
}

/** The bytes `torch.save(obj, io.BytesIO())` would produce (archive name "archive" by default). */
export function torchCheckpointBuffer(obj: PyValue, opts: TorchWriteOptions = {}): Buffer {
  return Buffer.concat(torchCheckpointChunks(obj, { ...opts, archiveName: opts.archiveName ?? 'archive' }));
}

/** Writes `obj` as a torch.save zip checkpoint, atomically (temp file + rename). */
export async function writeTorchCheckpoint(file: string, obj: PyValue, opts: TorchWriteOptions = {}): Promise<void> {
  const chunks = torchCheckpointChunks(obj, { ...opts, archiveName: opts.archiveName ?? torchArchiveName(file) });
  await writeFileAtomic(file, chunks);
}

export function writeTorchCheckpointSync(file: string, obj: PyValue, opts: TorchWriteOptions = {}): void {
  const chunks = torchCheckpointChunks(obj, { ...opts, archiveName: opts.archiveName ?? torchArchiveName(file) });
  writeFileAtomicSync(file, chunks);
}
