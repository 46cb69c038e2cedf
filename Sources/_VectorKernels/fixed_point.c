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
#else
static uint32_t largest_bits_avx512(const float *v, size_t n) { return largest_bits_portable(v, n); }
static void accumulate_avx512(int64_t *s, const float *v, size_t n, double f) { accumulate_portable(s, v, n, f); }
static void to_float_avx512(float *o, const int64_t *s, size_t n, double u) { to_float_portable(o, s, n, u); }
#endif

uint32_t fixed_point_largest_bits(const float *values, size_t count) {
    return vk_avx512_active() ? largest_bits_avx512(values, count) : largest_bits_portable(values, count);
}

void fixed_point_accumulate(int64_t *sums, const float *values, size_t count, double factor) {
    if (vk_avx512_active()) accumulate_avx512(sums, values, count, factor);
    else accumulate_portable(sums, values, count, factor);
}

void fixed_point_to_float(float *output, const int64_t *sums, size_t count, double unscale) {
    if (vk_avx512_active()) to_float_avx512(output, sums, count, unscale);
    else to_float_portable(output, sums, count, unscale);
}
