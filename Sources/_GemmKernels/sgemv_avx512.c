// The AVX-512 matrix-vector product of sgemv.h. The package builds for baseline x86-64: this file's
// functions are marked AVX512 and run only after `sgemm_avx512_supported()` said yes.
#include "sgemv.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("clang loop unroll(full)")

enum { ROWS = 4 };

/// `c[j]` from the 16 partial sums of its dot product, as sgemv.h says.
AVX512 INLINE void finish(float *c, __m512 partial, float alpha, float beta) {
    float sum = _mm512_reduce_add_ps(partial);
    if (alpha != 1) sum *= alpha;
    if (beta == 1) {
        sum += *c;
    } else if (beta != 0) {
        sum += beta * *c;
    }
    *c = sum;
}

/// Rows `b[0 ..< count]` (`count` <= ROWS, a constant after inlining) dotted with `a`: each row its own
/// accumulator, the same FMAs in the same order whatever `count` is.
AVX512 INLINE void rows(int count, int k, float alpha, const float *b, int ldb, const float *a, float beta, float *c) {
    __m512 sum[ROWS];
    UNROLL for (int r = 0; r < ROWS; r++) sum[r] = _mm512_setzero_ps();
    int p = 0;
    for (; p + 16 <= k; p += 16) {
        const __m512 x = _mm512_loadu_ps(a + p);
        UNROLL for (int r = 0; r < ROWS; r++) {
            if (r < count) sum[r] = _mm512_fmadd_ps(_mm512_loadu_ps(b + (size_t)r * ldb + p), x, sum[r]);
        }
    }
    if (p < k) {
        const __mmask16 tail = (__mmask16)((1u << (k - p)) - 1u);
        const __m512 x = _mm512_maskz_loadu_ps(tail, a + p);
        UNROLL for (int r = 0; r < ROWS; r++) {
            if (r < count) sum[r] = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(tail, b + (size_t)r * ldb + p), x, sum[r], tail);
        }
    }
    UNROLL for (int r = 0; r < ROWS; r++) {
        if (r < count) finish(c + r, sum[r], alpha, beta);
    }
}

AVX512 void sgemv_rows_avx512(int n, int k, float alpha, const float *b, int ldb, const float *a, float beta, float *c) {
    int j = 0;
    for (; j + ROWS <= n; j += ROWS) rows(ROWS, k, alpha, b + (size_t)j * ldb, ldb, a, beta, c + j);
    for (; j < n; j++) rows(1, k, alpha, b + (size_t)j * ldb, ldb, a, beta, c + j);
}

#else

void sgemv_rows_avx512(int n, int k, float alpha, const float *b, int ldb, const float *a, float beta, float *c) {
    (void)n, (void)k, (void)alpha, (void)b, (void)ldb, (void)a, (void)beta, (void)c;
}

#endif
