/**
 * Crash-safe file replacement: write a temp file in the destination's directory, fsync it, then
 * rename it over the destination (atomic on POSIX file systems) and fsync the directory. A run
 * killed at any moment leaves either the old file or the new one, never a torn one; at worst a
 * stray `.<name>.tmp-*` file stays behind.
 *
 * Hand-written: write-file-atomic (npm) does the same but has no way to stream chunks from an
 * async generator, which large checkpoints need to avoid one giant concatenated buffer.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

export type AtomicData =
  | string
  | Uint8Array
  | Iterable<Uint8Array>
  | AsyncIterable<Uint8Array>;

const TMP_MARK = '.tmp-';

function tempPathFor(dest: string): string {
  const dir = path.dirname(dest);
  const base = path.basename(dest);
  return path.join(dir, `.${base}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** True for the temp files this module creates (so callers can ignore or clean them). */
export function isAtomicTempFile(name: string): boolean {
  return path.basename(name).startsWith('.') && path.basename(name).includes(TMP_MARK);
}

async function fsyncDir(dir: string): Promise<void> {
  // Directory fsync makes the rename durable; not supported everywhere (e.g. Windows), so best effort.
  let h: fsp.FileHandle | undefined;
  try {
    h = await fsp.open(dir, 'r');
    await h.sync();
  } catch {
    /* ignore */
  } finally {
    await h?.close().catch(() => undefined);
  }
}

function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* ignore */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

async function writeAll(h: fsp.FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await h.write(chunk, off, chunk.length - off);
    off += bytesWritten;
  }
}

function writeAllSync(fd: number, chunk: Uint8Array): void {
  let off = 0;
  while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
}

/** Atomically replaces (or creates) `dest` with `data`; parent directories are created. */
export async function writeFileAtomic(dest: string, data: AtomicData): Promise<void> {
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  const tmp = tempPathFor(dest);
  const h = await fsp.open(tmp, 'wx', 0o644);
  let ok = false;
  try {
    if (typeof data === 'string') await writeAll(h, Buffer.from(data, 'utf8'));
    else if (data instanceof Uint8Array) await writeAll(h, data);
    else if (Symbol.asyncIterator in data) for await (const c of data) await writeAll(h, c);
    else for (const c of data) await writeAll(h, c);
    await h.sync();
    ok = true;
  } finally {
    await h.close();
    if (!ok) await fsp.rm(tmp, { force: true });
  }
  try {
    await fsp.rename(tmp, dest);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(path.dirname(dest));
}

/** Synchronous variant of {@link writeFileAtomic} (no async iterables). */
export function writeFileAtomicSync(
  dest: string,
  data: string | Uint8Array | Iterable<Uint8Array>,
): void {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = tempPathFor(dest);
  const fd = fs.openSync(tmp, 'wx', 0o644);
  let ok = false;
  try {
    if (typeof data === 'string') writeAllSync(fd, Buffer.from(data, 'utf8'));
    else if (data instanceof Uint8Array) writeAllSync(fd, data);
    else for (const c of data) writeAllSync(fd, c);
    fs.fsyncSync(fd);
    ok = true;
  } finally {
    fs.closeSync(fd);
    if (!ok) fs.rmSync(tmp, { force: true });
  }
  try {
    fs.renameSync(tmp, dest);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDirSync(path.dirname(dest));
}

/**
 * Atomically copies `src` to `dst` (e.g. epoch_N → model_best): the copy goes to a temp file that
 * is renamed over `dst`, so a crash never leaves a partial `dst`.
 */
export async function copyFileAtomic(src: string, dst: string): Promise<void> {
  await fsp.mkdir(path.dirname(dst), { recursive: true });
  const tmp = tempPathFor(dst);
  let ok = false;
  try {
    await fsp.copyFile(src, tmp, fs.constants.COPYFILE_EXCL);
    const h = await fsp.open(tmp, 'r+');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
    await fsp.rename(tmp, dst);
    ok = true;
  } finally {
    if (!ok) await fsp.rm(tmp, { force: true });
  }
  await fsyncDir(path.dirname(dst));
}

/** Synchronous variant of {@link copyFileAtomic}. */
export function copyFileAtomicSync(src: string, dst: string): void {
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  const tmp = tempPathFor(dst);
  let ok = false;
  try {
    fs.copyFileSync(src, tmp, fs.constants.COPYFILE_EXCL);
    const fd = fs.openSync(tmp, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, dst);
    ok = true;
  } finally {
    if (!ok) fs.rmSync(tmp, { force: true });
  }
  fsyncDirSync(path.dirname(dst));
}
