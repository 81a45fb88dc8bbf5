import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import seedrandom from 'seedrandom';
import { SampleError, type TransformSpec, cmykToRgb, decodeBuffer, decodeSample, jpegDimensions, jpegHeader, pngDimensions } from '../../src/data/decode.js';
import { repoPath } from './helpers.js';
import { normalizationLut } from '../../src/data/transforms.js';

const lut = normalizationLut();
const val = (size: number, resize: number): TransformSpec => ({ train: false, size, resize });
const train = (size: number): TransformSpec => ({ train: true, size, resize: size });

async function run(buf: Buffer, spec: TransformSpec, seed = 'x'): Promise<Float32Array> {
  const out = new Float32Array(spec.size * spec.size * 3);
  await decodeBuffer('mem', buf, spec, seedrandom.alea(seed), out, 0, lut);
  return out;
}

function solid(w: number, h: number, rgb: [number, number, number]): sharp.Sharp {
  return sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
}

function assertAllPixels(out: Float32Array, rgb: [number, number, number]): void {
  for (let i = 0; i < out.length; i += 3) {
    for (let c = 0; c < 3; c++) {
      if (out[i + c] !== lut[c * 256 + rgb[c]]) assert.fail(`value ${i / 3}/${c}: ${out[i + c]} != ${lut[c * 256 + rgb[c]]}`);
    }
  }
}

describe('decode + transform', () => {
  test('a solid RGB PNG keeps its exact normalised colour through both transforms', async () => {
    const png = await solid(37, 23, [200, 30, 128]).png().toBuffer();
    assertAllPixels(await run(png, train(16)), [200, 30, 128]);
    assertAllPixels(await run(png, val(16, 20)), [200, 30, 128]);
  });

  test('grayscale PNG and JPEG become three equal channels', async () => {
    const raw = Buffer.alloc(30 * 20);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 13) % 256;
    const grey = sharp(raw, { raw: { width: 30, height: 20, channels: 1 } }).toColourspace('b-w');
    for (const buf of [await grey.clone().png().toBuffer(), await grey.clone().jpeg().toBuffer()]) {
      const meta = await sharp(buf).metadata();
      assert.equal(meta.channels, 1, 'input really is single-channel');
      const out = await run(buf, val(12, 16));
      for (let i = 0; i < out.length; i += 3) {
        // same uint8 in every channel → lut values of that uint8
        const v = lut.indexOf(out[i]);
        assert.ok(v >= 0 && v < 256);
        assert.equal(out[i + 1], lut[256 + v]);
        assert.equal(out[i + 2], lut[512 + v]);
      }
    }
  });

  test('16-bit PNG is scaled to 8 bits', async () => {
    const png = await solid(20, 20, [255, 0, 128]).toColourspace('rgb16').png().toBuffer();
    assert.equal((await sharp(png).metadata()).depth, 'ushort');
    assertAllPixels(await run(png, val(8, 10)), [255, 0, 128]);
  });

  test('alpha is dropped, keeping the colour under transparent pixels (PIL convert("RGB"))', async () => {
    const rgba = Buffer.alloc(20 * 20 * 4);
    for (let i = 0; i < 400; i++) rgba.set([10, 200, 60, i % 2 === 0 ? 0 : 255], i * 4);
    const png = await sharp(rgba, { raw: { width: 20, height: 20, channels: 4 } }).png().toBuffer();
    assertAllPixels(await run(png, train(8)), [10, 200, 60]);
  });

  test('BMP (not readable by libvips) is decoded', async () => {
    // 2×2 24-bit BMP, bottom-up rows padded to 4 bytes: top row red, green; bottom row blue, white
    const header = Buffer.alloc(54);
    header.write('BM', 0);
    header.writeUInt32LE(54 + 16, 2);
    header.writeUInt32LE(54, 10);
    header.writeUInt32LE(40, 14);
    header.writeInt32LE(2, 18);
    header.writeInt32LE(2, 22);
    header.writeUInt16LE(1, 26);
    header.writeUInt16LE(24, 28);
    const pixels = Buffer.from([255, 0, 0, 255, 255, 255, 0, 0, /* bottom row: blue, white (BGR) */ 0, 0, 255, 0, 255, 0, 0, 0 /* top: red, green */]);
    const bmp = Buffer.concat([header, pixels]);
    const out = await run(bmp, val(2, 2));
    const want = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];
    for (let p = 0; p < 4; p++) for (let c = 0; c < 3; c++) assert.equal(out[p * 3 + c], lut[c * 256 + want[p][c]], `pixel ${p} channel ${c}`);
  });

  test('horizontal flip mirrors the crop', async () => {
    const raw = Buffer.alloc(16 * 16 * 3);
    for (let x = 0; x < 16; x++) for (let y = 0; y < 16; y++) raw.set(x < 8 ? [255, 0, 0] : [0, 0, 255], (y * 16 + x) * 3);
    const png = await sharp(raw, { raw: { width: 16, height: 16, channels: 3 } }).png().toBuffer();
    // find seeds giving a full-image crop with and without flip: scale ~1 → crop is the image
    let seen = new Set<string>();
    for (let s = 0; s < 200 && seen.size < 2; s++) {
      const out = await run(png, train(16), `flip${s}`);
      seen.add(out[0] > 0 ? 'red-left' : 'blue-left');
    }
    assert.deepEqual([...seen].sort(), ['blue-left', 'red-left']);
  });

  test('large JPEGs take the shrink-on-load path and agree with the exact path', async () => {
    const W = 1600;
    const H = 1200;
    const raw = Buffer.alloc(W * H * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) raw.set([(x >> 3) & 255, (y >> 3) & 255, ((x + y) >> 4) & 255], (y * W + x) * 3);
    const img = sharp(raw, { raw: { width: W, height: H, channels: 3 } });
    const jpeg = await img.clone().jpeg({ quality: 95 }).toBuffer();
    const png = await img.clone().png({ compressionLevel: 1 }).toBuffer();
    const a = await run(jpeg, val(64, 80)); // min side 1200 ≥ 3·80: libvips resize with shrink-on-load
    const b = await run(png, val(64, 80)); // PNG: exact Pillow path
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff += Math.abs(a[i] - b[i]);
    assert.ok(diff / a.length < 0.05, `mean |difference| ${diff / a.length}`);
  });

  test('bad bytes raise SampleError naming the file', async () => {
    const jpeg = await solid(40, 30, [1, 2, 3]).jpeg().toBuffer();
    const png = await solid(40, 30, [1, 2, 3]).png().toBuffer();
    const cases: [string, Buffer, RegExp][] = [
      ['truncated.jpg', jpeg.subarray(0, jpeg.length >> 1), /premature end|truncated|end of/i],
      ['truncated.png', png.subarray(0, png.length >> 1), /end of stream|truncated|read/i],
      ['text.jpg', Buffer.from('not an image'), /unsupported image format/],
      ['bad.bmp', Buffer.from('BM this is not a bitmap at all, just text padding it past 54 bytes ......'), /./],
    ];
    for (const [name, buf, reason] of cases) {
      await assert.rejects(
        decodeBuffer(name, buf, val(8, 10), null, new Float32Array(192), 0, lut),
        (e: unknown) => e instanceof SampleError && e.file === name && reason.test(e.reason),
        name,
      );
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'decode-'));
    try {
      writeFileSync(path.join(dir, 'empty.jpg'), '');
      await assert.rejects(decodeSample(path.join(dir, 'empty.jpg'), val(8, 10), null, new Float32Array(192), 0, lut), /0 bytes/);
      await assert.rejects(decodeSample(path.join(dir, 'missing.jpg'), val(8, 10), null, new Float32Array(192), 0, lut), /ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a cut-off JPEG is always rejected, even when the crop lies above the cut', async () => {
    const raw = Buffer.alloc(40 * 100 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 7 + (i >> 8)) % 256;
    const jpeg = await sharp(raw, { raw: { width: 40, height: 100, channels: 3 } }).jpeg().toBuffer();
    const cut = jpeg.subarray(0, Math.floor(jpeg.length * 0.9));
    assert.equal(jpegHeader(cut)?.complete, false);
    assert.equal(jpegHeader(jpeg)?.complete, true);
    // val: the centre crop (rows 30..70) ends well above the cut
    await assert.rejects(run(cut, val(32, 40)), /premature end|truncated/i);
    for (let s = 0; s < 10; s++) await assert.rejects(run(cut, train(8), `cut${s}`), /premature end|truncated/i);
    // bytes after the end marker are fine (PIL ignores them too)
    const trailing = Buffer.concat([jpeg, Buffer.alloc(3000, 7)]);
    assert.equal(jpegHeader(trailing)?.complete, true);
    await run(trailing, val(32, 40));
  });

  test('JPEG dimensions are read from the header (baseline and progressive)', async () => {
    for (const progressive of [false, true]) {
      const buf = await solid(123, 45, [9, 9, 9]).withMetadata().jpeg({ progressive }).toBuffer();
      assert.deepEqual(jpegDimensions(buf), { width: 123, height: 45 });
    }
    assert.equal(jpegDimensions(Buffer.from([0xff, 0xd8, 0xff])), null);
    assert.equal(jpegDimensions(Buffer.from('hello')), null);
  });

  test("CMYK JPEGs become RGB exactly as PIL's convert('RGB') makes them (not libvips' ICC transform)", async () => {
    // a JPEG written by Pillow and Pillow's RGB of it (fixtures/make_pillow_cmyk.py)
    const f = JSON.parse(readFileSync(repoPath('test/data/fixtures/pillow_cmyk.json'), 'utf8')) as { width: number; height: number; jpeg: string; cmyk: string; rgb: string };
    const jpeg = Buffer.from(f.jpeg, 'base64');
    const rgb = Buffer.from(f.rgb, 'base64');
    assert.deepEqual(cmykToRgb(Buffer.from(f.cmyk, 'base64')), new Uint8Array(rgb), 'the formula on PIL\'s CMYK');
    assert.equal(jpegHeader(jpeg)?.components, 4);
    // val: shorter side 16 = the image's, so no resize, then the centre 16x16 of 24x16 (left 4)
    const out = new Float32Array(16 * 16 * 3);
    await decodeBuffer('cmyk.jpg', jpeg, val(16, 16), null, out, 0, lut);
    for (let y = 0; y < 16; y++) {
      for (let x = 0; x < 16; x++) {
        for (let c = 0; c < 3; c++) assert.equal(out[(y * 16 + x) * 3 + c], lut[c * 256 + rgb[(y * f.width + x + 4) * 3 + c]], `(${x}, ${y}) channel ${c}`);
      }
    }
  });

  test('PNG dimensions are read from IHDR; a cut-off PNG still fails in the decode', async () => {
    for (const palette of [false, true]) {
      const buf = await solid(123, 45, [9, 9, 9]).png({ palette }).toBuffer();
      assert.deepEqual(pngDimensions(buf), { width: 123, height: 45 });
    }
    const png = await sharp(Buffer.from(Array.from({ length: 40 * 30 * 3 }, (_, i) => (i * 37) & 255)), { raw: { width: 40, height: 30, channels: 3 } }).png().toBuffer();
    assert.equal(pngDimensions(png.subarray(0, 20)), null);
    assert.equal(pngDimensions(Buffer.from('hello, not a png at all')), null);
    await assert.rejects(decodeBuffer('cut.png', png.subarray(0, png.length >> 1), val(8, 10), null, new Float32Array(192), 0, lut), SampleError);
  });
});
