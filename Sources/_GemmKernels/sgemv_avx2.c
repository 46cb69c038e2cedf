// The AVX2 matrix-vector product of sgemv.h. The package builds for baseline x86-64: this file's functions
// are marked AVX2 and run only after `sgemv_avx2_supported()` said yes.
#include "sgemv.h"

#if defined(__x86_64__)
#include "avx2.h"

int sgemv_avx2_supported(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

enum { ROWS = 4 };

/// `c[j]` from the 16 partial sums of its dot product (lanes 0-7 in `low`, 8-15 in `high`): the halves added,
/// then the quarters, then pairs, as sgemv.h says.
AVX2 INLINE void finish(float *c, __m256 low, __m256 high, float alpha, float beta) {
    const __m256 eight = _mm256_add_ps(low, high);
    const __m128 four = _mm_add_ps(_mm256_castps256_ps128(eight), _mm256_extractf128_ps(eight, 1));
    const __m128 two = _mm_add_ps(four, _mm_movehl_ps(four, four));
    float sum = _mm_cvtss_f32(_mm_add_ss(two, _mm_movehdup_ps(two)));
    if (alpha != 1) sum *= alpha;
    if (beta == 1) {
        sum += *c;
    } else if (beta != 0) {
        sum += beta * *c;
    }
    *c = sum;
}

/// Rows `b[0 ..< count]` (`count` <= ROWS, a constant after inlining) dotted with `a`: each row two accumulators
/// (the 16 partial sums), the same FMAs in the same order whatever `count` is.
AVX2 INLINE void rows(int count, int k, float alpha, const float *b, int ldb, const float *a, float beta, float *c) {
    __m256 low[ROWS], high[ROWS];
    UNROLL for (int r = 0; r < ROWS; r++) low[r] = high[r] = _mm256_setzero_ps();
    int p = 0;
    for (; p + 16 <= k; p += 16) {
        const __m256 x0 = _mm256_loadu_ps(a + p), x1 = _mm256_loadu_ps(a + p + 8);
        UNROLL for (int r = 0; r < ROWS; r++) {
            if (r < count) {
                const float *row = b + (size_t)r * ldb + p;
                low[r] = _mm256_fmadd_ps(_mm256_loadu_ps(row), x0, low[r]);
                high[r] = _mm256_fmadd_ps(_mm256_loadu_ps(row + 8), x1, high[r]);
            }
        }
    }
    if (p < k) {
        // the last partial vector, masked: lanes past k keep their sums (as the AVX-512 kernel's masked FMA)
        const __m256i m0 = lanes_below(k - p), m1 = lanes_below(k - p - 8);
        const __m256 x0 = _mm256_maskload_ps(a + p, m0), x1 = _mm256_maskload_ps(a + p + 8, m1);
        UNROLL for (int r = 0; r < ROWS; r++) {
            if (r < count) {
                const float *row = b + (size_t)r * ldb + p;
                const __m256 f0 = _mm256_fmadd_ps(_mm256_maskload_ps(row, m0), x0, low[r]);
                const __m256 f1 = _mm256_fmadd_ps(_mm256_maskload_ps(row + 8, m1), x1, high[r]);
                low[r] = _mm256_blendv_ps(low[r], f0, _mm256_castsi256_ps(m0));
                high[r] = _mm256_blendv_ps(high[r], f1, _mm256_castsi256_ps(m1));
            }
        }
    }
    UNROLL for (int r = 0; r < ROWS; r++) {
        if (r < count) finish(c + r, low[r], high[r], alpha, beta);
    }
}

AVX2 void sgemv_rows_avx2(int n, int k, float alpha, const float *b, int ldb, const float *a, float beta, float *c) {
    int j = 0;
    for (; j + ROWS <= n; j += ROWS) rows(ROWS, k, alpha, b + (size_t)j * ldb, ldb, a, beta, c + j);
    for (; j < n; j++) rows(1, k, alpha, b + (size_t)j * ldb, ldb, a, beta, c + j);
}

#else

int sgemv_avx2_supported(void) { return 0; }

void sgemv_rows_avx2(int n, int k, float alpha, const float *b, int ldb, const float *a, float beta, float *c) {
    (void)n, (void)k, (void)alpha, (void)b, (void)ldb, (void)a, (void)beta, (void)c;
}

#endif
