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

// C[P][N] = A[P][K] . B[K][N], all row-major. Meant for fresh weights B (training), where
// XNNPACK would first transpose and pack all of B. K is cut into blocks of KC rows; each block of
// B is copied once into 8-column strips (bpack, KC*N floats: contiguous, so streaming a strip
// neither misses the TLB per row nor wastes cache lines), and every 4-row block of A (4*KC floats,
// L1-resident) runs over all strips with 4 x 8 register tiles, adding into C after the first block.
// (Strips outermost with row blocks inside ran up to 2x slower here.)
__attribute__((export_name("gemm"))) void gemm(const float *A, const float *B, float *C, int P, int K, int N,
    float *bpack, int KC) {
  const int N8 = N & ~7;
  for (int k0 = 0; k0 < K; k0 += KC) {
    const int kc = K - k0 < KC ? K - k0 : KC;
    const int first = k0 == 0;
    for (int n = 0; n < N8; n += 8) {
      float *dst = bpack + (u32)n * (u32)kc;
      const float *src = B + (u32)k0 * (u32)N + n;
      for (int k = 0; k < kc; k++, dst += 8, src += N) {
        wasm_v128_store(dst, wasm_v128_load(src));
        wasm_v128_store(dst + 4, wasm_v128_load(src + 4));
      }
    }
    int p = 0;
    for (; p + 4 <= P; p += 4) {
      const float *a0 = A + (u32)p * (u32)K + k0, *a1 = a0 + K, *a2 = a1 + K, *a3 = a2 + K;
      for (int n = 0; n < N8; n += 8) {
        float *c = C + (u32)p * (u32)N + n;
        v128_t c00, c01, c10, c11, c20, c21, c30, c31;
        if (first) {
          c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = wasm_f32x4_splat(0.0f);
        } else {
          c00 = wasm_v128_load(c); c01 = wasm_v128_load(c + 4);
          c10 = wasm_v128_load(c + N); c11 = wasm_v128_load(c + N + 4);
          c20 = wasm_v128_load(c + 2 * N); c21 = wasm_v128_load(c + 2 * N + 4);
          c30 = wasm_v128_load(c + 3 * N); c31 = wasm_v128_load(c + 3 * N + 4);
        }
        const float *b = bpack + (u32)n * (u32)kc;
        for (int k = 0; k < kc; k++, b += 8) {
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
        wasm_v128_store(c, c00);
        wasm_v128_store(c + 4, c01);
        wasm_v128_store(c + N, c10);
        wasm_v128_store(c + N + 4, c11);
        wasm_v128_store(c + 2 * N, c20);
        wasm_v128_store(c + 2 * N + 4, c21);
        wasm_v128_store(c + 3 * N, c30);
        wasm_v128_store(c + 3 * N + 4, c31);
      }
    }
    for (; p < P; p++) {
      const float *a0 = A + (u32)p * (u32)K + k0;
      for (int n = 0; n < N8; n += 8) {
        float *c = C + (u32)p * (u32)N + n;
        v128_t c0 = first ? wasm_f32x4_splat(0.0f) : wasm_v128_load(c);
        v128_t c1 = first ? wasm_f32x4_splat(0.0f) : wasm_v128_load(c + 4);
        const float *b = bpack + (u32)n * (u32)kc;
        for (int k = 0; k < kc; k++, b += 8) {
          const v128_t a = wasm_f32x4_splat(a0[k]);
          c0 = wasm_f32x4_add(c0, wasm_f32x4_mul(a, wasm_v128_load(b)));
          c1 = wasm_f32x4_add(c1, wasm_f32x4_mul(a, wasm_v128_load(b + 4)));
        }
        wasm_v128_store(c, c0);
        wasm_v128_store(c + 4, c1);
      }
    }
  }
  for (int n = N8; n < N; n++) {  // leftover columns (N % 8)
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

// ---- fused training ops: BatchNorm (+ residual add + ReLU), STR soft threshold, SGD update ----
// Layout for BatchNorm: x is [R][C] (NHWC flattened, R = N*H*W), per-channel statistics.

// Four channels of the BatchNorm sums, in float64: s1 += a, s2 += a·b.
static inline void sum_and_dot4(double *s1, double *s2, v128_t a, v128_t b) {
  const v128_t alo = wasm_f64x2_promote_low_f32x4(a);
  const v128_t ahi = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(a, a, 2, 3, 0, 1));
  const v128_t blo = wasm_f64x2_promote_low_f32x4(b);
  const v128_t bhi = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(b, b, 2, 3, 0, 1));
  wasm_v128_store(s1, wasm_f64x2_add(wasm_v128_load(s1), alo));
  wasm_v128_store(s1 + 2, wasm_f64x2_add(wasm_v128_load(s1 + 2), ahi));
  wasm_v128_store(s2, wasm_f64x2_add(wasm_v128_load(s2), wasm_f64x2_mul(alo, blo)));
  wasm_v128_store(s2 + 2, wasm_f64x2_add(wasm_v128_load(s2 + 2), wasm_f64x2_mul(ahi, bhi)));
}

// Training-mode BatchNorm forward (PyTorch semantics):
//   mean = Σx/R, var = Σx²/R − mean² (biased; sums in float64), invstd = 1/sqrt(var + eps)
//   y = (x − mean)·(γ·invstd) + β  [+ res]  [then max(0, ·)]
//   running_mean' = running_mean·(1−m) + mean·m, running_var' = running_var·(1−m) + (var·R/(R−1))·m
// (float32 arithmetic in the running updates, in tfjs' op order). gamma/beta/res/rm may be 0.
// acc: scratch of 2*C doubles followed by 2*C floats.
__attribute__((export_name("bn_fwd"))) void bn_fwd(
    const float *x, const float *res, const float *gamma, const float *beta, float *y, float *mean,
    float *invstd, const float *rm, const float *rv, float *rm_out, float *rv_out, double *acc, int R,
    int C, float eps, float keep, float m, float unbias, int relu) {
  double *s1 = acc, *s2 = acc + C;
  for (int c = 0; c < C; c++) s1[c] = s2[c] = 0.0;
  const int C4 = C & ~3;
  for (int r = 0; r < R; r++) {
    const float *xr = x + (u32)r * (u32)C;
    int c = 0;
    for (; c < C4; c += 4) {
      const v128_t v = wasm_v128_load(xr + c);
      sum_and_dot4(s1 + c, s2 + c, v, v);
    }
    for (; c < C; c++) {
      const double v = (double)xr[c];
      s1[c] += v;
      s2[c] += v * v;
    }
  }
  float *scale = (float *)(acc + 2 * C), *shift = scale + C;
  for (int c = 0; c < C; c++) {
    const double mu = s1[c] / (double)R;
    double var = s2[c] / (double)R - mu * mu;
    if (var < 0.0) var = 0.0;
    const float muf = (float)mu, varf = (float)var;
    const float is = (float)(1.0 / __builtin_sqrt((double)(varf + eps)));
    mean[c] = muf;
    invstd[c] = is;
    scale[c] = gamma ? gamma[c] * is : is;
    if (rm_out) {
      rm_out[c] = rm[c] * keep + muf * m;
      rv_out[c] = rv[c] * keep + (varf * unbias) * m;
    }
  }
  for (int c = 0; c < C; c++) shift[c] = beta ? beta[c] : 0.0f;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int r = 0; r < R; r++) {
    const u32 o = (u32)r * (u32)C;
    int c = 0;
    for (; c < C4; c += 4) {
      v128_t v = wasm_f32x4_sub(wasm_v128_load(x + o + c), wasm_v128_load(mean + c));
      v = wasm_f32x4_add(wasm_f32x4_mul(v, wasm_v128_load(scale + c)), wasm_v128_load(shift + c));
      if (res) v = wasm_f32x4_add(v, wasm_v128_load(res + o + c));
      if (relu) v = wasm_f32x4_max(v, zero);
      wasm_v128_store(y + o + c, v);
    }
    for (; c < C; c++) {
      float v = (x[o + c] - mean[c]) * scale[c] + shift[c];
      if (res) v += res[o + c];
      if (relu) v = v > 0.0f ? v : 0.0f;
      y[o + c] = v;
    }
  }
}

// Training-mode BatchNorm backward. g = dy, or dy·[y > 0] when relu (y = the forward's output);
// when dres is given, g is also written there (the residual's gradient). Then, per channel,
//   dβ = Σg, dγ = invstd·Σg·(x − mean)                  (sums in float64)
//   dx = γ·invstd·(g − Σg/R − (x − mean)·invstd²·Σg·(x − mean)/R)
// acc: scratch of 2*C doubles followed by 3*C floats.
__attribute__((export_name("bn_bwd"))) void bn_bwd(
    const float *dy, const float *x, const float *y, const float *mean, const float *invstd,
    const float *gamma, float *dx, float *dres, float *dgamma, float *dbeta, double *acc, int R, int C) {
  double *s1 = acc, *s2 = acc + C;
  for (int c = 0; c < C; c++) s1[c] = s2[c] = 0.0;
  const int C4 = C & ~3;
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int r = 0; r < R; r++) {
    const u32 o = (u32)r * (u32)C;
    int c = 0;
    for (; c < C4; c += 4) {
      v128_t g = wasm_v128_load(dy + o + c);
      if (y) g = wasm_v128_and(g, wasm_f32x4_gt(wasm_v128_load(y + o + c), zero));
      if (dres) wasm_v128_store(dres + o + c, g);
      const v128_t t = wasm_f32x4_sub(wasm_v128_load(x + o + c), wasm_v128_load(mean + c));
      sum_and_dot4(s1 + c, s2 + c, g, t);
    }
    for (; c < C; c++) {
      float g = dy[o + c];
      if (y && !(y[o + c] > 0.0f)) g = 0.0f;
      if (dres) dres[o + c] = g;
      const float t = x[o + c] - mean[c];
      s1[c] += (double)g;
      s2[c] += (double)g * (double)t;
    }
  }
  // per channel: a = γ·invstd, mg = Σg/R, k = invstd²·Σg(x−mean)/R (floats, in the scratch)
  float *fa = (float *)(acc + 2 * C), *fmg = fa + C, *fk = fa + 2 * C;
  for (int c = 0; c < C; c++) {
    const double sg = s1[c], sgt = s2[c], is = (double)invstd[c];
    dbeta[c] = (float)sg;
    dgamma[c] = (float)(is * sgt);
    fa[c] = (gamma ? gamma[c] : 1.0f) * invstd[c];
    fmg[c] = (float)(sg / (double)R);
    fk[c] = (float)(is * is * sgt / (double)R);
  }
  for (int r = 0; r < R; r++) {
    const u32 o = (u32)r * (u32)C;
    int c = 0;
    for (; c < C4; c += 4) {
      v128_t g;
      if (dres) g = wasm_v128_load(dres + o + c);
      else {
        g = wasm_v128_load(dy + o + c);
        if (y) g = wasm_v128_and(g, wasm_f32x4_gt(wasm_v128_load(y + o + c), zero));
      }
      const v128_t t = wasm_f32x4_sub(wasm_v128_load(x + o + c), wasm_v128_load(mean + c));
      v128_t u = wasm_f32x4_sub(wasm_f32x4_sub(g, wasm_v128_load(fmg + c)), wasm_f32x4_mul(t, wasm_v128_load(fk + c)));
      wasm_v128_store(dx + o + c, wasm_f32x4_mul(u, wasm_v128_load(fa + c)));
    }
    for (; c < C; c++) {
      float g;
      if (dres) g = dres[o + c];
      else {
        g = dy[o + c];
        if (y && !(y[o + c] > 0.0f)) g = 0.0f;
      }
      const float t = x[o + c] - mean[c];
      dx[o + c] = ((g - fmg[c]) - t * fk[c]) * fa[c];
    }
  }
}

// STR soft threshold: out = sign(w)·max(|w| − tau, 0) (−0 for pruned negative w, as
// sign·relu gives).
__attribute__((export_name("str_fwd"))) void str_fwd(const float *w, float *out, int n, float tau) {
  const v128_t t = wasm_f32x4_splat(tau), zero = wasm_f32x4_splat(0.0f);
  const v128_t signbit = wasm_i32x4_splat((int)0x80000000);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(w + i);
    const v128_t a = wasm_f32x4_max(wasm_f32x4_sub(wasm_f32x4_abs(v), t), zero);
    // sign(0) = 0: zero weights stay +0
    const v128_t s = wasm_v128_and(wasm_v128_and(v, signbit), wasm_f32x4_ne(v, zero));
    wasm_v128_store(out + i, wasm_v128_or(a, s));
  }
  for (; i < n; i++) {
    const float v = w[i];
    float a = (v < 0.0f ? -v : v) - tau;
    a = a > 0.0f ? a : 0.0f;
    out[i] = v > 0.0f ? a : v < 0.0f ? -a : 0.0f;
  }
}

// STR soft threshold backward (STR-SPEC §5.1): dw = dy·1[|w| > tau]; returns
// Σ dy·sign(w)·1[|w| > tau] (the threshold's gradient is minus this), summed in float32 lanes over
// blocks of 64 elements and across blocks in float64.
__attribute__((export_name("str_bwd"))) double str_bwd(const float *dy, const float *w, float *dw, int n, float tau) {
  const v128_t t = wasm_f32x4_splat(tau), zero = wasm_f32x4_splat(0.0f);
  const v128_t signbit = wasm_i32x4_splat((int)0x80000000);
  v128_t acc0 = wasm_f64x2_splat(0.0), acc1 = acc0;
  int i = 0;
  while (i + 4 <= n) {
    const int end = n - i < 64 ? i + ((n - i) & ~3) : i + 64;
    v128_t part = zero;
    for (; i < end; i += 4) {
      const v128_t v = wasm_v128_load(w + i);
      const v128_t keep = wasm_f32x4_gt(wasm_f32x4_sub(wasm_f32x4_abs(v), t), zero);
      const v128_t g = wasm_v128_and(wasm_v128_load(dy + i), keep);
      wasm_v128_store(dw + i, g);
      // g·sign(w): flip g's sign where w < 0 (g is 0 where w = 0 since tau >= 0)
      part = wasm_f32x4_add(part, wasm_v128_xor(g, wasm_v128_and(v, signbit)));
    }
    acc0 = wasm_f64x2_add(acc0, wasm_f64x2_promote_low_f32x4(part));
    acc1 = wasm_f64x2_add(acc1, wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(part, part, 2, 3, 0, 1)));
  }
  double s = wasm_f64x2_extract_lane(acc0, 0) + wasm_f64x2_extract_lane(acc0, 1) +
             wasm_f64x2_extract_lane(acc1, 0) + wasm_f64x2_extract_lane(acc1, 1);
  for (; i < n; i++) {
    const float v = w[i];
    const float a = (v < 0.0f ? -v : v) - tau;
    const float g = a > 0.0f ? dy[i] : 0.0f;
    dw[i] = g;
    s += v > 0.0f ? (double)g : v < 0.0f ? -(double)g : 0.0;
  }
  return s;
}

// SGD with momentum, torch 1.x order, every step rounded to float32 as the tf-ops version:
//   d = g + p·wd (wd != 0); buf' = first ? d : buf·mu + d; u = nesterov ? d + buf'·mu : buf'
//   (mu != 0; else u = d); p' = p − u·lr. buf/buf_out unused when mu == 0.
__attribute__((export_name("sgd_update"))) void sgd_update(
    const float *p, const float *g, const float *buf, float *p_out, float *buf_out, int n, float lr,
    float mu, float wd, int nesterov, int first) {
  const v128_t vlr = wasm_f32x4_splat(lr), vmu = wasm_f32x4_splat(mu), vwd = wasm_f32x4_splat(wd);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t d = wasm_v128_load(g + i);
    const v128_t pv = wasm_v128_load(p + i);
    if (wd != 0.0f) d = wasm_f32x4_add(d, wasm_f32x4_mul(pv, vwd));
    v128_t u = d;
    if (mu != 0.0f) {
      const v128_t b = first ? d : wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(buf + i), vmu), d);
      wasm_v128_store(buf_out + i, b);
      u = nesterov ? wasm_f32x4_add(d, wasm_f32x4_mul(b, vmu)) : b;
    }
    wasm_v128_store(p_out + i, wasm_f32x4_sub(pv, wasm_f32x4_mul(u, vlr)));
  }
  for (; i < n; i++) {
    float d = g[i];
    if (wd != 0.0f) d = d + p[i] * wd;
    float u = d;
    if (mu != 0.0f) {
      const float b = first ? d : buf[i] * mu + d;
      buf_out[i] = b;
      u = nesterov ? d + b * mu : b;
    }
    p_out[i] = p[i] - u * lr;
  }
}

// Max-pool gradient, NHWC: each output's dy goes to the first maximum of its window (in row-major
// window order, padding never wins; windows without a number > -inf pass nothing), as tfjs'
// cpu kernel and PyTorch pick it. Vectorised over channels.
__attribute__((export_name("maxpool_grad"))) void maxpool_grad(
    const float *x, const float *dy, float *dx, int N, int H, int W, int C, int OH, int OW, int KH, int KW,
    int SH, int SW, int top, int left) {
  zero_floats(dx, N * H * W * C);
  const v128_t ninf = wasm_f32x4_splat(-__builtin_inff()), none = wasm_i32x4_splat(-1);
  for (int n = 0; n < N; n++) {
    const float *xn = x + (u32)n * (u32)(H * W) * (u32)C;
    float *dxn = dx + (u32)n * (u32)(H * W) * (u32)C;
    for (int oh = 0; oh < OH; oh++) {
      for (int ow = 0; ow < OW; ow++) {
        const float *g = dy + ((u32)(n * OH + oh) * (u32)OW + (u32)ow) * (u32)C;
        int c = 0;
        for (; c + 4 <= C; c += 4) {
          v128_t best = ninf, idx = none;
          for (int kh = 0; kh < KH; kh++) {
            const int ih = oh * SH + kh - top;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) {
              const int iw = ow * SW + kw - left;
              if (iw < 0 || iw >= W) continue;
              const int pos = ih * W + iw;
              const v128_t v = wasm_v128_load(xn + (u32)pos * (u32)C + c);
              const v128_t m = wasm_f32x4_gt(v, best);
              best = wasm_v128_bitselect(v, best, m);
              idx = wasm_v128_bitselect(wasm_i32x4_splat(pos), idx, m);
            }
          }
          const int i0 = wasm_i32x4_extract_lane(idx, 0), i1 = wasm_i32x4_extract_lane(idx, 1);
          const int i2 = wasm_i32x4_extract_lane(idx, 2), i3 = wasm_i32x4_extract_lane(idx, 3);
          if (i0 >= 0) dxn[(u32)i0 * (u32)C + c] += g[c];
          if (i1 >= 0) dxn[(u32)i1 * (u32)C + c + 1] += g[c + 1];
          if (i2 >= 0) dxn[(u32)i2 * (u32)C + c + 2] += g[c + 2];
          if (i3 >= 0) dxn[(u32)i3 * (u32)C + c + 3] += g[c + 3];
        }
        for (; c < C; c++) {
          float best = -__builtin_inff();
          int idx = -1;
          for (int kh = 0; kh < KH; kh++) {
            const int ih = oh * SH + kh - top;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) {
              const int iw = ow * SW + kw - left;
              if (iw < 0 || iw >= W) continue;
              const float v = xn[(u32)(ih * W + iw) * (u32)C + c];
              if (v > best) { best = v; idx = ih * W + iw; }
            }
          }
          if (idx >= 0) dxn[(u32)idx * (u32)C + c] += g[c];
        }
      }
    }
  }
}

// DNW/GMP top-k, by radix selection on the magnitude bits (a non-negative float's bits order like
// its value): the k-th smallest |w| (0-based, k < n) in two histogram passes over the 16 high and
// 16 low bits. hist: 65536 u32 of scratch; on return hist[0] = the k-th value's bits and hist[1] =
// how many |w| are smaller.
__attribute__((export_name("mag_kth"))) void mag_kth(const float *w, int n, int k, u32 *hist) {
  const u32 *b = (const u32 *)w;
  for (int i = 0; i < 65536; i++) hist[i] = 0;
  for (int i = 0; i < n; i++) hist[(b[i] & 0x7fffffffu) >> 16]++;
  u32 below = 0, hb = 0;
  for (;; hb++) {
    if (below + hist[hb] > (u32)k) break;
    below += hist[hb];
  }
  for (int i = 0; i < 65536; i++) hist[i] = 0;
  for (int i = 0; i < n; i++) {
    const u32 m = b[i] & 0x7fffffffu;
    if ((m >> 16) == hb) hist[m & 0xffffu]++;
  }
  u32 lb = 0;
  for (;; lb++) {
    if (below + hist[lb] > (u32)k) break;
    below += hist[lb];
  }
  hist[0] = (hb << 16) | lb;
  hist[1] = below;
}

// mask[i] = 0 where |w[i]| < v (bits), else 1; positions with |w[i]| == v are listed in ties
// (the caller prunes as many of them as it still needs). Returns the number of ties.
__attribute__((export_name("mask_below"))) int mask_below(const float *w, float *mask, int n, u32 v, int *ties) {
  const u32 *b = (const u32 *)w;
  int t = 0;
  for (int i = 0; i < n; i++) {
    const u32 m = b[i] & 0x7fffffffu;
    mask[i] = m < v ? 0.0f : 1.0f;
    if (m == v) ties[t++] = i;
  }
  return t;
}

// ---- Sparse inference convolution (eval only) ----
// out[p][oc] = act(bias[oc] + sum_{j in row oc} w_j * col[p][k_j] (+ res[p][oc])), NHWC, where
// col[p][k] is the im2col entry k = (kh*KW + kw)*C + c of output position p (0 in the padding)
// and row oc lists only the non-zero weights of output channel oc (CSR: rowptr, nz). Eval-mode
// BatchNorm is folded into w and bias by the caller, ReLU is `relu`, the residual `res` (or 0).
//
// Output positions go in tiles of SP_T (flattened over the batch). Each tile's im2col block is
// built transposed, [K][SP_T] (`colT`, per-thread scratch, L2-resident), so one non-zero is a
// broadcast and SP_T/4 contiguous vector loads and multiply-adds, and every output channel of the
// tile reuses the block. Four output channels are accumulated into `acc` and written with 4x4
// transposes (one vector store per output position). Tiles are claimed through the shared
// `counter` (atomic in the threaded build), so any number of threads can run one call.
#define SP_T 16
typedef struct { int off; float w; } sp_nz;

static inline int claim_tile(int *counter) {
  return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

// colT[k][j] for the tile's positions j < cnt (position p0 + j), zero for j >= cnt.
// pix holds 3*SP_T ints of scratch: per position the image row base, ih0 and iw0.
static void sp_pack_tile(const float *x, float *colT, int *pix, int p0, int cnt, int H, int W, int C,
    int OH, int OW, int KH, int KW, int SH, int SW, int top, int left) {
  int *nb = pix, *ih0 = pix + SP_T, *iw0 = pix + 2 * SP_T;
  int n = p0 / (OH * OW), r = p0 - n * OH * OW, oh = r / OW, ow = r - oh * OW;
  for (int j = 0; j < SP_T; j++) {
    if (j < cnt) {
      nb[j] = n * H;
      ih0[j] = oh * SH - top;
      iw0[j] = ow * SW - left;
      if (++ow == OW) { ow = 0; if (++oh == OH) { oh = 0; n++; } }
    } else {
      nb[j] = 0; ih0[j] = -(1 << 28); iw0[j] = 0;  // never inside the image: zeros
    }
  }
  const v128_t z = wasm_f32x4_splat(0.0f);
  const int C4 = C & ~3;
  for (int kh = 0; kh < KH; kh++) {
    for (int kw = 0; kw < KW; kw++) {
      float *rows = colT + (u32)((kh * KW + kw) * C) * SP_T;
      for (int j0 = 0; j0 < SP_T; j0 += 4) {
        const float *s0 = 0, *s1 = 0, *s2 = 0, *s3 = 0;
#define SP_SRC(S, J) { const int ih = ih0[J] + kh, iw = iw0[J] + kw; \
          if (ih >= 0 && ih < H && iw >= 0 && iw < W) S = x + ((u32)(nb[J] + ih) * (u32)W + (u32)iw) * (u32)C; }
        SP_SRC(s0, j0) SP_SRC(s1, j0 + 1) SP_SRC(s2, j0 + 2) SP_SRC(s3, j0 + 3)
#undef SP_SRC
        float *d = rows + j0;
        int c = 0;
        for (; c < C4; c += 4, d += 4 * SP_T) {
          v128_t r0 = s0 ? wasm_v128_load(s0 + c) : z;
          v128_t r1 = s1 ? wasm_v128_load(s1 + c) : z;
          v128_t r2 = s2 ? wasm_v128_load(s2 + c) : z;
          v128_t r3 = s3 ? wasm_v128_load(s3 + c) : z;
          v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5);
          v128_t t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
          v128_t t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
          v128_t t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
          wasm_v128_store(d, wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5));
          wasm_v128_store(d + SP_T, wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7));
          wasm_v128_store(d + 2 * SP_T, wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5));
          wasm_v128_store(d + 3 * SP_T, wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7));
        }
        for (; c < C; c++, d += SP_T) {
          d[0] = s0 ? s0[c] : 0.0f;
          d[1] = s1 ? s1[c] : 0.0f;
          d[2] = s2 ? s2[c] : 0.0f;
          d[3] = s3 ? s3[c] : 0.0f;
        }
      }
    }
  }
}

// The SP_T sums of output channel oc over the packed tile, plus its bias, into acc[0..SP_T).
static inline void sp_row(const float *colT, const int *rowptr, const sp_nz *nz, float b, float *acc, int oc) {
  v128_t a0 = wasm_f32x4_splat(b), a1 = a0, a2 = a0, a3 = a0;
  v128_t e0 = wasm_f32x4_splat(0.0f), e1 = e0, e2 = e0, e3 = e0;
  int j = rowptr[oc];
  const int end = rowptr[oc + 1];
  // two independent accumulator sets: the adds of consecutive non-zeros do not wait on each other
  for (; j + 2 <= end; j += 2) {
    const float *c = colT + nz[j].off, *d = colT + nz[j + 1].off;
    const v128_t w = wasm_f32x4_splat(nz[j].w), v = wasm_f32x4_splat(nz[j + 1].w);
    a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(w, wasm_v128_load(c)));
    a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(w, wasm_v128_load(c + 4)));
    a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(w, wasm_v128_load(c + 8)));
    a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(w, wasm_v128_load(c + 12)));
    e0 = wasm_f32x4_add(e0, wasm_f32x4_mul(v, wasm_v128_load(d)));
    e1 = wasm_f32x4_add(e1, wasm_f32x4_mul(v, wasm_v128_load(d + 4)));
    e2 = wasm_f32x4_add(e2, wasm_f32x4_mul(v, wasm_v128_load(d + 8)));
    e3 = wasm_f32x4_add(e3, wasm_f32x4_mul(v, wasm_v128_load(d + 12)));
  }
  if (j < end) {
    const float *c = colT + nz[j].off;
    const v128_t w = wasm_f32x4_splat(nz[j].w);
    a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(w, wasm_v128_load(c)));
    a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(w, wasm_v128_load(c + 4)));
    a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(w, wasm_v128_load(c + 8)));
    a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(w, wasm_v128_load(c + 12)));
  }
  wasm_v128_store(acc, wasm_f32x4_add(a0, e0));
  wasm_v128_store(acc + 4, wasm_f32x4_add(a1, e1));
  wasm_v128_store(acc + 8, wasm_f32x4_add(a2, e2));
  wasm_v128_store(acc + 12, wasm_f32x4_add(a3, e3));
}

// scratch: (K*SP_T + 4*SP_T) floats followed by 3*SP_T ints, per calling thread.
__attribute__((export_name("sparse_conv"))) void sparse_conv(
    const float *x, int N, int H, int W, int C, int OH, int OW, int KH, int KW, int SH, int SW, int top,
    int left, const int *rowptr, const sp_nz *nz, const float *bias, const float *res, float *out, int CO,
    int relu, int *counter, float *scratch) {
  const int K = KH * KW * C;
  float *colT = scratch, *acc = scratch + (u32)K * SP_T;
  int *pix = (int *)(acc + 4 * SP_T);
  const int P = N * OH * OW;
  const int tiles = (P + SP_T - 1) / SP_T;
  const int CO4 = CO & ~3;
  const v128_t z = wasm_f32x4_splat(0.0f);
  for (int t = claim_tile(counter); t < tiles; t = claim_tile(counter)) {
    const int p0 = t * SP_T;
    const int cnt = P - p0 < SP_T ? P - p0 : SP_T;
    sp_pack_tile(x, colT, pix, p0, cnt, H, W, C, OH, OW, KH, KW, SH, SW, top, left);
    float *o = out + (u32)p0 * (u32)CO;
    const float *rs = res ? res + (u32)p0 * (u32)CO : 0;
    for (int ob = 0; ob < CO4; ob += 4) {
      for (int i = 0; i < 4; i++) sp_row(colT, rowptr, nz, bias[ob + i], acc + i * SP_T, ob + i);
      for (int j0 = 0; j0 < cnt; j0 += 4) {
        const v128_t r0 = wasm_v128_load(acc + j0), r1 = wasm_v128_load(acc + SP_T + j0);
        const v128_t r2 = wasm_v128_load(acc + 2 * SP_T + j0), r3 = wasm_v128_load(acc + 3 * SP_T + j0);
        const v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5);
        const v128_t t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
        const v128_t t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
        const v128_t t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
        v128_t v0 = wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5);
        v128_t v1 = wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7);
        v128_t v2 = wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5);
        v128_t v3 = wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7);
        const int m = cnt - j0;
        float *d = o + (u32)j0 * (u32)CO + ob;
        const float *q = rs ? rs + (u32)j0 * (u32)CO + ob : 0;
        if (q) {
          v0 = wasm_f32x4_add(v0, wasm_v128_load(q));
          if (m > 1) v1 = wasm_f32x4_add(v1, wasm_v128_load(q + CO));
          if (m > 2) v2 = wasm_f32x4_add(v2, wasm_v128_load(q + 2 * CO));
          if (m > 3) v3 = wasm_f32x4_add(v3, wasm_v128_load(q + 3 * CO));
        }
        if (relu) {
          v0 = wasm_f32x4_pmax(z, v0); v1 = wasm_f32x4_pmax(z, v1);  // one instruction each
          v2 = wasm_f32x4_pmax(z, v2); v3 = wasm_f32x4_pmax(z, v3);
        }
        wasm_v128_store(d, v0);
        if (m > 1) wasm_v128_store(d + CO, v1);
        if (m > 2) wasm_v128_store(d + 2 * CO, v2);
        if (m > 3) wasm_v128_store(d + 3 * CO, v3);
      }
    }
    for (int oc = CO4; oc < CO; oc++) {
      sp_row(colT, rowptr, nz, bias[oc], acc, oc);
      for (int j = 0; j < cnt; j++) {
        float v = acc[j];
        if (rs) v += rs[(u32)j * (u32)CO + oc];
        if (relu && v < 0.0f) v = 0.0f;
        o[(u32)j * (u32)CO + oc] = v;
      }
    }
  }
}
