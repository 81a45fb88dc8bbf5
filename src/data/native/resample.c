/*
 * Pillow's 8-bit bilinear resampling passes (libImaging/Resample.c), vectorised with WebAssembly
 * SIMD, bit-identical to Pillow: 22-bit fixed-point weights, horizontal pass first with uint8
 * rounding in between, then the vertical pass. The vertical pass writes ToTensor+Normalize
 * float32 directly ((v/255 - mean)/std in float32, as PyTorch computes it).
 *
 * Built by build-wasm.sh (clang --target=wasm32 -msimd128) into ../resample-wasm.ts.
 * The caller pads every buffer by 64 bytes: loads and stores run up to 16 bytes past the end.
 */
#include <stdint.h>
#include <wasm_simd128.h>

#define PRECISION_BITS 22
#define HALF (1 << (PRECISION_BITS - 1))

/* Weights are >= 0 and sum to about 2^22, so 255 * sum + HALF < 2^31: int32 never overflows. */

/* RGB rows (srcW pixels, 3 bytes each) -> rows of outW pixels. bounds: (first, count) per output. */
void horizontal(const uint8_t *src, int srcW, int rows, const int32_t *bounds, const int32_t *kk,
                int ksize, int outW, uint8_t *dst) {
  const v128_t half = wasm_i32x4_splat(HALF);
  for (int y = 0; y < rows; y++) {
    const uint8_t *row = src + (long)y * srcW * 3;
    for (int xx = 0; xx < outW; xx++) {
      const int xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1];
      const int32_t *k = kk + xx * ksize;
      const uint8_t *p = row + xmin * 3;
      v128_t acc = half;
      for (int x = 0; x < xmax; x++) {
        /* (r, g, b, next byte) widened to 4 x i32; the 4th lane is ignored */
        v128_t px = wasm_v128_load32_zero(p);
        px = wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(px));
        acc = wasm_i32x4_add(acc, wasm_i32x4_mul(px, wasm_i32x4_splat(k[x])));
        p += 3;
      }
      /* clip8: >> 22, then saturating narrows clamp to 0..255 */
      v128_t v = wasm_i32x4_shr(acc, PRECISION_BITS);
      v = wasm_u8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(v, v), v);
      wasm_v128_store32_lane(dst, v, 0); /* writes a 4th byte that the next pixel overwrites */
      dst += 3;
    }
  }
}

/* Normalise 4 clipped values whose first channel is `phase` (0..2). */
static inline v128_t normalize4(v128_t v, const float *mean, const float *std, int phase) {
  const v128_t m = wasm_v128_load(mean + 4 * phase);
  const v128_t s = wasm_v128_load(std + 4 * phase);
  v128_t f = wasm_f32x4_convert_i32x4(v);
  f = wasm_f32x4_div(f, wasm_f32x4_splat(255.0f));
  return wasm_f32x4_div(wasm_f32x4_sub(f, m), s);
}

static inline v128_t clip4(v128_t acc) {
  v128_t v = wasm_i32x4_shr(acc, PRECISION_BITS);
  v = wasm_i32x4_max(v, wasm_i32x4_splat(0));
  return wasm_i32x4_min(v, wasm_i32x4_splat(255));
}

/*
 * Rows of w RGB pixels -> outH rows, as normalised float32 HWC. mean/std: 3 phases x 4 lanes
 * (phase p holds channels p, p+1, p+2, p+3 mod 3). Works on 16 bytes of a row at a time.
 */
void vertical_normalize(const uint8_t *src, int w, const int32_t *bounds, const int32_t *kk,
                        int ksize, int outH, const float *mean, const float *std, float *out) {
  const int stride = w * 3;
  const v128_t half = wasm_i32x4_splat(HALF);
  for (int yy = 0; yy < outH; yy++) {
    const int ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1];
    const int32_t *k = kk + yy * ksize;
    float *orow = out + (long)yy * stride;
    for (int i = 0; i < stride; i += 16) {
      v128_t a0 = half, a1 = half, a2 = half, a3 = half;
      const uint8_t *p = src + (long)ymin * stride + i;
      for (int y = 0; y < ymax; y++) {
        const v128_t px = wasm_v128_load(p);
        const v128_t wt = wasm_i32x4_splat(k[y]);
        const v128_t lo = wasm_u16x8_extend_low_u8x16(px);
        const v128_t hi = wasm_u16x8_extend_high_u8x16(px);
        a0 = wasm_i32x4_add(a0, wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(lo), wt));
        a1 = wasm_i32x4_add(a1, wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(lo), wt));
        a2 = wasm_i32x4_add(a2, wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(hi), wt));
        a3 = wasm_i32x4_add(a3, wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(hi), wt));
        p += stride;
      }
      /* A chunk past the row end spills into the next row, which is written afterwards. */
      float *o = orow + i;
      wasm_v128_store(o, normalize4(clip4(a0), mean, std, i % 3));
      wasm_v128_store(o + 4, normalize4(clip4(a1), mean, std, (i + 4) % 3));
      wasm_v128_store(o + 8, normalize4(clip4(a2), mean, std, (i + 8) % 3));
      wasm_v128_store(o + 12, normalize4(clip4(a3), mean, std, (i + 12) % 3));
    }
  }
}
