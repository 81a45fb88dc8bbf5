/**
 * The safetensors format (huggingface/safetensors): 8-byte little-endian header length N, an
 * N-byte JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {k: v}}`
 * padded with spaces to a multiple of 8, then the tensor bytes (little-endian, C order).
 *
 * Hand-written: the only npm package named for it ("safetensors" 0.0.1) is a two-year-old
 * unmaintained stub, and the format is ~100 lines. Validation follows the reference
 * implementation: known dtypes, offsets that tile the data section exactly, sizes that match
 * shapes, header ≤ 100 MB.
 */
import type { DType, HostTensor, StateDict } from './host-tensor.js';
import { numel } from './host-tensor.js';
import { checkHostTensor, elementSize, hostDataBytes, hostDataFromBytes } from './dtypes.js';
import { writeFileAtomic, writeFileAtomicSync } from './atomic.js';
import { UserError, readUserFile, readUserFileAsync } from '../util/errors.js';

const CODE_OF: Record<DType, string> = {
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};
const DTYPE_OF: Record<string, DType> = Object.fromEntries(
  Object.entries(CODE_OF).map(([d, c]) => [c, d as DType]),
);

const MAX_HEADER = 100_000_000;
const METADATA_KEY = '__metadata__';

export interface SafetensorsContent {
  tensors: StateDict;
  metadata: Record<string, string>;
}

/** Serialises to the chunks of a safetensors file (header, then each tensor's bytes). */
export function safetensorsChunks(
  tensors: StateDict,
  metadata?: Record<string, string>,
): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors metadata ${k} must be a string, got ${typeof v}`);
    }
    header[METADATA_KEY] = metadata;
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === METADATA_KEY) throw new Error(`tensor name ${METADATA_KEY} is reserved in safetensors`);
    checkHostTensor(t, `tensor ${name}`);
    const bytes = hostDataBytes(t);
    header[name] = { dtype: CODE_OF[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  const len = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (len % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  return [prefix, headerBytes, ...chunks];
}

export function safetensorsToBuffer(tensors: StateDict, metadata?: Record<string, string>): Buffer {
  return Buffer.concat(safetensorsChunks(tensors, metadata));
}

/** Writes a safetensors file atomically (temp file + rename). Tensor order is preserved. */
export async function writeSafetensors(
  path: string,
  tensors: StateDict,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, safetensorsChunks(tensors, metadata));
}

export function writeSafetensorsSync(
  path: string,
  tensors: StateDict,
  metadata?: Record<string, string>,
): void {
  writeFileAtomicSync(path, safetensorsChunks(tensors, metadata));
}

/**
 * Parses a safetensors buffer. `source` names the file in error messages. Tensors come back in
 * data-offset order (= the order they were written); data are copies, aligned, independent of `buf`.
 */
export function safetensorsFromBuffer(buf: Uint8Array, source = '<buffer>'): SafetensorsContent {
  const bad = (why: string): never => {
    throw new UserError(`${source}: not a valid safetensors file (${why})`);
  };
  if (buf.length < 8) bad(`${buf.length} bytes, too short for the header length`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) bad(`header length ${n64} exceeds ${MAX_HEADER}`);
  const n = Number(n64);
  if (8 + n > buf.length) bad(`header says ${n} bytes but the file has ${buf.length - 8} after the length (truncated?)`);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset + 8, n).toString('utf8'));
  } catch (e) {
    bad(`header is not JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('header is not a JSON object');
  const h = header as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const rawMeta = h[METADATA_KEY];
  if (rawMeta !== undefined && rawMeta !== null) {
    if (typeof rawMeta !== 'object' || Array.isArray(rawMeta)) bad('__metadata__ is not an object');
    for (const [k, v] of Object.entries(rawMeta as object)) {
      if (typeof v !== 'string') bad(`__metadata__.${k} is not a string`);
      metadata[k] = v as string;
    }
  }

  const dataStart = 8 + n;
  const dataLen = buf.length - dataStart;
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(h)) {
    if (name === METADATA_KEY) continue;
    if (typeof info !== 'object' || info === null) bad(`entry ${name} is not an object`);
    const { dtype: code, shape, data_offsets: offs } = info as Record<string, unknown>;
    const dtype = typeof code === 'string' ? DTYPE_OF[code] : undefined;
    if (!dtype) bad(`tensor ${name} has unsupported dtype ${JSON.stringify(code)}`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`tensor ${name} has invalid shape ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offs) || offs.length !== 2 ||
      !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[1] < offs[0]
    ) {
      bad(`tensor ${name} has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    const want = numel(shape as number[]) * elementSize(dtype!);
    if (end - begin !== want) {
      bad(`tensor ${name}: ${end - begin} bytes for shape ${JSON.stringify(shape)} ${code} (needs ${want})`);
    }
    entries.push({ name, dtype: dtype!, shape: (shape as number[]).slice(), begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  // Like the reference implementation: the tensors must tile the data section with no gaps.
  let cursor = 0;
  for (const e of entries) {
    if (e.begin !== cursor) bad(`tensor ${e.name} starts at ${e.begin}, expected ${cursor} (overlap or gap)`);
    cursor = e.end;
  }
  if (cursor !== dataLen) {
    bad(
      cursor > dataLen
        ? `data section has ${dataLen} bytes but tensors need ${cursor} (truncated?)`
        : `${dataLen - cursor} trailing bytes after the last tensor`,
    );
  }
  const tensors: StateDict = new Map();
  for (const e of entries) {
    const bytes = buf.subarray(dataStart + e.begin, dataStart + e.end);
    const t: HostTensor = { dtype: e.dtype, shape: e.shape, data: hostDataFromBytes(e.dtype, bytes) };
    tensors.set(e.name, t);
  }
  return { tensors, metadata };
}

export async function readSafetensors(path: string): Promise<SafetensorsContent> {
  return safetensorsFromBuffer(await readUserFileAsync(path, 'safetensors file'), path);
}

export function readSafetensorsSync(path: string): SafetensorsContent {
  return safetensorsFromBuffer(readUserFile(path, 'safetensors file'), path);
}
