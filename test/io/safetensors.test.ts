import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HostTensor, StateDict } from '../../src/io/host-tensor.js';
import {
  readSafetensors,
  readSafetensorsSync,
  safetensorsFromBuffer,
  safetensorsToBuffer,
  writeSafetensors,
  writeSafetensorsSync,
} from '../../src/io/safetensors.js';
import { UserError } from '../../src/util/errors.js';
import { tmpDir } from './helpers.js';

function allDtypes(): StateDict {
  const sd: StateDict = new Map();
  // Deliberately not alphabetical: order must survive.
  sd.set('z.weight', { dtype: 'float32', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, -0, 1e-8]) });
  sd.set('a.bias', { dtype: 'float64', shape: [2], data: Float64Array.from([Math.PI, -1e300]) });
  sd.set('m.half', { dtype: 'float16', shape: [2], data: Uint16Array.from([0x3c00, 0xc000]) });
  sd.set('m.bf16', { dtype: 'bfloat16', shape: [1, 1], data: Uint16Array.from([0x3f80]) });
  sd.set('bn.num_batches_tracked', { dtype: 'int64', shape: [], data: BigInt64Array.from([123456789012345n]) });
  sd.set('i32', { dtype: 'int32', shape: [2], data: Int32Array.from([-1, 2147483647]) });
  sd.set('i16', { dtype: 'int16', shape: [1], data: Int16Array.from([-300]) });
  sd.set('i8', { dtype: 'int8', shape: [2], data: Int8Array.from([-128, 127]) });
  sd.set('u8', { dtype: 'uint8', shape: [2], data: Uint8Array.from([0, 255]) });
  sd.set('mask', { dtype: 'bool', shape: [3], data: Uint8Array.from([1, 0, 1]) });
  sd.set('empty', { dtype: 'float32', shape: [0, 4], data: new Float32Array(0) });
  return sd;
}

function assertSameTensors(a: StateDict, b: StateDict): void {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [k, t] of a) {
    const u = b.get(k)!;
    assert.equal(u.dtype, t.dtype, k);
    assert.deepEqual(u.shape, t.shape, k);
    assert.equal(u.data.constructor, t.data.constructor, k);
    assert.deepEqual([...(u.data as ArrayLike<number | bigint> & Iterable<number | bigint>)], [...(t.data as Iterable<number | bigint>)], k);
  }
}

function header(buf: Buffer): { n: number; json: string } {
  const n = Number(buf.readBigUInt64LE(0));
  return { n, json: buf.subarray(8, 8 + n).toString('utf8') };
}

describe('safetensors', () => {
  test('exact bytes of a small file: length prefix, JSON header padded with spaces to 8 bytes, data', () => {
    const sd: StateDict = new Map([['a', { dtype: 'float32', shape: [2], data: Float32Array.from([1, 2]) } as HostTensor]]);
    const buf = safetensorsToBuffer(sd, { format: 'pt' });
    const json = '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
    const expected = Buffer.concat([
      Buffer.from([padded.length, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from(padded),
      Buffer.from([0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]), // 1.0f, 2.0f little-endian
    ]);
    assert.deepEqual(buf, expected);
    assert.equal((8 + padded.length) % 8, 0);
  });

  test('round trip of every dtype, with metadata and tensor order preserved (file and buffer)', async () => {
    const dir = tmpDir('st');
    const f = path.join(dir, 'deep', 'ckpt.safetensors');
    const meta = { epoch: '7', config: 'arch: ResNet50\nlr: 0.256', 'ü': 'ß' };
    await writeSafetensors(f, allDtypes(), meta);
    const back = await readSafetensors(f);
    assertSameTensors(allDtypes(), back.tensors);
    assert.deepEqual(back.metadata, meta);
    const { n, json } = header(fs.readFileSync(f));
    assert.equal((8 + n) % 8, 0);
    assert.ok(json.indexOf('"z.weight"') < json.indexOf('"a.bias"'), 'JSON key order follows insertion order');
    writeSafetensorsSync(f, allDtypes());
    const sync = readSafetensorsSync(f);
    assertSameTensors(allDtypes(), sync.tensors);
    assert.deepEqual(sync.metadata, {});
    assert.deepEqual(fs.readdirSync(path.dirname(f)), ['ckpt.safetensors']);
  });

  test('reading orders tensors by data offset, whatever the JSON key order, and copies to aligned arrays', () => {
    const json = JSON.stringify({
      second: { dtype: 'F64', shape: [1], data_offsets: [4, 12] },
      first: { dtype: 'I32', shape: [1], data_offsets: [0, 4] },
    });
    const data = Buffer.alloc(12);
    data.writeInt32LE(-7, 0);
    data.writeDoubleLE(0.25, 4); // deliberately at a 4-byte, not 8-byte, boundary
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    const { tensors } = safetensorsFromBuffer(Buffer.concat([len, Buffer.from(json), data]));
    assert.deepEqual([...tensors.keys()], ['first', 'second']);
    assert.equal(tensors.get('first')!.data[0], -7);
    assert.equal(tensors.get('second')!.data[0], 0.25);
    assert.equal(tensors.get('second')!.data.byteOffset % 8, 0);
  });

  test('truncated and invalid files are UserErrors naming the file', async () => {
    const dir = tmpDir('st-bad');
    const good = safetensorsToBuffer(allDtypes(), { a: 'b' });
    const cases: [string, Buffer, RegExp][] = [
      ['empty', Buffer.alloc(0), /too short/],
      ['truncated-header', good.subarray(0, 20), /truncated/],
      ['truncated-data', good.subarray(0, good.length - 3), /truncated/],
      ['trailing', Buffer.concat([good, Buffer.from([0])]), /trailing/],
    ];
    const mk = (obj: unknown, data = Buffer.alloc(0)): Buffer => {
      const j = Buffer.from(JSON.stringify(obj));
      const l = Buffer.alloc(8);
      l.writeBigUInt64LE(BigInt(j.length));
      return Buffer.concat([l, j, data]);
    };
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(1n << 40n);
    cases.push(
      ['huge-header', huge, /exceeds/],
      ['not-json', Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{x]')]), /not JSON/],
      ['bad-dtype', mk({ a: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, Buffer.alloc(1)), /unsupported dtype "F8"/],
      ['bad-size', mk({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, Buffer.alloc(4)), /needs 8/],
      ['gap', mk({ a: { dtype: 'U8', shape: [1], data_offsets: [1, 2] } }, Buffer.alloc(2)), /gap/],
      ['bad-meta', mk({ __metadata__: { a: 1 } }), /__metadata__\.a/],
      ['bad-shape', mk({ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }), /invalid shape/],
    );
    for (const [name, bytes, re] of cases) {
      const f = path.join(dir, `${name}.safetensors`);
      fs.writeFileSync(f, bytes);
      await assert.rejects(readSafetensors(f), (e: unknown) => {
        assert.ok(e instanceof UserError, `${name}: ${String(e)}`);
        assert.ok(e.message.startsWith(`${f}: `), e.message);
        assert.match(e.message, re, name);
        return true;
      });
    }
    await assert.rejects(readSafetensors(path.join(dir, 'missing.safetensors')), /cannot read.*ENOENT/);
  });

  test('writing refuses tensors whose data do not match dtype and shape', () => {
    const bad: StateDict = new Map([['w', { dtype: 'float32', shape: [3], data: Float32Array.from([1, 2]) } as HostTensor]]);
    assert.throws(() => safetensorsToBuffer(bad), /needs 3 elements/);
    const wrongType: StateDict = new Map([['w', { dtype: 'int64', shape: [1], data: Int32Array.from([1]) } as HostTensor]]);
    assert.throws(() => safetensorsToBuffer(wrongType), /BigInt64Array/);
  });
});

describe('checkpoint format sniffing', () => {
  test('tells safetensors, torch zip and legacy torch files apart by content', async () => {
    const { sniffCheckpointFile } = await import('../../src/io/formats.js');
    const { fixture } = await import('./helpers.js');
    const dir = tmpDir('sniff');
    const st = path.join(dir, 'x.pth'); // misleading extension on purpose
    writeSafetensorsSync(st, allDtypes());
    assert.equal(sniffCheckpointFile(st), 'safetensors');
    assert.equal(sniffCheckpointFile(fixture('epoch_1.state')), 'torch-zip');
    assert.equal(sniffCheckpointFile(fixture('plain_legacy.pth')), 'torch-legacy');
    fs.writeFileSync(path.join(dir, 'junk'), 'junk');
    assert.throws(() => sniffCheckpointFile(path.join(dir, 'junk')), /junk: not a checkpoint/);
    assert.throws(() => sniffCheckpointFile(path.join(dir, 'none')), /cannot read checkpoint.*ENOENT/);
  });
});
