/**
 * Writes the zip container exactly as torch.save's PyTorchStreamWriter (miniz) does, so our
 * `.pth` files are byte-identical to torch's for the same content (checked against Debian's
 * torch 1.13 in test/io):
 *  - entries stored (method 0), version 0, flags 0x0808 (data descriptor + UTF-8), time/date 0;
 *  - each local header carries an extra field "FB" + u16 length + 'Z' padding so the entry's
 *    data starts at a multiple of 64 bytes (torch's kFieldAlignment, for mmap);
 *  - sizes and CRC-32 in a data descriptor (PK\x07\x08) after the data, except for empty
 *    records (flags 0x0800, no descriptor: miniz writes an empty entry's sizes up front, and they are 0);
 *  - central directory, then a zip64 end-of-central-directory record + locator (miniz writes
 *    them always, as torch opens the writer with MZ_ZIP_FLAG_WRITE_ZIP64), then the classic EOCD.
 * No zip library writes the FB alignment records, hence hand-written. Archives over 4 GiB would
 * need zip64 extras per entry and are refused.
 */
import * as zlib from 'node:zlib';

const ALIGN = 64;
const U32_MAX = 0xffffffff;

const nodeCrc32 = (zlib as unknown as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
let table: Uint32Array | undefined;

/** CRC-32 (IEEE), via node:zlib where available (Node ≥ 20.15), else a table. */
export function crc32(data: Uint8Array): number {
  if (nodeCrc32) return nodeCrc32(data) >>> 0;
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface ZipRecord {
  /** Name inside the archive folder, e.g. "data.pkl", "data/0", "version". */
  name: string;
  data: Uint8Array;
}

/** The archive's bytes as a list of chunks (record data are referenced, not copied). */
export function torchZipChunks(archiveName: string, records: readonly ZipRecord[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  const central: Buffer[] = [];
  let cursor = 0;
  for (const r of records) {
    const name = Buffer.from(`${archiveName}/${r.name}`, 'utf8');
    const size = r.data.length;
    if (size >= U32_MAX || cursor >= U32_MAX) throw new Error('PyTorch archives over 4 GiB are not supported');
    const start = cursor + 30 + name.length + 4;
    const pad = (ALIGN - (start % ALIGN)) % ALIGN;
    const crc = crc32(r.data);
    const flags = size === 0 ? 0x0800 : 0x0808; // UTF-8 name (+ data descriptor when non-empty)

    const local = Buffer.alloc(30 + name.length + 4 + pad);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(0, 4); // version needed
    local.writeUInt16LE(flags, 6);
    // method, time, date, crc, sizes: all 0 (bytes 8..25)
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(4 + pad, 28);
    name.copy(local, 30);
    local.write('FB', 30 + name.length, 'latin1');
    local.writeUInt16LE(pad, 30 + name.length + 2);
    local.fill(0x5a, 30 + name.length + 4); // 'Z'

    const desc = Buffer.alloc(size === 0 ? 0 : 16);
    if (size > 0) {
      desc.writeUInt32LE(0x08074b50, 0);
      desc.writeUInt32LE(crc, 4);
      desc.writeUInt32LE(size, 8);
      desc.writeUInt32LE(size, 12);
    }

    const cd = Buffer.alloc(46 + name.length);
    cd.writeUInt32LE(0x02014b50, 0);
    // version made by 0, version needed 0
    cd.writeUInt16LE(flags, 8);
    // method, time, date 0
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(size, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(name.length, 28);
    // extra 0, comment 0, disk 0, internal 0, external 0
    cd.writeUInt32LE(cursor, 42);
    name.copy(cd, 46);
    central.push(cd);

    chunks.push(local, r.data, desc);
    cursor += local.length + size + desc.length;
  }
  const cdOffset = cursor;
  const cdSize = central.reduce((a, b) => a + b.length, 0);
  if (cdOffset + cdSize >= U32_MAX) throw new Error('PyTorch archives over 4 GiB are not supported');
  chunks.push(...central);
  const n = records.length;

  const end = Buffer.alloc(56 + 20 + 22);
  let o = 0;
  end.writeUInt32LE(0x06064b50, o); // zip64 end of central directory
  end.writeBigUInt64LE(44n, o + 4);
  end.writeUInt16LE(0x031e, o + 12); // version made by (as miniz writes it)
  end.writeUInt16LE(0x002d, o + 14); // version needed: 4.5
  end.writeBigUInt64LE(BigInt(n), o + 24);
  end.writeBigUInt64LE(BigInt(n), o + 32);
  end.writeBigUInt64LE(BigInt(cdSize), o + 40);
  end.writeBigUInt64LE(BigInt(cdOffset), o + 48);
  o = 56;
  end.writeUInt32LE(0x07064b50, o); // zip64 locator
  end.writeBigUInt64LE(BigInt(cdOffset + cdSize), o + 8);
  end.writeUInt32LE(1, o + 16);
  o = 76;
  end.writeUInt32LE(0x06054b50, o); // end of central directory
  end.writeUInt16LE(Math.min(n, 0xffff), o + 8);
  end.writeUInt16LE(Math.min(n, 0xffff), o + 10);
  end.writeUInt32LE(cdSize, o + 12);
  end.writeUInt32LE(cdOffset, o + 16);
  chunks.push(end);
  return chunks;
}
