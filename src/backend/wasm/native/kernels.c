// Hand-written WebAssembly SIMD kernels for training on tfjs-backend-wasm: the depthwise conv
// gradients, a dense filter-gradient GEMM, an unpacked-weights GEMM for small convolutions, and
// the data movement (im2col, phase scatter, filter flips, resampling) around XNNPACK calls. No
// maintained package provides these for WebAssembly; tfjs' own C++ cannot be extended from npm.
// Compiled by ./build.sh into a small module that IMPORTS the tfjs wasm module's memory, so it
// reads and writes tensors in place.
//
// Rules that keep it safe inside someone else's memory: no static data, no stack (everything fits
// in locals; build.sh fails if the module has a data segment or touches __stack_pointer), and all
// scratch space is passed in by the caller (malloc'd through tfjs).
#include <wasm_simd128.h>

typedef unsigned int u32;

// Depthwise conv (channel multiplier 1) filter gradient, NHWC:
//   out[kh][kw][c] = sum_{n,oh,ow} x[n][oh*SH + kh*DH - top][ow*SW + kw*DW - left][c] * dy[n][oh][ow][c]
// Each output row (n, oh) is accumulated in float32 in `rowacc` (KH*KW*C floats, at most OW terms
// per element), then flushed into the float64 `acc` (KH*KW*C doubles): the long sums over N*OH rows
// keep cpu-backend accuracy.
__attribute__((export_name("dw_filter_grad"))) void dw_filter_grad(
    const float *x, const float *dy, float *out, double *acc, float *rowacc, int N, int H, int W,
    int C, int OH, int OW, int KH, int KW, int SH, int SW, int DH, int DW, int top, int left) {
  const u32 taps = (u32)(KH * KW) * (u32)C;
  for (u32 i = 0; i < taps; i++) acc[i] = 0.0;
  const int C4 = C & ~3;
  for (int n = 0; n < N; n++) {
    for (int oh = 0; oh < OH; oh++) {
      for (u32 i = 0; i < taps; i++) rowacc[i] = 0.0f;
      const float *dyrow = dy + ((u32)(n * OH + oh) * (u32)OW) * (u32)C;
      for (int kh = 0; kh < KH; kh++) {
        const int ih = oh * SH + kh * DH - top;
        if (ih < 0 || ih >= H) continue;
        const float *xrow = x + ((u32)(n * H + ih) * (u32)W) * (u32)C;
        for (int kw = 0; kw < KW; kw++) {
          float *ra = rowacc + (u32)(kh * KW + kw) * (u32)C;
          // ow range whose input column is inside the image
          int owLo = 0, owHi = OW;  // [owLo, owHi)
          const int off = kw * DW - left;
          while (owLo < OW && owLo * SW + off < 0) owLo++;
          while (owHi > owLo && (owHi - 1) * SW + off >= W) owHi--;
          if (C4 == C && C <= 16) {
            // few channels: keep the whole accumulator row in registers across ow
            for (int c = 0; c < C; c += 4) {
              v128_t a = wasm_v128_load(ra + c);
              for (int ow = owLo; ow < owHi; ow++) {
                const float *xp = xrow + (u32)(ow * SW + off) * (u32)C + c;
                const float *dp = dyrow + (u32)ow * (u32)C + c;
                a = wasm_f32x4_add(a, wasm_f32x4_mul(wasm_v128_load(xp), wasm_v128_load(dp)));
              }
              wasm_v128_store(ra + c, a);
            }
            continue;
          }
          for (int ow = owLo; ow < owHi; ow++) {
            const float *xp = xrow + (u32)(ow * SW + off) * (u32)C;
            const float *dp = dyrow + (u32)ow * (u32)C;
            int c = 0;
            for (; c + 16 <= C; c += 16) {
              v128_t a0 = wasm_v128_load(ra + c), a1 = wasm_v128_load(ra + c + 4);
              v128_t a2 = wasm_v128_load(ra + c + 8), a3 = wasm_v128_load(ra + c + 12);
              a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(xp + c), wasm_v128_load(dp + c)));
              a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wasm_v128_load(xp + c + 4), wasm_v128_load(dp + c + 4)));
              a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(wasm_v128_load(xp + c + 8), wasm_v128_load(dp + c + 8)));
              a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(wasm_v128_load(xp + c + 12), wasm_v128_load(dp + c + 12)));
              wasm_v128_store(ra + c, a0);
              wasm_v128_store(ra + c + 4, a1);
              wasm_v128_store(ra + c + 8, a2);
              wasm_v128_store(ra + c + 12, a3);
            }
            for (; c + 4 <= C; c += 4) {
              v128_t a = wasm_v128_load(ra + c);
              a = wasm_f32x4_add(a, wasm_f32x4_mul(wasm_v128_load(xp + c), wasm_v128_load(dp + c)));
              wasm_v128_store(ra + c, a);
            }
            for (; c < C; c++) ra[c] += xp[c] * dp[c];
          }
        }
      }
      u32 i = 0;
      for (; i + 4 <= taps; i += 4) {
        v128_t r = wasm_v128_load(rowacc + i);
        v128_t lo = wasm_f64x2_promote_low_f32x4(r);
        v128_t hi = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(r, r, 2, 3, 0, 1));
        wasm_v128_store(acc + i, wasm_f64x2_add(wasm_v128_load(acc + i), lo));
        wasm_v128_store(acc + i + 2, wasm_f64x2_add(wasm_v128_load(acc + i + 2), hi));
      }
      for (; i < taps; i++) acc[i] += (double)rowacc[i];
    }
  }
  for (u32 i = 0; i < taps; i++) out[i] = (float)acc[i];
}

static inline void copy_floats(float *dst, const float *src, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    wasm_v128_store(dst + i, wasm_v128_load(src + i));
    wasm_v128_store(dst + i + 4, wasm_v128_load(src + i + 4));
    wasm_v128_store(dst + i + 8, wasm_v128_load(src + i + 8));
    wasm_v128_store(dst + i + 12, wasm_v128_load(src + i + 12));
  }
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_v128_load(src + i));
  for (; i < n; i++) dst[i] = src[i];
}

static inline void zero_floats(float *dst, int n) {
  const v128_t z = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, z);
  for (; i < n; i++) dst[i] = 0.0f;
}

// Writes one phase of a sub-pixel (stride S) decomposition into its place in dst [N,H,W,C]:
//   dst[n][q*S + rh - offH][p*S + rw - offW][:] = src ? src[n][q][p][:] : 0
// for the (q, p) that land inside dst. src is [N,QH,QW,C] (or NULL: zero the phase).
__attribute__((export_name("scatter_phase"))) void scatter_phase(
    const float *src, float *dst, int N, int QH, int QW, int C, int H, int W, int S, int rh, int rw,
    int offH, int offW) {
  for (int n = 0; n < N; n++) {
    for (int q = 0; q < QH; q++) {
      const int h = q * S + rh - offH;
      if (h < 0 || h >= H) continue;
      float *drow = dst + ((u32)(n * H + h) * (u32)W) * (u32)C;
      const float *srow = src ? src + ((u32)(n * QH + q) * (u32)QW) * (u32)C : 0;
      for (int p = 0; p < QW; p++) {
        const int w = p * S + rw - offW;
        if (w < 0 || w >= W) continue;
        if (srow) copy_floats(drow + (u32)w * (u32)C, srow + (u32)p * (u32)C, C);
        else zero_floats(drow + (u32)w * (u32)C, C);
      }
    }
  }
}

// Strided spatial resampling with zero fill, NHWC (subsampling, cropping and padding in one):
//   dst[n][oh][ow][:] = x[n][oh*SH - top][ow*SW - left][:]   (0 where outside x)
__attribute__((export_name("resample"))) void resample(
    const float *x, float *dst, int N, int H, int W, int C, int OH, int OW, int SH, int SW, int top,
    int left) {
  for (int n = 0; n < N; n++) {
    for (int oh = 0; oh < OH; oh++) {
      float *drow = dst + ((u32)(n * OH + oh) * (u32)OW) * (u32)C;
      const int h = oh * SH - top;
      if (h < 0 || h >= H) {
        zero_floats(drow, OW * C);
        continue;
      }
      const float *xrow = x + ((u32)(n * H + h) * (u32)W) * (u32)C;
      if (SW == 1) {
        // contiguous run of columns
        int ow0 = left > 0 ? left : 0;            // first ow with w >= 0
        if (ow0 > OW) ow0 = OW;
        int ow1 = W + left < OW ? W + left : OW;  // one past the last ow with w < W
        if (ow1 < ow0) ow1 = ow0;
        zero_floats(drow, ow0 * C);
        copy_floats(drow + (u32)ow0 * (u32)C, xrow + (u32)(ow0 - left) * (u32)C, (ow1 - ow0) * C);
        zero_floats(drow + (u32)ow1 * (u32)C, (OW - ow1) * C);
        continue;
      }
      for (int ow = 0; ow < OW; ow++) {
        const int w = ow * SW - left;
        if (w < 0 || w >= W) zero_floats(drow + (u32)ow * (u32)C, C);
        else copy_floats(drow + (u32)ow * (u32)C, xrow + (u32)w * (u32)C, C);
      }
    }
  }
}

// dst[j][i][b][a] = src[kh][kw][a][b], i.e. an A x B -> B x A transpose of one filter tap
static void transpose_tap(const float *src, float *dst, int A, int B) {
  int a = 0;
  for (; a + 4 <= A; a += 4) {
    int b = 0;
    for (; b + 4 <= B; b += 4) {
      v128_t r0 = wasm_v128_load(src + (u32)(a + 0) * (u32)B + b);
      v128_t r1 = wasm_v128_load(src + (u32)(a + 1) * (u32)B + b);
      v128_t r2 = wasm_v128_load(src + (u32)(a + 2) * (u32)B + b);
      v128_t r3 = wasm_v128_load(src + (u32)(a + 3) * (u32)B + b);
      v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5);
      v128_t t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
      v128_t t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
      v128_t t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
      wasm_v128_store(dst + (u32)(b + 0) * (u32)A + a, wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5));
      wasm_v128_store(dst + (u32)(b + 1) * (u32)A + a, wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7));
      wasm_v128_store(dst + (u32)(b + 2) * (u32)A + a, wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5));
      wasm_v128_store(dst + (u32)(b + 3) * (u32)A + a, wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7));
    }
    for (; b < B; b++) {
      for (int k = 0; k < 4; k++) dst[(u32)b * (u32)A + a + k] = src[(u32)(a + k) * (u32)B + b];
    }
  }
  for (; a < A; a++) {
    for (int b = 0; b < B; b++) dst[(u32)b * (u32)A + a] = src[(u32)a * (u32)B + b];
  }
}

// The filter of one phase of a transposed convolution: taps kh = rh + (LH-1-j)*S, kw = rw +
// (LW-1-i)*S of src [KH,KW,A,B] (sub-sampled and flipped in space), each tap's A x B block copied
// as is (depthwise) or transposed to B x A (dense). dst is [LH,LW,A,B] or [LH,LW,B,A].
__attribute__((export_name("flip_filter"))) void flip_filter(
    const float *src, float *dst, int KH, int KW, int A, int B, int S, int rh, int rw, int LH, int LW,
    int transpose) {
  const u32 tap = (u32)A * (u32)B;
  for (int j = 0; j < LH; j++) {
    const int kh = rh + (LH - 1 - j) * S;
    for (int i = 0; i < LW; i++) {
      const int kw = rw + (LW - 1 - i) * S;
      float *d = dst + (u32)(j * LW + i) * tap;
      if (kh >= KH || kw >= KW) {
        zero_floats(d, (int)tap);
        continue;
      }
      const float *s = src + (u32)(kh * KW + kw) * tap;
      if (transpose) transpose_tap(s, d, A, B);
      else copy_floats(d, s, (int)tap);
    }
  }
}

// Transposed im2col for the filter gradient of a dense NHWC convolution, for output positions
// p in [p0, p1) (p = (n*OH + oh)*OW + ow over the whole batch):
//   colT[(kh*KW + kw)*CI + ci][p - p0] = x[n][oh*SH + kh*DH - top][ow*SW + kw*DW - left][ci]  (0 outside x)
// Then dW = colT . dy[p0:p1] is one GEMM.
__attribute__((export_name("im2col_t"))) void im2col_t(
    const float *x, float *colT, int p0, int p1, int H, int W, int CI, int OH, int OW, int KH, int KW,
    int SH, int SW, int DH, int DW, int top, int left) {
  const u32 P = (u32)(p1 - p0);
  const v128_t z = wasm_f32x4_splat(0.0f);
  for (int kh = 0; kh < KH; kh++) {
    for (int kw = 0; kw < KW; kw++) {
      float *rows = colT + (u32)((kh * KW + kw) * CI) * P;
      // walk p in blocks of 4, tracking (n, oh, ow) of the block's first entry
      int n = p0 / (OH * OW), oh = (p0 / OW) % OH, ow = p0 % OW;
      for (u32 p = 0; p < P; p += 4) {
        const float *src[4];
        int nn = n, hh = oh, ww = ow;
        const int lanes = P - p < 4 ? (int)(P - p) : 4;
        for (int j = 0; j < 4; j++) {
          src[j] = 0;
          if (j < lanes) {
            const int ih = hh * SH + kh * DH - top, iw = ww * SW + kw * DW - left;
            if (ih >= 0 && ih < H && iw >= 0 && iw < W) src[j] = x + ((u32)(nn * H + ih) * (u32)W + (u32)iw) * (u32)CI;
            if (++ww == OW) { ww = 0; if (++hh == OH) { hh = 0; nn++; } }
          }
        }
        n = nn; oh = hh; ow = ww;
        int ci = 0;
        for (; ci + 4 <= CI; ci += 4) {
          v128_t r0 = src[0] ? wasm_v128_load(src[0] + ci) : z;
          v128_t r1 = src[1] ? wasm_v128_load(src[1] + ci) : z;
          v128_t r2 = src[2] ? wasm_v128_load(src[2] + ci) : z;
          v128_t r3 = src[3] ? wasm_v128_load(src[3] + ci) : z;
          v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5);
          v128_t t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
          v128_t t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
          v128_t t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
          v128_t c0 = wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5);
          v128_t c1 = wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7);
          v128_t c2 = wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5);
          v128_t c3 = wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7);
          float *d = rows + (u32)ci * P + p;
          if (lanes == 4) {
            wasm_v128_store(d, c0);
            wasm_v128_store(d + P, c1);
            wasm_v128_store(d + 2 * P, c2);
            wasm_v128_store(d + 3 * P, c3);
          } else {
            for (int j = 0; j < lanes; j++) {
              d[j] = src[j] ? src[j][ci] : 0.0f;
              d[P + j] = src[j] ? src[j][ci + 1] : 0.0f;
              d[2 * P + j] = src[j] ? src[j][ci + 2] : 0.0f;
              d[3 * P + j] = src[j] ? src[j][ci + 3] : 0.0f;
            }
          }
        }
        for (; ci < CI; ci++) {
          float *d = rows + (u32)ci * P + p;
          for (int j = 0; j < lanes; j++) d[j] = src[j] ? src[j][ci] : 0.0f;
        }
      }
    }
  }
}

__attribute__((export_name("copy_floats"))) void copy_floats_export(float *dst, const float *src, int n) {
  copy_floats(dst, src, n);
}

// Depthwise conv (channel multiplier 1) input gradient, NHWC, gathered per input pixel:
//   dx[n][h][w][c] = sum_{kh,kw} dy[n][oh][ow][c] * f[kh][kw][c]
// over the taps with h + top - kh*DH = oh*SH and w + left - kw*DW = ow*SW inside dy.
__attribute__((export_name("dw_input_grad"))) void dw_input_grad(
    const float *dy, const float *f, float *dx, int N, int H, int W, int C, int OH, int OW, int KH, int KW,
    int SH, int SW, int DH, int DW, int top, int left) {
  for (int n = 0; n < N; n++) {
    for (int h = 0; h < H; h++) {
      for (int w = 0; w < W; w++) {
        float *out = dx + ((u32)(n * H + h) * (u32)W + (u32)w) * (u32)C;
        zero_floats(out, C);
        for (int kh = 0; kh < KH; kh++) {
          const int t = h + top - kh * DH;
          if (t < 0 || t % SH) continue;
          const int oh = t / SH;
          if (oh >= OH) continue;
          for (int kw = 0; kw < KW; kw++) {
            const int u = w + left - kw * DW;
            if (u < 0 || u % SW) continue;
            const int ow = u / SW;
            if (ow >= OW) continue;
            const float *g = dy + ((u32)(n * OH + oh) * (u32)OW + (u32)ow) * (u32)C;
            const float *k = f + (u32)(kh * KW + kw) * (u32)C;
            int c = 0;
            for (; c + 8 <= C; c += 8) {
              wasm_v128_store(out + c, wasm_f32x4_add(wasm_v128_load(out + c),
                  wasm_f32x4_mul(wasm_v128_load(g + c), wasm_v128_load(k + c))));
              wasm_v128_store(out + c + 4, wasm_f32x4_add(wasm_v128_load(out + c + 4),
                  wasm_f32x4_mul(wasm_v128_load(g + c + 4), wasm_v128_load(k + c + 4))));
            }
            for (; c + 4 <= C; c += 4) {
              wasm_v128_store(out + c, wasm_f32x4_add(wasm_v128_load(out + c),
                  wasm_f32x4_mul(wasm_v128_load(g + c), wasm_v128_load(k + c))));
            }
            for (; c < C; c++) out[c] += g[c] * k[c];
          }
        }
      }
    }
  }
}

// im2col for a dense NHWC convolution: col[p][(kh*KW + kw)*CI + ci] = x[n][ih][iw][ci] (0 outside
// x), p = (n*OH + oh)*OW + ow, ih = oh*SH + kh*DH - top, iw = ow*SW + kw*DW - left.
__attribute__((export_name("im2col"))) void im2col(
    const float *x, float *col, int N, int H, int W, int CI, int OH, int OW, int KH, int KW, int SH,
    int SW, int DH, int DW, int top, int left) {
  float *d = col;
  for (int n = 0; n < N; n++) {
    for (int oh = 0; oh < OH; oh++) {
      for (int ow = 0; ow < OW; ow++) {
        for (int kh = 0; kh < KH; kh++) {
          const int ih = oh * SH + kh * DH - top;
          for (int kw = 0; kw < KW; kw++, d += CI) {
            const int iw = ow * SW + kw * DW - left;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) zero_floats(d, CI);
            else copy_floats(d, x + ((u32)(n * H + ih) * (u32)W + (u32)iw) * (u32)CI, CI);
          }
        }
      }
    }
  }
}

// C[P][N] = A[P][K] . B[K][N], all row-major, B used as is (no packing). Meant for small P, where
// XNNPACK would spend longer packing a fresh B than multiplying. Blocks of 4 rows x 8 columns
// keep 8 accumulators in registers; the 8-wide strip of B stays in cache across row blocks.
__attribute__((export_name("gemm"))) void gemm(const float *A, const float *B, float *C, int P, int K, int N) {
  int n = 0;
  for (; n + 8 <= N; n += 8) {
    int p = 0;
    for (; p + 4 <= P; p += 4) {
      const float *a0 = A + (u32)p * (u32)K, *a1 = a0 + K, *a2 = a1 + K, *a3 = a2 + K;
      v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00;
      v128_t c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      const float *b = B + n;
      for (int k = 0; k < K; k++, b += N) {
        const v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
        v128_t a = wasm_f32x4_splat(a0[k]);
        c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(a, b0));
        c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(a, b1));
        a = wasm_f32x4_splat(a1[k]);
        c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(a, b0));
        c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(a, b1));
        a = wasm_f32x4_splat(a2[k]);
        c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(a, b0));
        c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(a, b1));
        a = wasm_f32x4_splat(a3[k]);
        c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(a, b0));
        c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(a, b1));
      }
      float *c = C + (u32)p * (u32)N + n;
      wasm_v128_store(c, c00);
      wasm_v128_store(c + 4, c01);
      wasm_v128_store(c + N, c10);
      wasm_v128_store(c + N + 4, c11);
      wasm_v128_store(c + 2 * N, c20);
      wasm_v128_store(c + 2 * N + 4, c21);
      wasm_v128_store(c + 3 * N, c30);
      wasm_v128_store(c + 3 * N + 4, c31);
    }
    for (; p < P; p++) {
      const float *a0 = A + (u32)p * (u32)K;
      v128_t c0 = wasm_f32x4_splat(0.0f), c1 = c0;
      const float *b = B + n;
      for (int k = 0; k < K; k++, b += N) {
        const v128_t a = wasm_f32x4_splat(a0[k]);
        c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(a, wasm_v128_load(b)));
        c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(a, wasm_v128_load(b + 4)));
      }
      wasm_v128_store(C + (u32)p * (u32)N + n, c0);
      wasm_v128_store(C + (u32)p * (u32)N + n + 4, c1);
    }
  }
  for (; n < N; n++) {  // leftover columns (N % 8)
    for (int p = 0; p < P; p++) {
      const float *a0 = A + (u32)p * (u32)K;
      float s = 0.0f;
      for (int k = 0; k < K; k++) s += a0[k] * B[(u32)k * (u32)N + n];
      C[(u32)p * (u32)N + n] = s;
    }
  }
}

// acc[M][N] += A^T . B over PB rows: A [PB][lda] (first M columns used), B [PB][N], float32
// register tiles of 4 x 8 summed over the rows, then added into the float64 accumulator.
static void atb_block(const float *A, int lda, const float *B, double *acc, int PB, int M, int N) {
  int i = 0;
  for (; i + 4 <= M; i += 4) {
    int n = 0;
    for (; n + 8 <= N; n += 8) {
      v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00;
      v128_t c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      const float *a = A + i, *b = B + n;
      for (int p = 0; p < PB; p++, a += lda, b += N) {
        const v128_t av = wasm_v128_load(a);
        const v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
        v128_t s = wasm_i32x4_shuffle(av, av, 0, 0, 0, 0);
        c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(s, b0));
        c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(s, b1));
        s = wasm_i32x4_shuffle(av, av, 1, 1, 1, 1);
        c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(s, b0));
        c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(s, b1));
        s = wasm_i32x4_shuffle(av, av, 2, 2, 2, 2);
        c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(s, b0));
        c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(s, b1));
        s = wasm_i32x4_shuffle(av, av, 3, 3, 3, 3);
        c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(s, b0));
        c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(s, b1));
      }
      const v128_t tile[8] = {c00, c01, c10, c11, c20, c21, c30, c31};
      for (int r = 0; r < 4; r++) {
        for (int h = 0; h < 2; h++) {
          const v128_t v = tile[r * 2 + h];
          double *d = acc + (u32)(i + r) * (u32)N + n + h * 4;
          wasm_v128_store(d, wasm_f64x2_add(wasm_v128_load(d), wasm_f64x2_promote_low_f32x4(v)));
          wasm_v128_store(d + 2, wasm_f64x2_add(wasm_v128_load(d + 2),
              wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 0, 1))));
        }
      }
    }
    for (; n < N; n++) {
      for (int r = 0; r < 4; r++) {
        float s = 0.0f;
        for (int p = 0; p < PB; p++) s += A[(u32)p * (u32)lda + i + r] * B[(u32)p * (u32)N + n];
        acc[(u32)(i + r) * (u32)N + n] += s;
      }
    }
  }
  for (; i < M; i++) {
    for (int n = 0; n < N; n++) {
      float s = 0.0f;
      for (int p = 0; p < PB; p++) s += A[(u32)p * (u32)lda + i] * B[(u32)p * (u32)N + n];
      acc[(u32)i * (u32)N + n] += s;
    }
  }
}

// Filter gradient of a dense NHWC convolution, dW[(kh,kw,ci)][co] = sum_p col[p][(kh,kw,ci)] dy[p][co],
// in blocks of PB output positions: each block's im2col rows are built in `colbuf` (PB x KH*KW*CI
// floats; unused when the convolution is 1x1/stride 1/no pad, where col is x itself), multiplied
// with register tiles and summed in float64 (`acc`, KH*KW*CI x CO doubles); out gets float32.
__attribute__((export_name("conv_filter_grad"))) void conv_filter_grad(
    const float *x, const float *dy, float *out, double *acc, float *colbuf, int PB, int N, int H, int W,
    int CI, int CO, int OH, int OW, int KH, int KW, int SH, int SW, int top, int left) {
  const int M = KH * KW * CI;
  const u32 MN = (u32)M * (u32)CO;
  for (u32 i = 0; i < MN; i++) acc[i] = 0.0;
  const int P = N * OH * OW;
  const int identity = KH == 1 && KW == 1 && SH == 1 && SW == 1 && top == 0 && left == 0 && OH == H && OW == W;
  for (int p0 = 0; p0 < P; p0 += PB) {
    const int pb = P - p0 < PB ? P - p0 : PB;
    const float *A;
    if (identity) {
      A = x + (u32)p0 * (u32)CI;
    } else {
      float *d = colbuf;
      for (int p = p0; p < p0 + pb; p++) {
        const int n = p / (OH * OW), oh = (p / OW) % OH, ow = p % OW;
        for (int kh = 0; kh < KH; kh++) {
          const int ih = oh * SH + kh - top;
          for (int kw = 0; kw < KW; kw++, d += CI) {
            const int iw = ow * SW + kw - left;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) zero_floats(d, CI);
            else copy_floats(d, x + ((u32)(n * H + ih) * (u32)W + (u32)iw) * (u32)CI, CI);
          }
        }
      }
      A = colbuf;
    }
    atb_block(A, M, dy + (u32)p0 * (u32)CO, acc, pb, M, CO);
  }
  for (u32 i = 0; i < MN; i++) out[i] = (float)acc[i];
}
