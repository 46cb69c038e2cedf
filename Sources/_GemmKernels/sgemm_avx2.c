// The AVX2 single-precision GEMM of sgemm.h (`sgemm_avx2`, and `sgemm_at_avx2` for a dense layer's weight gradient
// G^T X): op(B) packed in strips of 16 columns, op(A) read in place. The package builds for baseline x86-64: the
// functions marked AVX2 run only on CPUs with AVX2 and FMA3 (`sgemv_avx2_supported()`, the same check).
#include "sgemm.h"
#include "workspace.h"

#include <stddef.h>

#if defined(__x86_64__)
#include "avx2.h"

enum { ROWS = 6, COLUMNS = 16 };

/// The tile `C [rows, 16]` at `c` (only `columns <= 16` of them when `masked`) = alpha * op(A) op(B) + beta * C, with
/// op(A)[i, p] at `a + i * rowStep + p * depthStep` (`i` from the tile's first row of C) and `strip` the tile's 16
/// columns of op(B) packed `[k, 16]`. `rows` and `masked` are constants once inlined: the 12 accumulators live in
/// registers.
AVX2 INLINE void tile(int rows, int masked, const float *a, size_t rowStep, size_t depthStep, const float *strip, int k,
                      float *c, size_t ldc, int columns, float alpha, float beta) {
    __m256 sum[ROWS][2];
    UNROLL for (int i = 0; i < rows; i++) sum[i][0] = sum[i][1] = _mm256_setzero_ps();
    for (int p = 0; p < k; p++) {
        const float *column = a + (size_t)p * depthStep;
        const __m256 v0 = _mm256_load_ps(strip + (size_t)p * COLUMNS), v1 = _mm256_load_ps(strip + (size_t)p * COLUMNS + 8);
        UNROLL for (int i = 0; i < rows; i++) {
            const __m256 x = _mm256_broadcast_ss(column + (size_t)i * rowStep);
            sum[i][0] = _mm256_fmadd_ps(x, v0, sum[i][0]);
            sum[i][1] = _mm256_fmadd_ps(x, v1, sum[i][1]);
        }
    }
    const __m256i low = masked ? lanes_below(columns) : _mm256_set1_epi32(-1);
    const __m256i high = masked ? lanes_below(columns - 8) : _mm256_set1_epi32(-1);
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    UNROLL for (int i = 0; i < rows; i++) {
        float *out = c + (size_t)i * ldc;
        UNROLL for (int h = 0; h < 2; h++) {
            __m256 r = alpha == 1 ? sum[i][h] : _mm256_mul_ps(va, sum[i][h]);
            const __m256i mask = h == 0 ? low : high;
            if (beta != 0) {
                const __m256 old = masked ? _mm256_maskload_ps(out + 8 * h, mask) : _mm256_loadu_ps(out + 8 * h);
                r = beta == 1 ? _mm256_add_ps(r, old) : _mm256_fmadd_ps(vb, old, r);
            }
            if (masked) _mm256_maskstore_ps(out + 8 * h, mask, r);
            else _mm256_storeu_ps(out + 8 * h, r);
        }
    }
}

/// `packed [strips][k][16]` = columns `0 ..< columns` of B's rows `0 ..< k` (at `b + p * ldb`) in strips of 16,
/// the last strip's missing columns zero.
AVX2 static void pack_strips(float *packed, const float *b, size_t ldb, int columns, int k) {
    const int strips = (columns + COLUMNS - 1) / COLUMNS;
    for (int p = 0; p < k; p++) {
        const float *row = b + (size_t)p * ldb;
        for (int s = 0; s < strips; s++) {
            float *out = packed + ((size_t)s * k + p) * COLUMNS;
            const int count = columns - s * COLUMNS;
            if (count >= COLUMNS) {
                _mm256_store_ps(out, _mm256_loadu_ps(row + s * COLUMNS));
                _mm256_store_ps(out + 8, _mm256_loadu_ps(row + s * COLUMNS + 8));
            } else {
                _mm256_store_ps(out, _mm256_maskload_ps(row + s * COLUMNS, lanes_below(count)));
                _mm256_store_ps(out + 8, _mm256_maskload_ps(row + s * COLUMNS + 8, lanes_below(count - 8)));
            }
        }
    }
}

/// Transposes the 8 x 8 floats of `r` in place (row i becomes column i).
AVX2 INLINE void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    UNROLL for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);  // per 128-bit half: a0 b0 a1 b1
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // a2 b2 a3 b3
    }
    UNROLL for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);  // a0 b0 c0 d0
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);  // a1 b1 c1 d1
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);  // a2 b2 c2 d2
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);  // a3 b3 c3 d3
    }
    UNROLL for (int q = 0; q < 4; q++) {
        r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);  // columns 0-3: the low halves of rows 0-3 and 4-7
        r[4 + q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);  // columns 4-7
    }
}

/// `pack_strips` for a transposed B, stored `[columns, ldb]` (op(B)[p, j] = `b[j * ldb + p]`): blocks of 8 x 8 floats
/// transposed in registers, the last strip's missing columns zero.
AVX2 static void pack_strips_transposed(float *packed, const float *b, size_t ldb, int columns, int k) {
    const int strips = (columns + COLUMNS - 1) / COLUMNS;
    for (int s = 0; s < strips; s++) {
        for (int h = 0; h < COLUMNS; h += 8) {
            const int first = s * COLUMNS + h, count = columns - first < 0 ? 0 : columns - first > 8 ? 8 : columns - first;
            for (int p0 = 0; p0 < k; p0 += 8) {
                const int depth = k - p0 < 8 ? k - p0 : 8;
                const __m256i load = lanes_below(depth);
                __m256 r[8];
                UNROLL for (int i = 0; i < 8; i++) {
                    const float *row = b + (size_t)(first + i) * ldb + p0;
                    r[i] = i >= count ? _mm256_setzero_ps() : depth == 8 ? _mm256_loadu_ps(row) : _mm256_maskload_ps(row, load);
                }
                transpose8(r);
                float *out = packed + ((size_t)s * k + p0) * COLUMNS + h;
                UNROLL for (int q = 0; q < 8; q++) {
                    if (q < depth) _mm256_store_ps(out + (size_t)q * COLUMNS, r[q]);
                }
            }
        }
    }
}

/// `tile` with `rows` and `masked` as constants.
AVX2 static void run_tile(int rows, int masked, const float *a, size_t rowStep, size_t depthStep, const float *strip,
                          int k, float *c, size_t ldc, int columns, float alpha, float beta) {
#define SGEMM_AVX2_CASE(R)                                                                           \
    case R:                                                                                          \
        if (masked) tile(R, 1, a, rowStep, depthStep, strip, k, c, ldc, columns, alpha, beta);       \
        else tile(R, 0, a, rowStep, depthStep, strip, k, c, ldc, columns, alpha, beta);              \
        break;
    switch (rows) {
        SGEMM_AVX2_CASE(1) SGEMM_AVX2_CASE(2) SGEMM_AVX2_CASE(3) SGEMM_AVX2_CASE(4) SGEMM_AVX2_CASE(5) SGEMM_AVX2_CASE(6)
        default: break;
    }
#undef SGEMM_AVX2_CASE
}

/// Floats of packed B per block of columns (`k` rows of it): 128 KiB, which stays in the level-2 cache while every
/// block of rows of C reads it.
enum { B_BLOCK_FLOATS = 32 * 1024 };

AVX2 int sgemm_avx2(int transposeA, int transposeB, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc) {
    int blockColumns = B_BLOCK_FLOATS / k / COLUMNS * COLUMNS;
    if (blockColumns < COLUMNS) blockColumns = COLUMNS;
    const int widest = n < blockColumns ? (n + COLUMNS - 1) / COLUMNS * COLUMNS : blockColumns;
    float *packed = gemm_thread_workspace((size_t)widest * k);
    if (!packed) return -1;
    // op(A)[i, p]: A stored [m, lda] (row i, column p) or, transposed, [k, lda] (row p, column i)
    const size_t rowStep = transposeA ? 1 : (size_t)lda, depthStep = transposeA ? (size_t)lda : 1;
    for (int j0 = 0; j0 < n; j0 += blockColumns) {
        const int width = n - j0 < blockColumns ? n - j0 : blockColumns;
        if (transposeB) {
            pack_strips_transposed(packed, b + (size_t)j0 * ldb, (size_t)ldb, width, k);
        } else {
            pack_strips(packed, b + j0, (size_t)ldb, width, k);
        }
        for (int i = 0; i < m; i += ROWS) {
            const int rows = m - i < ROWS ? m - i : ROWS;
            for (int s = 0; s * COLUMNS < width; s++) {
                const int columns = width - s * COLUMNS < COLUMNS ? width - s * COLUMNS : COLUMNS;
                run_tile(rows, columns < COLUMNS, a + (size_t)i * rowStep, rowStep, depthStep,
                         packed + (size_t)s * k * COLUMNS, k, c + (size_t)i * ldc + j0 + s * COLUMNS, (size_t)ldc, columns,
                         alpha, beta);
            }
        }
    }
    return 0;
}

AVX2 int sgemm_at_avx2(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                       float *c, int ldc) {
    return sgemm_avx2(1, 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
#else
int sgemm_avx2(int transposeA, int transposeB, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc) {
    (void)transposeA; (void)transposeB; (void)m; (void)n; (void)k; (void)alpha; (void)a; (void)lda; (void)b;
    (void)ldb; (void)beta; (void)c; (void)ldc;
    return -1;
}

int sgemm_at_avx2(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                  float *c, int ldc) {
    return sgemm_avx2(1, 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
#endif
