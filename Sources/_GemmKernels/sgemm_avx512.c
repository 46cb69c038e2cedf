// The AVX-512 single-precision GEMM of sgemm.h: packing of op(A) into panels and op(B) into strips,
// the 14 x 32 register-tiled micro-kernel, and the loops over blocks. The package builds for baseline
// x86-64: the functions marked AVX512 run only after `sgemm_avx512_supported()` said yes.
#include "sgemm.h"
#include "workspace.h"

#if defined(__x86_64__)
#include <immintrin.h>

enum { MR = SGEMM_PANEL_ROWS, NR = SGEMM_STRIP_COLUMNS };

/// Floats of packed op(A) per block of rows (512 KiB): with a strip of at most 256 KiB, both stay in
/// the level-2 cache of a core (1 MiB on Zen 4/5, 1-2 MiB on Intel's AVX-512 cores).
enum { PANEL_BLOCK_FLOATS = 128 * 1024 };

#define AVX512 __attribute__((target("avx512f")))
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("clang loop unroll(full)")

int sgemm_avx512_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
}

/// Transposes the 16 x 16 floats of `r` in place (row i becomes column i).
AVX512 INLINE void transpose16(__m512 r[16]) {
    __m512 t[16];
    UNROLL for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);  // per 128-bit lane: a0 b0 a1 b1
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);  // a2 b2 a3 b3
    }
    UNROLL for (int i = 0; i < 16; i += 4) {
        const __m512d t0 = _mm512_castps_pd(t[i]), t1 = _mm512_castps_pd(t[i + 1]);
        const __m512d t2 = _mm512_castps_pd(t[i + 2]), t3 = _mm512_castps_pd(t[i + 3]);
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));  // per lane: a0 b0 c0 d0
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));  // a1 b1 c1 d1
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));  // a2 b2 c2 d2
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));  // a3 b3 c3 d3
    }
    // r[4g + q] holds, in lane l, elements 4l + q of rows 4g .. 4g + 3
    UNROLL for (int q = 0; q < 4; q++) {
        t[q] = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88);  // lanes 0, 2 of rows 0-3, then of rows 4-7
        t[4 + q] = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xdd);  // lanes 1, 3
        t[8 + q] = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88);
        t[12 + q] = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xdd);
    }
    UNROLL for (int q = 0; q < 4; q++) {
        r[q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0x88);  // column q
        r[4 + q] = _mm512_shuffle_f32x4(t[4 + q], t[12 + q], 0x88);  // column 4 + q
        r[8 + q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0xdd);  // column 8 + q
        r[12 + q] = _mm512_shuffle_f32x4(t[4 + q], t[12 + q], 0xdd);  // column 12 + q
    }
}

/// Lanes `0 ..< count` (0 <= count <= 16).
INLINE __mmask16 lanes(int count) { return (__mmask16)((1u << count) - 1u); }

/// `dst [k, width]` (lanes `0 ..< rows` of each row; the other lanes of a 16-wide row zero) = the transpose
/// of `rows <= 16` rows of `src` (row r at `src + r * ld`, k floats each): 16 x 16 blocks transposed in
/// registers. Only lanes `0 ..< stored` of each destination row are written (`stored <= width`).
AVX512 static void pack_transposed(float *dst, int width, int stored, const float *src, size_t ld, int rows, int k) {
    const __mmask16 storeMask = lanes(stored);
    for (int p0 = 0; p0 < k; p0 += 16) {
        const int depth = k - p0 < 16 ? k - p0 : 16;
        const __mmask16 loadMask = lanes(depth);
        __m512 r[16];
        UNROLL for (int i = 0; i < 16; i++) {
            r[i] = i < rows ? _mm512_maskz_loadu_ps(loadMask, src + (size_t)i * ld + p0) : _mm512_setzero_ps();
        }
        transpose16(r);
        UNROLL for (int q = 0; q < 16; q++) {
            if (q < depth) _mm512_mask_storeu_ps(dst + (size_t)(p0 + q) * width, storeMask, r[q]);
        }
    }
}

/// `dst [k, width]` = lanes `0 ..< count` of each row `p` of `src` (at `src + p * ld`), the rest of
/// `stored` lanes zero (`count <= stored <= 16`).
AVX512 static void pack_rows(float *dst, int width, int stored, const float *src, size_t ld, int count, int k) {
    const __mmask16 loadMask = lanes(count), storeMask = lanes(stored);
    for (int p = 0; p < k; p++) {
        _mm512_mask_storeu_ps(dst + (size_t)p * width, storeMask, _mm512_maskz_loadu_ps(loadMask, src + (size_t)p * ld));
    }
}

/// Packs rows `i0 ..< i0 + rows` (rows <= MR) of op(A) into the panel `dst [k, MR]` (missing rows zero).
AVX512 static void pack_panel(float *dst, int transposeA, const float *a, int lda, int i0, int rows, int k) {
    if (transposeA) {
        pack_rows(dst, MR, MR, a + i0, (size_t)lda, rows, k);  // A [k, lda]: row p holds op(A)[i0 ..., p]
    } else {
        pack_transposed(dst, MR, MR, a + (size_t)i0 * lda, (size_t)lda, rows, k);
    }
}

/// Packs columns `j0 ..< j0 + columns` (columns <= NR) of op(B) into the strip `dst [k, NR]` (missing
/// columns zero).
AVX512 static void pack_strip(float *dst, int transposeB, const float *b, int ldb, int j0, int columns, int k) {
    for (int h = 0; h < NR; h += 16) {
        const int count = columns - h < 0 ? 0 : (columns - h > 16 ? 16 : columns - h);
        if (transposeB) {
            pack_transposed(dst + h, NR, 16, b + (size_t)(j0 + h) * ldb, (size_t)ldb, count, k);
        } else {
            pack_rows(dst + h, NR, 16, b + j0 + h, (size_t)ldb, count, k);
        }
    }
}

/// The micro-kernel: C tile `[rows, columns]` at `c` = alpha * panel^T * strip + beta * C, the panel
/// `[k, MR]`, the strip `[k, NR]`; `rows` and `halves` (1: columns <= 16, else 2) are constants once
/// inlined, so the accumulators `sum[rows][halves]` live in zmm registers.
AVX512 INLINE void tile(int rows, int halves, const float *panel, const float *strip, int k, float *c, int ldc,
                        int columns, float alpha, float beta) {
    __m512 sum[MR][2];
    UNROLL for (int i = 0; i < rows; i++) {
        UNROLL for (int h = 0; h < halves; h++) sum[i][h] = _mm512_setzero_ps();
    }
    for (int p = 0; p < k; p++) {
        const float *b = strip + (size_t)p * NR, *a = panel + (size_t)p * MR;
        __m512 v[2];
        UNROLL for (int h = 0; h < halves; h++) v[h] = _mm512_load_ps(b + 16 * h);
        UNROLL for (int i = 0; i < rows; i++) {
            const __m512 x = _mm512_set1_ps(a[i]);
            UNROLL for (int h = 0; h < halves; h++) sum[i][h] = _mm512_fmadd_ps(x, v[h], sum[i][h]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    UNROLL for (int h = 0; h < halves; h++) {
        const int count = columns - 16 * h > 16 ? 16 : columns - 16 * h;
        const __mmask16 mask = lanes(count);
        UNROLL for (int i = 0; i < rows; i++) {
            float *row = c + (size_t)i * ldc + 16 * h;
            __m512 r = alpha == 1 ? sum[i][h] : _mm512_mul_ps(va, sum[i][h]);
            if (beta != 0) {
                const __m512 old = _mm512_maskz_loadu_ps(mask, row);
                r = beta == 1 ? _mm512_add_ps(r, old) : _mm512_fmadd_ps(vb, old, r);
            }
            _mm512_mask_storeu_ps(row, mask, r);
        }
    }
}

/// `tile` with `rows` and the halves of `columns` as constants.
AVX512 static void run_tile(int rows, const float *panel, const float *strip, int k, float *c, int ldc, int columns,
                            float alpha, float beta) {
#define SGEMM_TILE_CASE(R)                                                                \
    case R:                                                                               \
        if (columns > 16) tile(R, 2, panel, strip, k, c, ldc, columns, alpha, beta);      \
        else tile(R, 1, panel, strip, k, c, ldc, columns, alpha, beta);                   \
        break;
    switch (rows) {
        SGEMM_TILE_CASE(1) SGEMM_TILE_CASE(2) SGEMM_TILE_CASE(3) SGEMM_TILE_CASE(4) SGEMM_TILE_CASE(5)
        SGEMM_TILE_CASE(6) SGEMM_TILE_CASE(7) SGEMM_TILE_CASE(8) SGEMM_TILE_CASE(9) SGEMM_TILE_CASE(10)
        SGEMM_TILE_CASE(11) SGEMM_TILE_CASE(12) SGEMM_TILE_CASE(13) SGEMM_TILE_CASE(14)
        default: break;
    }
#undef SGEMM_TILE_CASE
}

AVX512 int sgemm_avx512(int transposeA, int transposeB, int m, int n, int k, float alpha, const float *a, int lda,
                        const float *b, int ldb, float beta, float *c, int ldc) {
    // rows of op(A) per block: whole panels whose packed floats fit PANEL_BLOCK_FLOATS (at least one panel)
    int blockRows = PANEL_BLOCK_FLOATS / (k * MR) * MR;
    if (blockRows < MR) blockRows = MR;
    const int rowsPadded = (m + MR - 1) / MR * MR;
    if (blockRows > rowsPadded) blockRows = rowsPadded;
    // the strip first (NR * k floats: a multiple of 64 bytes, so its rows stay aligned), then the panels
    float *strip = gemm_thread_workspace((size_t)NR * k + (size_t)blockRows * k);
    if (!strip) return -1;
    float *panels = strip + (size_t)NR * k;
    for (int i0 = 0; i0 < m; i0 += blockRows) {
        const int blockEnd = m - i0 < blockRows ? m : i0 + blockRows;
        for (int i = i0; i < blockEnd; i += MR) {
            pack_panel(panels + (size_t)(i - i0) * k, transposeA, a, lda, i, blockEnd - i < MR ? blockEnd - i : MR, k);
        }
        for (int j0 = 0; j0 < n; j0 += NR) {
            const int columns = n - j0 < NR ? n - j0 : NR;
            pack_strip(strip, transposeB, b, ldb, j0, columns, k);
            for (int i = i0; i < blockEnd; i += MR) {
                run_tile(blockEnd - i < MR ? blockEnd - i : MR, panels + (size_t)(i - i0) * k, strip, k,
                         c + (size_t)i * ldc + j0, ldc, columns, alpha, beta);
            }
        }
    }
    return 0;
}
#else
int sgemm_avx512_supported(void) { return 0; }
int sgemm_avx512(int transposeA, int transposeB, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc) {
    (void)transposeA; (void)transposeB; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda;
    (void)b; (void)ldb; (void)beta; (void)c; (void)ldc;
    return -1;
}
#endif
