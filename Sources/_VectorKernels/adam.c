// Adam's update; see include/vector_kernels.h. No contraction: a fused multiply-add would round
// once where the formula rounds twice, and the two bodies (and Swift's formula) would differ.
#pragma STDC FP_CONTRACT OFF
#include <math.h>
#include "dispatch.h"

static void adam_portable(
    float *m, float *v, float *p, const float *g, size_t count, float b1, float b2, float eps, float stepSize, float c2) {
    for (size_t i = 0; i < count; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] = p[i] - stepSize * m[i] / (sqrtf(v[i] / c2) + eps);
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f")))
static void adam_avx512(
    float *m, float *v, float *p, const float *g, size_t count, float b1, float b2, float eps, float stepSize, float c2) {
    const __m512 beta1 = _mm512_set1_ps(b1), beta2 = _mm512_set1_ps(b2);
    const __m512 rest1 = _mm512_set1_ps(1.0f - b1), rest2 = _mm512_set1_ps(1.0f - b2);
    const __m512 epsilon = _mm512_set1_ps(eps), step = _mm512_set1_ps(stepSize), correction = _mm512_set1_ps(c2);
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 gi = _mm512_loadu_ps(g + i);
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(beta1, _mm512_loadu_ps(m + i)), _mm512_mul_ps(rest1, gi));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(beta2, _mm512_loadu_ps(v + i)), _mm512_mul_ps(_mm512_mul_ps(rest2, gi), gi));
        __m512 denominator = _mm512_add_ps(_mm512_sqrt_ps(_mm512_div_ps(vi, correction)), epsilon);
        __m512 pi = _mm512_sub_ps(_mm512_loadu_ps(p + i), _mm512_div_ps(_mm512_mul_ps(step, mi), denominator));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        _mm512_storeu_ps(p + i, pi);
    }
    adam_portable(m + i, v + i, p + i, g + i, count - i, b1, b2, eps, stepSize, c2);
}

__attribute__((target("avx2")))
static void adam_avx2(
    float *m, float *v, float *p, const float *g, size_t count, float b1, float b2, float eps, float stepSize, float c2) {
    const __m256 beta1 = _mm256_set1_ps(b1), beta2 = _mm256_set1_ps(b2);
    const __m256 rest1 = _mm256_set1_ps(1.0f - b1), rest2 = _mm256_set1_ps(1.0f - b2);
    const __m256 epsilon = _mm256_set1_ps(eps), step = _mm256_set1_ps(stepSize), correction = _mm256_set1_ps(c2);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(beta1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(rest1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(beta2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(rest2, gi), gi));
        __m256 denominator = _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(vi, correction)), epsilon);
        __m256 pi = _mm256_sub_ps(_mm256_loadu_ps(p + i), _mm256_div_ps(_mm256_mul_ps(step, mi), denominator));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        _mm256_storeu_ps(p + i, pi);
    }
    adam_portable(m + i, v + i, p + i, g + i, count - i, b1, b2, eps, stepSize, c2);
}
#else
static void adam_avx2(
    float *m, float *v, float *p, const float *g, size_t count, float b1, float b2, float eps, float stepSize, float c2) {
    adam_portable(m, v, p, g, count, b1, b2, eps, stepSize, c2);
}
static void adam_avx512(
    float *m, float *v, float *p, const float *g, size_t count, float b1, float b2, float eps, float stepSize, float c2) {
    adam_portable(m, v, p, g, count, b1, b2, eps, stepSize, c2);
}
#endif

void adam_update(
    float *m, float *v, float *p, const float *g, size_t count, float beta1, float beta2, float epsilon, float stepSize,
    float correction2) {
    if (vk_avx512_active()) adam_avx512(m, v, p, g, count, beta1, beta2, epsilon, stepSize, correction2);
    else if (vk_avx2_active()) adam_avx2(m, v, p, g, count, beta1, beta2, epsilon, stepSize, correction2);
    else adam_portable(m, v, p, g, count, beta1, beta2, epsilon, stepSize, correction2);
}
