#ifndef SGEMV_H
#define SGEMV_H

/// One row times a matrix stored by rows (a single image through a dense layer), AVX-512 or AVX2:
///
///     c[j] = alpha * (b[j * ldb + 0 ..< k] . a[0 ..< k]) + beta * c[j],   j = 0 ..< n
///
/// `b` is the matrix `[n, k]` (leading dimension `ldb >= k`), `a` the row (contiguous), `c` contiguous.
/// Each dot product is 16 partial sums, lane `l` summing `b[j, p] * a[p]` for `p = l, l + 16, ...` in
/// order with fused multiply-adds from +0 (the last partial vector masked), then added across the lanes
/// in a fixed order (the two halves, then the quarters, then pairs; AVX2 holds the 16 partial sums in two
/// registers and adds them so); `alpha` multiplies unless it is 1, and `beta * c[j]` is added unless beta is 0
/// (then `c` is not read). So `c[j]` depends only on row j, `a`, alpha, beta and its old value: not on n
/// or on how a caller splits the rows (across threads, say).
///
/// Four rows are read at a time: from the L3 cache (the usual place of a dense layer's weights between
/// two images) that streams the matrix about 1.8 times as fast as OpenBLAS 0.3.21's `sgemv` did here.
/// Call only when `sgemm_avx512_supported()` returns 1; `n >= 0`, `k >= 1`.
void sgemv_rows_avx512(int n, int k, float alpha, const float *b, int ldb, const float *a, float beta, float *c);

/// 1 when the CPU runs `sgemv_rows_avx2` (AVX2 and FMA3), else 0.
int sgemv_avx2_supported(void);

/// `sgemv_rows_avx512` on AVX2 + FMA3, the same partial sums. On a 2-core Zen 3 it is only a little faster than
/// OpenBLAS 0.3.21's `sgemv` (the nine dense layers of one image: 73-76 against 77-80 us; both read the weights
/// from the L3 cache at about the same rate). Call only when `sgemv_avx2_supported()` returns 1; `n >= 0`, `k >= 1`.
void sgemv_rows_avx2(int n, int k, float alpha, const float *b, int ldb, const float *a, float beta, float *c);

#endif
