#ifndef VECTOR_KERNELS_H
#define VECTOR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Element-wise kernels that the compiler cannot vectorise for baseline x86-64 (the package's
/// target): conversions between floats and 64-bit integers, square roots. Each has an AVX-512
/// (F + DQ) body and, but for `fixed_point_to_float`, an AVX2 body, chosen at run time, and a portable
/// loop; all perform the same IEEE operations in the same order on every value (no contraction into
/// FMAs), or exact integer operations with the same results, so they give the same bits (tested).

/// Whether the AVX-512 bodies run on this CPU (AVX-512F and DQ), whatever `vector_kernels_limit` says.
int vector_kernels_has_avx512(void);

/// Whether the AVX2 bodies run on this CPU (AVX2 and FMA3), whatever `vector_kernels_limit` says.
int vector_kernels_has_avx2(void);

/// The levels of `vector_kernels_limit`.
enum { VECTOR_KERNELS_PORTABLE = 0, VECTOR_KERNELS_AVX2 = 1, VECTOR_KERNELS_BEST = 2 };

/// The highest body the kernels may run (for tests that compare them): `VECTOR_KERNELS_PORTABLE`, the
/// portable loops even on a CPU with more; `VECTOR_KERNELS_AVX2`, AVX2 bodies at most; `VECTOR_KERNELS_BEST`
/// (the default), the best the CPU has. Not to be changed while kernels run.
void vector_kernels_limit(int level);

// MARK: the exact gradient sum

/// The three passes of `ExactGradientSum` (Distributed) over float gradients and their 64-bit
/// fixed-point sums (AVX-512 DQ converts 8 lanes between floats or doubles and 64-bit integers; AVX2 has no such
/// conversion and `fixed_point_accumulate` splits each product at 2^40 into two integers that doubles
/// convert exactly; the portable loops convert one value at a time).

/// The largest bit pattern of `values` without their sign bits: the bit pattern of the largest
/// magnitude when every value is finite (IEEE order of non-negative floats is the order of their
/// bits), at least that of +infinity when a value is NaN or infinite.
uint32_t fixed_point_largest_bits(const float *values, size_t count);

/// `sums[i] += (int64_t)((double)values[i] * factor)` (the product truncated toward zero) for
/// `i < count`. The caller guarantees that every product is below 2^63 in magnitude.
void fixed_point_accumulate(int64_t *sums, const float *values, size_t count, double factor);

/// `output[i] = (float)((double)(float)sums[i] * unscale)` (the integer rounded to the nearest
/// float, then scaled) for `i < count`.
void fixed_point_to_float(float *output, const int64_t *sums, size_t count, double unscale);

/// `sums[i] = ` the sum over `g < groups` of `(int64_t)((double)values[g][i] * factor)` for `i < count`:
/// `fixed_point_accumulate` of every group onto zeros, done in blocks that stay in the level-1 cache (one
/// pass over the sums instead of one per group). Integer sums are exact: the order of the groups does not
/// matter. With no groups the sums are zeros.
void fixed_point_sum(int64_t *sums, const float *const *values, size_t groups, size_t count, double factor);

/// `fixed_point_to_float` of `fixed_point_sum` without the array of sums (one process: no integer
/// all-reduce between the two): the same values, bit for bit.
void fixed_point_sum_to_float(float *output, const float *const *values, size_t groups, size_t count, double factor,
                              double unscale);


// MARK: Adam

/// Adam's update of `count` values: `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g g`,
/// `p = p - stepSize m / (sqrt(v / correction2) + epsilon)`, evaluated left to right in float.
void adam_update(
    float *m, float *v, float *p, const float *g, size_t count, float beta1, float beta2, float epsilon, float stepSize,
    float correction2);

#endif
