// Fixed-point passes of the exact gradient sum; see include/vector_kernels.h.
#include "dispatch.h"

static uint32_t largest_bits_portable(const float *values, size_t count) {
    const uint32_t *bits = (const uint32_t *)(const void *)values;
    uint32_t largest = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t magnitude = bits[i] & 0x7FFFFFFFu;
        largest = magnitude > largest ? magnitude : largest;
    }
    return largest;
}

static void accumulate_portable(int64_t *sums, const float *values, size_t count, double factor) {
    for (size_t i = 0; i < count; i++) sums[i] += (int64_t)((double)values[i] * factor);
}

static void to_float_portable(float *output, const int64_t *sums, size_t count, double unscale) {
    for (size_t i = 0; i < count; i++) output[i] = (float)((double)(float)sums[i] * unscale);
}

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

__attribute__((target("avx512f,avx512dq")))
static uint32_t largest_bits_avx512(const float *values, size_t count) {
    const __m512i mask = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i largest = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 16 <= count; i += 16)
        largest = _mm512_max_epu32(largest, _mm512_and_si512(_mm512_loadu_si512(values + i), mask));
    uint32_t result = _mm512_reduce_max_epu32(largest), rest = largest_bits_portable(values + i, count - i);
    return rest > result ? rest : result;
}

/// `factor` as a float when it is a power of two that floats hold as normal numbers, else 0. Scaling a float by such
/// a power is exact in float as in double, but for results below float's normal range (below 1 in magnitude, which
/// truncate to 0 either way) and above its largest value (which convert to the same "integer indefinite" either way).
static float float_power_of_two(double factor) {
    uint64_t bits;
    memcpy(&bits, &factor, sizeof bits);
    const int exponent = (int)((bits >> 52) & 0x7FF) - 1023;  // sign 0 and fraction 0: a power of two
    return (bits & ~(0x7FFull << 52)) == 0 && exponent >= -126 && exponent <= 127 ? (float)factor : 0.0f;
}

// Same values as the portable loop: float -> double (exact), times a power of two (exact in range), truncation
// toward zero (vcvttpd2qq, as the C cast), 64-bit integer addition. With a power of two that floats hold (every
// scale of the exact sum but for all-tiny or all-huge gradients) the product is taken in float and truncated
// straight to 64 bits (vcvttps2qq): the same integers without the widening to doubles.
__attribute__((target("avx512f,avx512dq")))
static void accumulate_avx512(int64_t *sums, const float *values, size_t count, double factor) {
    size_t i = 0;
    const float single = float_power_of_two(factor);
    if (single != 0) {
        const __m256 scale = _mm256_set1_ps(single);
        for (; i + 8 <= count; i += 8) {
            const __m512i wide = _mm512_cvttps_epi64(_mm256_mul_ps(_mm256_loadu_ps(values + i), scale));
            _mm512_storeu_si512(sums + i, _mm512_add_epi64(_mm512_loadu_si512(sums + i), wide));
        }
    } else {
        const __m512d scale = _mm512_set1_pd(factor);
        for (; i + 8 <= count; i += 8) {
            __m512d wide = _mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(values + i)), scale);
            __m512i sum = _mm512_add_epi64(_mm512_loadu_si512(sums + i), _mm512_cvttpd_epi64(wide));
            _mm512_storeu_si512(sums + i, sum);
        }
    }
    accumulate_portable(sums + i, values + i, count - i, factor);
}

// vcvtqq2ps rounds to nearest under the default MXCSR, as the C conversion does. Scaling by a power of two that floats
// hold is exact in float as in double (a nonzero sum is at least 1 in magnitude, so its result at least 2^-126, a
// normal float), or overflows to the same infinity.
__attribute__((target("avx512f,avx512dq")))
static void to_float_avx512(float *output, const int64_t *sums, size_t count, double unscale) {
    size_t i = 0;
    const float single = float_power_of_two(unscale);
    if (single != 0) {
        const __m256 scale = _mm256_set1_ps(single);
        for (; i + 8 <= count; i += 8) {
            _mm256_storeu_ps(output + i, _mm256_mul_ps(_mm512_cvtepi64_ps(_mm512_loadu_si512(sums + i)), scale));
        }
    } else {
        const __m512d scale = _mm512_set1_pd(unscale);
        for (; i + 8 <= count; i += 8) {
            __m256 rounded = _mm512_cvtepi64_ps(_mm512_loadu_si512(sums + i));
            _mm256_storeu_ps(output + i, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(rounded), scale)));
        }
    }
    to_float_portable(output + i, sums + i, count - i, unscale);
}

__attribute__((target("avx2")))
static uint32_t largest_bits_avx2(const float *values, size_t count) {
    const __m256i mask = _mm256_set1_epi32(0x7FFFFFFF);
    __m256i largest = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        largest = _mm256_max_epu32(largest, _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(values + i)), mask));
    uint32_t lanes[8], result = largest_bits_portable(values + i, count - i);
    _mm256_storeu_si256((__m256i *)lanes, largest);
    for (int k = 0; k < 8; k++) result = lanes[k] > result ? lanes[k] : result;
    return result;
}

// The portable loop's values without a double -> int64 conversion (AVX2 has none): d = (double)x * factor, the
// same rounded product; its truncation toward zero is split at 2^40 into high = trunc(d * 2^-40) (exact: a power
// of two) and low = trunc(d - high * 2^40) (the difference is d's bits below 2^40, exact), both integers below
// 2^51 in magnitude given |d| < 2^63, which become int64 by the magic-number trick (adding 1.5 * 2^52 puts an
// integer in the low bits of the significand); the value is high * 2^40 + low.
__attribute__((target("avx2,fma")))
static void accumulate_avx2(int64_t *sums, const float *values, size_t count, double factor) {
    const __m256d scale = _mm256_set1_pd(factor), down = _mm256_set1_pd(0x1p-40), up = _mm256_set1_pd(0x1p40);
    const __m256d magic = _mm256_set1_pd(0x1.8p52);
    const __m256i magicBits = _mm256_castpd_si256(magic);
    size_t i = 0;
    for (; i + 4 <= count; i += 4) {
        const __m256d d = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(values + i)), scale);
        const __m256d high = _mm256_round_pd(_mm256_mul_pd(d, down), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __m256d low = _mm256_round_pd(_mm256_fnmadd_pd(high, up, d), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        const __m256i h = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(high, magic)), magicBits);
        const __m256i l = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(low, magic)), magicBits);
        const __m256i value = _mm256_add_epi64(_mm256_slli_epi64(h, 40), l);
        _mm256_storeu_si256((__m256i *)(sums + i), _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(sums + i)), value));
    }
    accumulate_portable(sums + i, values + i, count - i, factor);
}
#else
static uint32_t largest_bits_avx2(const float *v, size_t n) { return largest_bits_portable(v, n); }
static void accumulate_avx2(int64_t *s, const float *v, size_t n, double f) { accumulate_portable(s, v, n, f); }
static uint32_t largest_bits_avx512(const float *v, size_t n) { return largest_bits_portable(v, n); }
static void accumulate_avx512(int64_t *s, const float *v, size_t n, double f) { accumulate_portable(s, v, n, f); }
static void to_float_avx512(float *o, const int64_t *s, size_t n, double u) { to_float_portable(o, s, n, u); }
#endif

uint32_t fixed_point_largest_bits(const float *values, size_t count) {
    if (vk_avx512_active()) return largest_bits_avx512(values, count);
    return vk_avx2_active() ? largest_bits_avx2(values, count) : largest_bits_portable(values, count);
}

void fixed_point_accumulate(int64_t *sums, const float *values, size_t count, double factor) {
    if (vk_avx512_active()) accumulate_avx512(sums, values, count, factor);
    else if (vk_avx2_active()) accumulate_avx2(sums, values, count, factor);
    else accumulate_portable(sums, values, count, factor);
}

void fixed_point_to_float(float *output, const int64_t *sums, size_t count, double unscale) {
    if (vk_avx512_active()) to_float_avx512(output, sums, count, unscale);
    else to_float_portable(output, sums, count, unscale);
}

/// Elements per block of the group sums: the block's 64-bit sums (4 KiB) stay in the level-1 cache while every
/// group is added to them.
enum { SUM_BLOCK = 512 };

/// `sums [length]` = the fixed-point sum of elements `start ..< start + length` of every group.
static void sum_block(int64_t *sums, const float *const *values, size_t groups, size_t start, size_t length, double factor) {
    for (size_t i = 0; i < length; i++) sums[i] = 0;
    for (size_t g = 0; g < groups; g++) fixed_point_accumulate(sums, values[g] + start, length, factor);
}

void fixed_point_sum(int64_t *sums, const float *const *values, size_t groups, size_t count, double factor) {
    for (size_t start = 0; start < count; start += SUM_BLOCK) {
        sum_block(sums + start, values, groups, start, count - start < SUM_BLOCK ? count - start : SUM_BLOCK, factor);
    }
}

void fixed_point_sum_to_float(float *output, const float *const *values, size_t groups, size_t count, double factor,
                              double unscale) {
    int64_t block[SUM_BLOCK];
    for (size_t start = 0; start < count; start += SUM_BLOCK) {
        const size_t length = count - start < SUM_BLOCK ? count - start : SUM_BLOCK;
        sum_block(block, values, groups, start, length, factor);
        fixed_point_to_float(output + start, block, length, unscale);
    }
}
