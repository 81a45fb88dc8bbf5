/**
 * TFRecord framing, as TensorFlow's record writer lays it out:
 *   uint64 LE length | uint32 LE masked CRC32C(length bytes) | data | uint32 LE masked CRC32C(data)
 * with mask(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8 (mod 2^32). CRC32C comes from
 * @aws-crypto/crc32c (maintained, pure JS).
 */
import { crc32c } from '@aws-crypto/crc32c';

export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data) >>> 0;
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One framed record, ready to append to a file. */
export function frameRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

export class RecordCorruptError extends Error {
  constructor(
    readonly offset: number,
    readonly which: 'length' | 'data',
  ) {
    super(`${which} CRC mismatch in the record at byte ${offset}`);
    this.name = 'RecordCorruptError';
  }
}

export interface UnframedRecords {
  records: { offset: number; data: Uint8Array }[];
  /** True when the buffer ends inside a record (a writer died mid-write); that record is dropped. */
  truncated: boolean;
  /** Byte offset where the incomplete last record starts (= buffer length when not truncated). */
  validBytes: number;
}

/** Splits a buffer into records, checking both CRCs of every complete record. */
export function unframeRecords(buf: Uint8Array): UnframedRecords {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: { offset: number; data: Uint8Array }[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 12) return { records, truncated: true, validBytes: off };
    const lenBytes = buf.subarray(off, off + 8);
    if (dv.getUint32(off + 8, true) !== maskedCrc32c(lenBytes)) throw new RecordCorruptError(off, 'length');
    const len = dv.getBigUint64(off, true);
    if (len > BigInt(buf.length - off - 16)) return { records, truncated: true, validBytes: off };
    const n = Number(len);
    const data = buf.subarray(off + 12, off + 12 + n);
    if (dv.getUint32(off + 12 + n, true) !== maskedCrc32c(data)) throw new RecordCorruptError(off, 'data');
    records.push({ offset: off, data });
    off += 16 + n;
  }
  return { records, truncated: false, validBytes: off };
}
