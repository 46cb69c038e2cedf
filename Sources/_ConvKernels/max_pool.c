// 2 x 2 max pooling of whole planes; see include/max_pool.h.
#include "max_pool.h"

#include "conv3x3.h"
#include "conv3x3_kernels.h"

#include <string.h>

/// The window rule of both bodies: take the candidate when `(v > best) != isnan(v)`.
static void max_pool_2x2_portable(float *output, int32_t *argmax, const float *input, int height, int width, int y0,
                                  int y1) {
    const int ow = width / 2;
    for (int y = y0; y < y1; y++) {
        for (int x = 0; x < ow; x++) {
            const int i0 = 2 * y * width + 2 * x, next[3] = {i0 + 1, i0 + width, i0 + width + 1};
            float best = input[i0];
            int at = i0;
            for (int k = 0; k < 3; k++) {
                const float v = input[next[k]];
                if ((v > best) != (v != v)) best = v, at = next[k];
            }
            output[y * ow + x] = best;
            argmax[y * ow + x] = at;
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

/// The first `n` lanes (none for `n <= 0`, all 16 from 16 on).
AVX512 static inline __mmask16 first_lanes(int n) { return (__mmask16)(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1); }

/// 16 windows side by side: the even and odd columns of two rows, split by two permutes.
AVX512 static void max_pool_2x2_avx512(float *output, int32_t *argmax, const float *input, int height, int width, int y0,
                                       int y1) {
    const int ow = width / 2;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i offset[3] = {_mm512_set1_epi32(1), _mm512_set1_epi32(width), _mm512_set1_epi32(width + 1)};
    for (int y = y0; y < y1; y++) {
        const float *top = input + 2 * y * width, *bottom = top + width;
        for (int x = 0; x < ow; x += 16) {
            const int count = ow - x < 16 ? ow - x : 16;
            const __mmask16 low = first_lanes(2 * count), high = first_lanes(2 * count - 16);
            const __m512 t0 = _mm512_maskz_loadu_ps(low, top + 2 * x), t1 = _mm512_maskz_loadu_ps(high, top + 2 * x + 16);
            const __m512 b0 = _mm512_maskz_loadu_ps(low, bottom + 2 * x);
            const __m512 b1 = _mm512_maskz_loadu_ps(high, bottom + 2 * x + 16);
            const __m512 candidate[3] = {_mm512_permutex2var_ps(t0, odd, t1), _mm512_permutex2var_ps(b0, even, b1),
                                         _mm512_permutex2var_ps(b0, odd, b1)};
            const __m512i first = _mm512_add_epi32(_mm512_set1_epi32(2 * y * width + 2 * x), even);
            __m512 best = _mm512_permutex2var_ps(t0, even, t1);
            __m512i at = first;
            for (int k = 0; k < 3; k++) {
                const __mmask16 take = _mm512_cmp_ps_mask(candidate[k], best, _CMP_GT_OQ) ^
                                       _mm512_cmp_ps_mask(candidate[k], candidate[k], _CMP_UNORD_Q);
                best = _mm512_mask_mov_ps(best, take, candidate[k]);
                at = _mm512_mask_add_epi32(at, take, first, offset[k]);
            }
            _mm512_mask_storeu_ps(output + y * ow + x, first_lanes(count), best);
            _mm512_mask_storeu_epi32(argmax + y * ow + x, first_lanes(count), at);
        }
    }
}

#define AVX2 __attribute__((target("avx2")))

/// 8 windows side by side, as `max_pool_2x2_avx512` (the same rule, so the same values and positions).
AVX2 static void max_pool_2x2_avx2(float *output, int32_t *argmax, const float *input, int height, int width, int y0,
                                   int y1) {
    const int ow = width / 2;
    const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    const __m256i offset[3] = {_mm256_set1_epi32(1), _mm256_set1_epi32(width), _mm256_set1_epi32(width + 1)};
    for (int y = y0; y < y1; y++) {
        const float *top = input + 2 * y * width, *bottom = top + width;
        for (int x = 0; x < ow; x += 8) {
            const int count = ow - x < 8 ? ow - x : 8;
            // masked loads (several times a plain one on AMD's cores) only for a row's last, short vector
            const __m256i low = conv3x3_lanes_avx2(0, 2 * count), high = conv3x3_lanes_avx2(0, 2 * count - 8);
            const int whole = count == 8;
            const __m256 t0 = whole ? _mm256_loadu_ps(top + 2 * x) : _mm256_maskload_ps(top + 2 * x, low);
            const __m256 t1 = whole ? _mm256_loadu_ps(top + 2 * x + 8) : _mm256_maskload_ps(top + 2 * x + 8, high);
            const __m256 b0 = whole ? _mm256_loadu_ps(bottom + 2 * x) : _mm256_maskload_ps(bottom + 2 * x, low);
            const __m256 b1 = whole ? _mm256_loadu_ps(bottom + 2 * x + 8) : _mm256_maskload_ps(bottom + 2 * x + 8, high);
            const __m256 candidate[3] = {conv3x3_deinterleave_avx2(t0, t1, 1), conv3x3_deinterleave_avx2(b0, b1, 0), conv3x3_deinterleave_avx2(b0, b1, 1)};
            const __m256i first = _mm256_add_epi32(_mm256_set1_epi32(2 * y * width + 2 * x), even);
            __m256 best = conv3x3_deinterleave_avx2(t0, t1, 0);
            __m256i at = first;
            for (int k = 0; k < 3; k++) {
                const __m256 take = _mm256_xor_ps(_mm256_cmp_ps(candidate[k], best, _CMP_GT_OQ),
                                                  _mm256_cmp_ps(candidate[k], candidate[k], _CMP_UNORD_Q));
                best = _mm256_blendv_ps(best, candidate[k], take);
                at = _mm256_blendv_epi8(at, _mm256_add_epi32(first, offset[k]), _mm256_castps_si256(take));
            }
            if (whole) {  // masked stores only at a row's end (each takes many cycles on AMD's cores)
                _mm256_storeu_ps(output + y * ow + x, best);
                _mm256_storeu_si256((__m256i *)(argmax + y * ow + x), at);
            } else {
                const __m256i lanes = conv3x3_lanes_avx2(0, count);
                _mm256_maskstore_ps(output + y * ow + x, lanes, best);
                _mm256_maskstore_epi32(argmax + y * ow + x, lanes, at);
            }
        }
    }
}
#else
static void max_pool_2x2_avx2(float *output, int32_t *argmax, const float *input, int height, int width, int y0,
                              int y1) {
    max_pool_2x2_portable(output, argmax, input, height, width, y0, y1);
}
static void max_pool_2x2_avx512(float *output, int32_t *argmax, const float *input, int height, int width, int y0,
                                int y1) {
    max_pool_2x2_portable(output, argmax, input, height, width, y0, y1);
}
#endif

void max_pool_2x2_rows(float *output, int32_t *argmax, const float *input, int planes, int height, int width, int y0,
                       int y1, int isa) {
    const size_t in = (size_t)height * width, out = (size_t)(height / 2) * (width / 2);
    y0 = y0 < 0 ? 0 : y0;
    y1 = y1 > height / 2 ? height / 2 : y1;
    for (int p = 0; p < planes; p++) {
        if (isa == CONV3X3_ISA_AVX512) {
            max_pool_2x2_avx512(output + p * out, argmax + p * out, input + p * in, height, width, y0, y1);
        } else if (isa == CONV3X3_ISA_AVX2) {
            max_pool_2x2_avx2(output + p * out, argmax + p * out, input + p * in, height, width, y0, y1);
        } else {
            max_pool_2x2_portable(output + p * out, argmax + p * out, input + p * in, height, width, y0, y1);
        }
    }
}

void max_pool_2x2(float *output, int32_t *argmax, const float *input, int planes, int height, int width, int isa) {
    max_pool_2x2_rows(output, argmax, input, planes, height, width, 0, height / 2, isa);
}

void max_pool_backward(float *inputGradient, const float *outputGradient, const int32_t *argmax, const float *mask,
                       int planes, size_t planeSize, size_t pooledPlaneSize) {
    memset(inputGradient, 0, (size_t)planes * planeSize * sizeof(float));
    for (int p = 0; p < planes; p++) {
        float *plane = inputGradient + p * planeSize;
        const float *gradient = outputGradient + p * pooledPlaneSize;
        const int32_t *at = argmax + p * pooledPlaneSize;
        if (!mask) {
            for (size_t o = 0; o < pooledPlaneSize; o++) plane[at[o]] += gradient[o];
            continue;
        }
        // windows that do not overlap: each chosen position gets one gradient, +0 plus it, times the ReLU's
        // backward there (the others hold +0, which it leaves as it is)
        const float *m = mask + p * planeSize;
        for (size_t o = 0; o < pooledPlaneSize; o++) plane[at[o]] = (0.0f + gradient[o]) * (m[at[o]] > 0 ? 1.0f : 0.0f);
    }
}
