import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSparse, encodeSparse, packBits, parseSparseLayout, storageBytes } from '../../src/io/sparse-tensors.js';
import type { HostTensor, StateDict } from '../../src/io/host-tensor.js';
import { UserError } from '../../src/util/errors.js';

const f32 = (shape: number[], data: number[]): HostTensor => ({ dtype: 'float32', shape, data: Float32Array.from(data) });

test('packBits: least significant bit first, 8 entries per byte, last byte padded with 0', () => {
  assert.deepEqual([...packBits(Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]))], [0b00000001, 0b00000110]);
  assert.deepEqual([...packBits(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 1]))], [0b10000000]);
});

test('storage sizes: dense 4n, bits 4·nnz + ⌈n/8⌉, indices 4·nnz + 2·nnz (n ≤ 32768) or 4·nnz', () => {
  assert.deepEqual(storageBytes(100, 10), { dense: 400, bits: 53, indices: 60 });
  assert.deepEqual(storageBytes(40000, 10), { dense: 160000, bits: 5040, indices: 80 });
});

test('encode → decode gives the tensor with +0 where the mask drops entries, in the original order', () => {
  // 20 entries, 3 kept: bits (12 + 3 = 15 bytes) beat indices (12 + 6 = 18) and dense (80)
  const w = Array.from({ length: 20 }, (_, i) => (i % 2 ? -1 : 1) * (i + 0.5));
  const mask = new Uint8Array(20);
  for (const i of [1, 7, 19]) mask[i] = 1;
  // 1000 entries, 2 kept: indices (8 + 4 = 12 bytes) beat bits (8 + 125)
  const big = Array.from({ length: 1000 }, (_, i) => i / 7);
  const bigMask = new Uint8Array(1000);
  bigMask[3] = bigMask[998] = 1;
  // dense mask: stays dense
  const fc = [1, 2, 3, 4];
  const sd: StateDict = new Map([
    ['a.weight', f32([2, 2, 5, 1], w)],
    ['a.bias', f32([2], [0.25, -0.5])],
    ['b.weight', f32([10, 100], big)],
    ['fc.weight', f32([2, 2], fc)],
    ['n', { dtype: 'int64', shape: [], data: BigInt64Array.of(5n) }],
  ]);
  const keep = new Map([['a.weight', mask], ['b.weight', bigMask], ['fc.weight', Uint8Array.from([1, 1, 1, 1])]]);
  const enc = encodeSparse(sd, keep);
  assert.deepEqual([...enc.tensors.keys()], ['a.weight:values', 'a.weight:bits', 'a.bias', 'b.weight:values', 'b.weight:indices', 'fc.weight', 'n']);
  assert.deepEqual(enc.layout, { 'a.weight': { shape: [2, 2, 5, 1], mask: 'bits' }, 'b.weight': { shape: [10, 100], mask: 'indices' } });
  assert.equal(enc.nonZeros, 3 + 2 + 4);
  assert.deepEqual([...enc.tensors.get('a.weight:values')!.data], [w[1], w[7], w[19]].map(Math.fround));
  assert.deepEqual([...enc.tensors.get('a.weight:bits')!.data], [0b10000010, 0, 0b1000]);
  assert.equal(enc.tensors.get('b.weight:indices')!.dtype, 'int16');
  assert.deepEqual([...enc.tensors.get('b.weight:indices')!.data], [3, 998]);

  const dec = decodeSparse(enc.tensors, enc.layout, 'x');
  assert.deepEqual([...dec.keys()], [...sd.keys()]);
  const a = dec.get('a.weight')!;
  assert.deepEqual(a.shape, [2, 2, 5, 1]);
  for (let i = 0; i < 20; i++) assert.ok(Object.is(a.data[i], mask[i] ? Math.fround(w[i]) : 0), `a[${i}]`);
  const b = dec.get('b.weight')!.data;
  assert.equal(b[3], Math.fround(3 / 7));
  assert.equal(b[998], Math.fround(998 / 7));
  assert.equal([...b].filter((v) => v !== 0).length, 2);
  assert.equal(dec.get('fc.weight'), sd.get('fc.weight'));
});

test('indices above 32767 are int32', () => {
  const n = 40000;
  const mask = new Uint8Array(n);
  mask[39999] = 1;
  const enc = encodeSparse(new Map([['w', f32([n], Array.from({ length: n }, () => 1))]]), new Map([['w', mask]]));
  assert.equal(enc.tensors.get('w:indices')!.dtype, 'int32');
  assert.equal(decodeSparse(enc.tensors, enc.layout, 'x').get('w')!.data[39999], 1);
});

test('inconsistent files are one-line UserErrors naming the file and tensor', () => {
  const mask = new Uint8Array(16);
  mask[2] = 1;
  const enc = encodeSparse(new Map([['w', f32([16], Array.from({ length: 16 }, (_, i) => i))]]), new Map([['w', mask]]));
  const moreBits = new Map(enc.tensors);
  moreBits.set('w:bits', { dtype: 'uint8', shape: [2], data: Uint8Array.from([0b110, 0]) });
  assert.throws(() => decodeSparse(moreBits, enc.layout, 'f.safetensors'), (e: Error) => e instanceof UserError && /f\.safetensors: sparse tensor w: mask has more set bits/.test(e.message));
  const noBits = new Map(enc.tensors);
  noBits.delete('w:bits');
  assert.throws(() => decodeSparse(noBits, enc.layout, 'f'), /sparse tensor w: no w:bits/);
  const noValues = new Map(enc.tensors);
  noValues.delete('w:values');
  assert.throws(() => decodeSparse(noValues, enc.layout, 'f'), /sparse tensor w: no w:values/);
  const idx = { w: { shape: [16], mask: 'indices' as const } };
  const badIdx: StateDict = new Map([['w:values', f32([2], [1, 2])], ['w:indices', { dtype: 'int32', shape: [2], data: Int32Array.from([5, 5]) }]]);
  assert.throws(() => decodeSparse(badIdx, idx, 'f'), /index 5 at position 1 is out of range or not increasing/);
  assert.throws(() => parseSparseLayout('{"w": {"shape": [2], "mask": "rle"}}', 'f'), /f: not a valid sparse checkpoint \(sparse_tensors\.w/);
  assert.throws(() => parseSparseLayout(undefined, 'f'), /no sparse_tensors metadata/);
});
