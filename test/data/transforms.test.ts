import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import seedrandom from 'seedrandom';
import {
  centerCropBox,
  normalizationLut,
  pyRound,
  resizeShorterSide,
  sampleRandomResizedCrop,
} from '../../src/data/transforms.js';

/** An rng that returns the given values in order. */
function scripted(values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error('scripted rng exhausted');
    return values[i++];
  };
}

describe('pyRound', () => {
  test('ties go to even like Python round()', () => {
    assert.deepEqual([0.5, 1.5, 2.5, 3.5, 58.5, 59.5, -0.5, -1.5].map(pyRound), [0, 2, 2, 4, 58, 60, 0, -2]);
    assert.deepEqual([0.49, 0.51, 2.4999, 7.2, 7.8].map(pyRound), [0, 1, 2, 7, 8]);
  });
});

describe('RandomResizedCrop.get_params', () => {
  test('first try follows the formulas exactly (scripted random stream)', () => {
    // area = (0.08 + 0.92·0.5)·400·300 = 64800; aspect = exp(mid of log range) = 1 → w = h = round(254.558) = 255
    // top = randint(0, 300-255) = floor(0.25·46) = 11; left = randint(0, 400-255) = floor(0.75·146) = 109
    const box = sampleRandomResizedCrop(400, 300, scripted([0.5, 0.5, 0.25, 0.75]));
    assert.deepEqual(box, { top: 11, left: 109, width: 255, height: 255, fallback: false });
  });

  test('aspect is log-uniform: u = 0 gives 3/4, u → 1 gives 4/3', () => {
    // area = 1.0·W·H = 120000, aspect 3/4: w = round(√90000) = 300, h = round(√160000) = 400 > 300 → rejected;
    // second try: area 0.08+0.92·0.25 = 0.31 → 37200, aspect 3/4: w = round(167.03) = 167, h = round(222.71) = 223
    const box = sampleRandomResizedCrop(400, 300, scripted([1, 0, 0.25, 0, 0, 0]));
    assert.deepEqual(box, { top: 0, left: 0, width: 167, height: 223, fallback: false });
  });

  test('falls back to a central crop clamped to the ratio range after 10 failed tries', () => {
    // 2000×10: any accepted try would need h = √(area/aspect) ≥ √(0.08·20000·3/4) ≈ 34.6 > 10
    const wide = sampleRandomResizedCrop(2000, 10, seedrandom.alea('wide'));
    assert.deepEqual(wide, { top: 0, left: 993, width: 13, height: 10, fallback: true }); // w = round(10·4/3) = 13
    const tall = sampleRandomResizedCrop(10, 2000, seedrandom.alea('tall'));
    assert.deepEqual(tall, { top: 993, left: 0, width: 10, height: 13, fallback: true }); // h = round(10/(3/4)) = 13
    // in-range ratio but every try rejected (scripted: scale 1, extreme aspects) → whole image
    const whole = sampleRandomResizedCrop(400, 300, scripted(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 1 : 0))));
    assert.deepEqual(whole, { top: 0, left: 0, width: 400, height: 300, fallback: true });
  });

  test('distribution of scale, log-ratio and position over many draws', () => {
    const W = 1000;
    const H = 1000;
    const rng = seedrandom.alea('distribution');
    const bins = 10;
    const scaleHist = new Array(bins).fill(0);
    const ratioHist = new Array(bins).fill(0);
    let n = 0;
    let posSum = 0;
    let posN = 0;
    const lo = Math.log(3 / 4);
    const hi = Math.log(4 / 3);
    for (let i = 0; i < 40000; i++) {
      const b = sampleRandomResizedCrop(W, H, rng);
      assert.ok(!b.fallback, 'a square image always finds a crop within 10 tries');
      assert.ok(b.left >= 0 && b.top >= 0 && b.left + b.width <= W && b.top + b.height <= H);
      const scale = (b.width * b.height) / (W * H);
      const logRatio = Math.log(b.width / b.height);
      assert.ok(scale >= 0.079 && scale <= 1.0);
      assert.ok(logRatio >= lo - 0.01 && logRatio <= hi + 0.01);
      // For scale ≤ 0.75 the first try is always accepted (w, h ≤ √(0.75·4/3)·1000), so there
      // scale and log-ratio are independent uniforms; check both histograms there.
      if (scale < 0.7) {
        n++;
        scaleHist[Math.min(bins - 1, Math.floor(((scale - 0.08) / (0.7 - 0.08)) * bins))]++;
        ratioHist[Math.min(bins - 1, Math.floor(((logRatio - lo) / (hi - lo)) * bins))]++;
      }
      if (b.width < W) {
        posSum += b.left / (W - b.width);
        posN++;
      }
    }
    const expected = n / bins;
    for (let k = 0; k < bins; k++) {
      assert.ok(Math.abs(scaleHist[k] - expected) < 0.08 * expected, `scale bin ${k}: ${scaleHist[k]} vs ${expected}`);
      assert.ok(Math.abs(ratioHist[k] - expected) < 0.08 * expected, `ratio bin ${k}: ${ratioHist[k]} vs ${expected}`);
    }
    assert.ok(Math.abs(posSum / posN - 0.5) < 0.01, `left offset is uniform: mean ${posSum / posN}`);
  });
});

describe('Resize + CenterCrop geometry', () => {
  test('shorter side → size, other side int(size·long/short)', () => {
    assert.deepEqual(resizeShorterSide(500, 375, 256), { width: 341, height: 256 }); // 341.33
    assert.deepEqual(resizeShorterSide(375, 500, 256), { width: 256, height: 341 });
    assert.deepEqual(resizeShorterSide(333, 500, 256), { width: 256, height: 384 }); // 384.38
    assert.deepEqual(resizeShorterSide(100, 50, 256), { width: 512, height: 256 }); // upscale
    assert.deepEqual(resizeShorterSide(256, 300, 256), { width: 256, height: 300 }); // already there
    assert.deepEqual(resizeShorterSide(300, 256, 256), { width: 300, height: 256 });
    assert.deepEqual(resizeShorterSide(40, 40, 32), { width: 32, height: 32 });
  });

  test('centre-crop offsets round half to even', () => {
    assert.deepEqual(centerCropBox(341, 256, 224), { left: 58, top: 16, width: 224, height: 224 }); // 58.5 → 58
    assert.deepEqual(centerCropBox(343, 256, 224), { left: 60, top: 16, width: 224, height: 224 }); // 59.5 → 60
    assert.deepEqual(centerCropBox(225, 227, 224), { left: 0, top: 2, width: 224, height: 224 }); // 0.5 → 0, 1.5 → 2
    assert.deepEqual(centerCropBox(224, 224, 224), { left: 0, top: 0, width: 224, height: 224 });
    assert.deepEqual(centerCropBox(33, 32, 28), { left: 2, top: 2, width: 28, height: 28 }); // 2.5 → 2, 2
  });
});

describe('normalisation', () => {
  test('ToTensor + Normalize values on known pixels', () => {
    const lut = normalizationLut();
    // (v/255 − mean)/std with ImageNet constants, float32
    assert.ok(Math.abs(lut[0 * 256 + 0] - -2.1179039) < 1e-6);
    assert.ok(Math.abs(lut[0 * 256 + 128] - 0.07406463) < 1e-6);
    assert.ok(Math.abs(lut[1 * 256 + 255] - 2.4285715) < 1e-6);
    assert.ok(Math.abs(lut[2 * 256 + 255] - 2.64) < 1e-6);
    assert.ok(Math.abs(lut[2 * 256 + 0] - -1.8044444) < 1e-6);
    // bit-exact with PyTorch's float32 sequence: x.float().div(255).sub_(mean).div_(std)
    const f = Math.fround;
    assert.equal(lut[256 + 77], f(f(f(77 / 255) - f(0.456)) / f(0.224)));
  });
});
