import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { bilinearCoeffs, mirrorAxis, planCropResize, planResizeCrop, resampleNormalized } from '../../src/data/resample.js';
import { RESAMPLE_C_SHA256 } from '../../src/data/resample-wasm.js';
import { centerCropBox, normalizationLut, resizeShorterSide } from '../../src/data/transforms.js';
import { repoPath } from './helpers.js';


interface Case {
  kind: 'train' | 'val';
  width: number;
  height: number;
  box?: { top: number; left: number; width: number; height: number };
  resize?: number;
  size: number;
  bytes: string;
}
// Pillow 9.4's output for these crops/resizes of a formula image (fixtures/make_pillow_resample.py).
const fixtures = JSON.parse(readFileSync(repoPath('test/data/fixtures/pillow_resample.json'), 'utf8')) as { cases: Case[] };

function pattern(w: number, h: number): Uint8Array {
  const d = new Uint8Array(w * h * 3);
  let i = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) d[i++] = (x * 37 + y * 91 + c * 53 + ((x * y) % 17)) % 256;
  return d;
}

function window(src: Uint8Array, W: number, l: number, t: number, w: number, h: number): Uint8Array {
  const o = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) o.set(src.subarray(((t + y) * W + l) * 3, ((t + y) * W + l + w) * 3), y * w * 3);
  return o;
}

describe('Pillow-exact bilinear resampling (WebAssembly)', () => {
  const lut = normalizationLut();
  for (const c of fixtures.cases) {
    for (const flip of [false, true]) {
      const name = c.kind === 'train'
        ? `crop ${c.box!.width}x${c.box!.height} of ${c.width}x${c.height} → ${c.size}${flip ? ', flipped' : ''}`
        : `Resize(${c.resize}) + CenterCrop(${c.size}) of ${c.width}x${c.height}${flip ? ', flipped' : ''}`;
      test(name, () => {
        const img = pattern(c.width, c.height);
        let plan;
        if (c.kind === 'train') {
          plan = planCropResize(c.box!, c.size);
        } else {
          const r = resizeShorterSide(c.width, c.height, c.resize!);
          const cc = centerCropBox(r.width, r.height, c.size);
          plan = planResizeCrop(c.width, c.height, r.width, r.height, cc.left, cc.top, c.size);
        }
        const S = c.size;
        const out = new Float32Array(S * S * 3 + 4).fill(99);
        const src = window(img, c.width, plan.left, plan.top, plan.width, plan.height);
        resampleNormalized(src, plan.width, plan.height, plan.h, plan.v, flip, out, 2);
        const pil = Buffer.from(c.bytes, 'base64');
        for (let y = 0; y < S; y++) {
          for (let x = 0; x < S; x++) {
            const sx = flip ? S - 1 - x : x;
            for (let ch = 0; ch < 3; ch++) {
              const got = out[2 + (y * S + x) * 3 + ch];
              const want = lut[ch * 256 + pil[(y * S + sx) * 3 + ch]];
              if (got !== want) assert.fail(`pixel (${x},${y}) channel ${ch}: ${got} != Pillow ${want}`);
            }
          }
        }
        assert.deepEqual([out[0], out[1], out[out.length - 2], out[out.length - 1]], [99, 99, 99, 99], 'writes stay in place');
      });
    }
  }

  test('val plan decodes only the source window that the centre crop reads', () => {
    // 500×375 → 341×256, crop 224 at (58, 16): horizontal scale 1.466, support 1.466
    const plan = planResizeCrop(500, 375, 341, 256, 58, 16, 224);
    assert.ok(plan.left > 0 && plan.left + plan.width < 500, `columns ${plan.left}..${plan.left + plan.width}`);
    assert.ok(plan.top > 0 && plan.top + plan.height < 375, `rows ${plan.top}..${plan.top + plan.height}`);
    assert.equal(plan.h.count, 224);
    assert.equal(plan.v.count, 224);
  });

  test('coefficients sum to one in 22-bit fixed point, mirrorAxis reverses outputs', () => {
    const c = bilinearCoeffs(37, 16);
    for (let o = 0; o < c.count; o++) {
      let s = 0;
      for (let k = 0; k < c.bounds[2 * o + 1]; k++) s += c.kk[o * c.ksize + k];
      assert.ok(Math.abs(s - (1 << 22)) <= c.ksize, `output ${o}: ${s}`);
    }
    const m = mirrorAxis(c);
    assert.equal(m.bounds[0], c.bounds[2 * (c.count - 1)]);
    assert.deepEqual(Array.from(m.kk.subarray(0, c.ksize)), Array.from(c.kk.subarray((c.count - 1) * c.ksize, c.count * c.ksize)));
  });

  test('the embedded WebAssembly was built from the current native/resample.c', () => {
    const sha = createHash('sha256').update(readFileSync(repoPath('src/data/native/resample.c'))).digest('hex');
    assert.equal(sha, RESAMPLE_C_SHA256, 'run src/data/native/build-wasm.sh after editing resample.c');
  });
});
