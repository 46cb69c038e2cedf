// Fixed-point passes of the exact gradient sum; see include/vector_kernels.h.
#include "dispatch.h"

#include <math.h>

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

// Same conversions as the portable loop: float -> double (exact), times a power of two (exact in
// range), truncation toward zero (vcvttpd2qq, as the C cast), 64-bit integer addition.
__attribute__((target("avx512f,avx512dq")))
static void accumulate_avx512(int64_t *sums, const float *values, size_t count, double factor) {
    const __m512d scale = _mm512_set1_pd(factor);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m512d wide = _mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(values + i)), scale);
        __m512i sum = _mm512_add_epi64(_mm512_loadu_si512(sums + i), _mm512_cvttpd_epi64(wide));
        _mm512_storeu_si512(sums + i, sum);
    }
    accumulate_portable(sums + i, values + i, count - i, factor);
}

// vcvtqq2ps rounds to nearest under the default MXCSR, as the C conversion does.
__attribute__((target("avx512f,avx512dq")))
static void to_float_avx512(float *output, const int64_t *sums, size_t count, double unscale) {
    const __m512d scale = _mm512_set1_pd(unscale);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 rounded = _mm512_cvtepi64_ps(_mm512_loadu_si512(sums + i));
        _mm256_storeu_ps(output + i, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(rounded), scale)));
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

// The portable loop's values with integers only (AVX2 converts no doubles to 64-bit integers): with `factor`
// 2^`power`, `(double)x * factor` is exactly the significand (the hidden bit set unless subnormal) times
// 2^(exponent - 150 + power), and its truncation toward zero is the significand shifted left by that, or right
// (the bits below the point dropped; shifts of 64 and more give 0), negated for a negative x.
__attribute__((target("avx2")))
static void accumulate_avx2(int64_t *sums, const float *values, size_t count, int power) {
    const __m256i fraction = _mm256_set1_epi64x(0x7FFFFF), hidden = _mm256_set1_epi64x(0x800000);
    const __m256i exponentBits = _mm256_set1_epi64x(0xFF), one = _mm256_set1_epi64x(1), zero = _mm256_setzero_si256();
    const __m256i offset = _mm256_set1_epi64x(power - 150);
    size_t i = 0;
    for (; i + 4 <= count; i += 4) {
        const __m256i bits = _mm256_cvtepu32_epi64(_mm_loadu_si128((const __m128i *)(values + i)));
        const __m256i exponent = _mm256_and_si256(_mm256_srli_epi64(bits, 23), exponentBits);
        const __m256i normal = _mm256_cmpgt_epi64(exponent, zero);
        const __m256i significand = _mm256_or_si256(_mm256_and_si256(bits, fraction), _mm256_and_si256(normal, hidden));
        // a subnormal's lowest bit weighs as much as that of the smallest normal exponent (1)
        const __m256i shift = _mm256_add_epi64(_mm256_or_si256(exponent, _mm256_andnot_si256(normal, one)), offset);
        // a negative count is a huge unsigned one, which gives 0: exactly one of the two shifts is nonzero (both the
        // significand itself for a shift of 0)
        const __m256i magnitude = _mm256_or_si256(_mm256_sllv_epi64(significand, shift),
                                                  _mm256_srlv_epi64(significand, _mm256_sub_epi64(zero, shift)));
        const __m256i negative = _mm256_sub_epi64(zero, _mm256_srli_epi64(bits, 31));  // all ones for a negative x
        const __m256i value = _mm256_sub_epi64(_mm256_xor_si256(magnitude, negative), negative);
        _mm256_storeu_si256((__m256i *)(sums + i), _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(sums + i)), value));
    }
    accumulate_portable(sums + i, values + i, count - i, ldexp(1.0, power));
}
#else
static uint32_t largest_bits_avx2(const float *v, size_t n) { return largest_bits_portable(v, n); }
static void accumulate_avx2(int64_t *s, const float *v, size_t n, int power) { accumulate_portable(s, v, n, ldexp(1.0, power)); }
static uint32_t largest_bits_avx512(const float *v, size_t n) { return largest_bits_portable(v, n); }
static void accumulate_avx512(int64_t *s, const float *v, size_t n, double f) { accumulate_portable(s, v, n, f); }
static void to_float_avx512(float *o, const int64_t *s, size_t n, double u) { to_float_portable(o, s, n, u); }
#endif

uint32_t fixed_point_largest_bits(const float *values, size_t count) {
    if (vk_avx512_active()) return largest_bits_avx512(values, count);
    return vk_avx2_active() ? largest_bits_avx2(values, count) : largest_bits_portable(values, count);
}

void fixed_point_accumulate(int64_t *sums, const float *values, size_t count, double factor) {
    int power = 0;
    const double fraction = frexp(factor, &power);  // factor = fraction * 2^power, fraction in [0.5, 1)
    if (vk_avx512_active()) accumulate_avx512(sums, values, count, factor);
    else if (vk_avx2_active() && fraction == 0.5) accumulate_avx2(sums, values, count, power - 1);
    else accumulate_portable(sums, values, count, factor);
}

void fixed_point_to_float(float *output, const int64_t *sums, size_t count, double unscale) {
    if (vk_avx512_active()) to_float_avx512(output, sums, count, unscale);
    else to_float_portable(output, sums, count, unscale);
}
