#ifndef SGEMM_H
#define SGEMM_H

/// Single-precision matrix product with an AVX-512 micro-kernel, row-major like `cblas_sgemm`:
///
///     C [m, n] = alpha * op(A) [m, k] * op(B) [k, n] + beta * C
///
/// `op(A)` is `A` stored `[m, lda]` or, with `transposeA`, `A^T` of an `A` stored `[k, lda]`; `op(B)`
/// likewise `[k, ldb]` or, with `transposeB`, `[n, ldb]`. `beta == 0` overwrites `C` without reading it.
///
/// Each element of C is one accumulator that sums `op(A)[i, p] * op(B)[p, j]` for p = 0, 1, ..., k - 1
/// with fused multiply-adds, then becomes `alpha * sum + beta * C` (the product by `alpha` skipped
/// when it is 1, the term `beta * C` skipped when beta is 0 and added without product when it is 1).
/// So an element's value depends only on its row of op(A), its column of op(B), alpha, beta and its
/// old value: not on m, n, the tile it falls in, or how a caller splits C into blocks of rows or
/// columns (across threads, say).
///
/// op(A) is packed in panels of `SGEMM_PANEL_ROWS` rows (`[k, 14]`), op(B) in strips of
/// `SGEMM_STRIP_COLUMNS` columns (`[k, 32]`); the micro-kernel keeps a 14 x 32 tile of C in 28 zmm
/// registers and per p loads two vectors of the strip and broadcasts 14 floats of the panel
/// (28 FMAs). The depth is not blocked, so `k` is at most `SGEMM_MAX_DEPTH`: a strip, at most
/// 256 KiB, then stays in the level-2 cache (on Zen 5, k = 1600 ran at the speed of k = 128). Rows
/// are blocked so that the packed panels fit there too. The packing buffers are per thread,
/// allocated on first use, kept while the thread lives and freed when it exits (at most 0.75 MiB each).
///
/// The package builds for baseline x86-64: only the functions marked `target("avx512f")` use
/// AVX-512, and `sgemm_avx512` must only be called when `sgemm_avx512_supported()` returns 1.

/// Rows of op(A) per packed panel, columns of op(B) per packed strip: the register tile of C.
#define SGEMM_PANEL_ROWS 14
#define SGEMM_STRIP_COLUMNS 32

/// The largest `k` that `sgemm_avx512` takes.
#define SGEMM_MAX_DEPTH 2048

/// 1 when this CPU runs the AVX-512 kernel (AVX-512F), else 0.
int sgemm_avx512_supported(void);

/// `C = alpha * op(A) * op(B) + beta * C` as described above; `m, n >= 1`, `1 <= k <= SGEMM_MAX_DEPTH`.
/// Returns 0, or -1 when the packing buffers could not be allocated (C is then unchanged).
int sgemm_avx512(int transposeA, int transposeB, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);

/// The largest `k` that `sgemm_at_avx2` takes.
#define SGEMM_AT_MAX_DEPTH 128

/// `C [m, n] = alpha * A^T * B + beta * C` on AVX2 + FMA3: `sgemm_avx2` below with A transposed (A stored `[k, lda]`,
/// op(A)[i, p] = `a[p * lda + i]`; B stored `[k, ldb]`), for a dense layer's weight gradient G^T X over a group of
/// examples, whose depth is the group's size: on deeper products OpenBLAS's packing paid for itself. The rule and
/// the bits of `sgemm_avx512`. `m, n >= 1`, `1 <= k <= SGEMM_AT_MAX_DEPTH`; returns as `sgemm_avx2`.
int sgemm_at_avx2(int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                   float *c, int ldc);

/// `C = alpha * op(A) * op(B) + beta * C` on AVX2 + FMA3, every transpose, as `sgemm_avx512` above: each element of C
/// follows its rule (one accumulator, fused multiply-adds for p = 0, 1, ..., k - 1 from +0, then alpha and beta alike),
/// so it has the same bits as there and does not depend on m, n or how a caller splits C. op(B) is packed in strips
/// of 16 columns (`[k, 16]`: rows copied, or, transposed, 8 x 8 blocks transposed in registers), a block of columns of
/// at most 128 KiB at a time, in the packing buffer of `sgemm_avx512`; op(A) is read in place (per p, six broadcasts
/// of its rows' floats and two vectors of the strip feed 12 FMAs on a 6 x 16 tile of C in 12 ymm registers), and C is
/// written once (beta 0: not read). `m, n >= 1`, `1 <= k <= SGEMM_MAX_DEPTH`; call only on a CPU with AVX2 and FMA3
/// (`sgemv_avx2_supported()` in sgemv.h returns 1). Returns 0, or -1 when the packing buffer could not be allocated
/// (C is then unchanged).
int sgemm_avx2(int transposeA, int transposeB, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);

#endif
