// The AVX-512 micro-kernels of the one-channel direct 3x3 convolutions (see conv3x3_one_channel.h and
// conv3x3_one_channel_kernels.h; padding, packing and masking are in conv3x3_one_channel.c). A vector
// holds 16 neighbouring output positions of a row; every output (and every lane of a weight-gradient
// sum) sees the same operations in the same order as in the AVX2 kernels, so both give the same bits.
#include "conv3x3_one_channel_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#ifndef ONE_OUTPUT_ROWS
#define ONE_OUTPUT_ROWS 12
#endif
enum { LANES = ONE_CHANNEL_LANES, GROUP = 2, INPUT_ROWS = 4, ROWS = ONE_OUTPUT_ROWS, PAIR = 2, WEIGHT_ROWS = 4 };

#define AVX512 __attribute__((target("avx512f,fma")))
#define UNROLL _Pragma("clang loop unroll(full)")
#define INLINE static inline __attribute__((always_inline))

/// Lanes `j` with `begin <= j < end` set (of 16).
INLINE __mmask16 lanes_between(int begin, int end) {
    begin = begin < 0 ? 0 : begin;
    end = end > LANES ? LANES : end;
    return end <= begin ? 0 : (__mmask16)(((1u << end) - 1) & ~((1u << begin) - 1));
}

/// `rows` (1 or 2, a constant once inlined) output rows from `y` x the 16 positions from `x0` of
/// `conv3x3_one_input_avx512`: the windows of the rows in zmm registers, then GROUP output channels at a
/// time, each weight broadcast once for both rows.
AVX512 INLINE void one_input_rows(float *output, const float *plane, int stride, const float *packed, const float *bias,
                                  int relu, int outChannels, int outputHeight, int outputWidth, int y, int x0,
                                  const int rows) {
    const size_t outputPlane = (size_t)outputHeight * outputWidth;
    const __m512 zero = _mm512_setzero_ps();
    const __mmask16 store = lanes_between(0, outputWidth - x0);
    __m512 window[INPUT_ROWS + 2][3];  // [input row y + r, kx]
    UNROLL for (int r = 0; r < rows + 2; r++) {
        const float *row = plane + (size_t)(y + r) * stride + x0;
        UNROLL for (int kx = 0; kx < 3; kx++) window[r][kx] = _mm512_loadu_ps(row + kx);
    }
    for (int o0 = 0; o0 < outChannels; o0 += GROUP) {
        const float *w = packed + (size_t)o0 * 9;
        __m512 sum[GROUP][INPUT_ROWS];
        UNROLL for (int g = 0; g < GROUP; g++) {
            UNROLL for (int i = 0; i < rows; i++) sum[g][i] = zero;
        }
        UNROLL for (int t = 0; t < 9; t++) {
            UNROLL for (int g = 0; g < GROUP; g++) {
                const __m512 weight = _mm512_set1_ps(w[g * 9 + t]);
                UNROLL for (int i = 0; i < rows; i++) {
                    sum[g][i] = _mm512_fmadd_ps(window[i + t / 3][t % 3], weight, sum[g][i]);
                }
            }
        }
        float *out = output + (size_t)o0 * outputPlane + (size_t)y * outputWidth + x0;
        UNROLL for (int g = 0; g < GROUP; g++) {
            if (o0 + g < outChannels) {
                const __m512 b = _mm512_set1_ps(bias ? bias[o0 + g] : 0.0f);
                UNROLL for (int i = 0; i < rows; i++) {
                    __m512 v = _mm512_add_ps(sum[g][i], b);
                    if (relu) v = _mm512_max_ps(v, zero);
                    _mm512_mask_storeu_ps(out + g * outputPlane + i * outputWidth, store, v);
                }
            }
        }
    }
}

/// `one_input_fn` with AVX-512: tiles of two output rows x 16 positions x 8 output channels in 16 zmm
/// accumulators, the 12 windows of the tile in 12 more; a last odd row on its own.
AVX512 void conv3x3_one_input_avx512(float *output, const float *plane, int stride, const float *packed,
                                     const float *bias, int relu, int outChannels, int outputHeight,
                                     int outputWidth, int y0, int y1) {
    for (int x0 = 0; x0 < outputWidth; x0 += LANES) {
        for (int y = y0; y < y1;) {
            const int left = y1 - y;
#define ROWS_OF(n) \
    one_input_rows(output, plane, stride, packed, bias, relu, outChannels, outputHeight, outputWidth, y, x0, n)
            if (left >= 4) { ROWS_OF(4); y += 4; }
            else if (left == 3) { ROWS_OF(3); y += 3; }
            else if (left == 2) { ROWS_OF(2); y += 2; }
            else { ROWS_OF(1); y += 1; }
#undef ROWS_OF
        }
    }
}

/// One tile of `conv3x3_one_output_avx512`: `rows` (a constant once inlined) output rows from `y0` x the
/// 16 positions from `x0`; `column[kx]`: the lanes whose input column is inside the image for tap column kx.
/// The tile's `rows + 2` input rows are inside the image except the first `zeroTop` and the last
/// `zeroBottom` (constants), which give zero vectors; with `general`, each row is checked at run time instead.
AVX512 INLINE void one_output_tile(float *output, const float *input, const float *packed, float bias, int relu,
                                   int channels, int height, int width, int padding, int y0, int x0,
                                   const __mmask16 *column, __mmask16 store, ptrdiff_t ahead, int aheadCount,
                                   const int rows, const int zeroTop, const int zeroBottom, const int general) {
    const int outputWidth = width + 2 * padding - 2;
    const size_t planeSize = (size_t)height * width;
    __m512 sum[ROWS];
    UNROLL for (int i = 0; i < rows; i++) sum[i] = _mm512_setzero_ps();
    const __mmask16 c0 = column[0], c1 = column[1], c2 = column[2];
    const ptrdiff_t first = (ptrdiff_t)(y0 - padding) * width + x0 - padding;  // input row y0 - p, column x0 - p
    for (int c = 0; c < channels; c++) {
        const float *w = packed + (size_t)c * 9, *plane = input + (size_t)c * planeSize;
        __m512 weight[9];
        UNROLL for (int t = 0; t < 9; t++) weight[t] = _mm512_set1_ps(w[t]);
        // the next tile's new rows of this plane (or the next image's first rows) on their way into the cache:
        // 32 planes a few rows each are too many streams for the hardware prefetchers
        for (int k = 0; k < aheadCount; k += LANES) {
            _mm_prefetch((const char *)one_channel_offset(plane, ahead + k), _MM_HINT_T0);
        }
        UNROLL for (int r = 0; r < rows + 2; r++) {
            const int inside = general ? y0 + r - padding >= 0 && y0 + r - padding < height
                                       : r >= zeroTop && r < rows + 2 - zeroBottom;
            __m512 v[3];
            if (inside) {
                const float *row = one_channel_offset(plane, first + (ptrdiff_t)r * width);
                v[0] = _mm512_maskz_loadu_ps(c0, one_channel_offset(row, 0));
                v[1] = _mm512_maskz_loadu_ps(c1, one_channel_offset(row, 1));
                v[2] = _mm512_maskz_loadu_ps(c2, one_channel_offset(row, 2));
            } else {
                v[0] = v[1] = v[2] = _mm512_setzero_ps();
            }
            UNROLL for (int kx = 0; kx < 3; kx++) {
                UNROLL for (int ky = 0; ky < 3; ky++) {
                    if (r - ky < 0 || r - ky >= rows) continue;
                    sum[r - ky] = _mm512_fmadd_ps(weight[3 * ky + kx], v[kx], sum[r - ky]);
                }
            }
        }
    }
    UNROLL for (int i = 0; i < rows; i++) {
        __m512 v = _mm512_add_ps(sum[i], _mm512_set1_ps(bias));
        if (relu) v = _mm512_max_ps(v, _mm512_setzero_ps());
        _mm512_mask_storeu_ps(output + (size_t)(y0 + i) * outputWidth + x0, store, v);
    }
}

/// `one_output_fn` with AVX-512: tiles of up to 12 output rows x 16 positions (12 zmm accumulators, the
/// channel's nine weights in nine more; each input row is loaded once per tap column and feeds up to three
/// output rows). With padding, the first and last 8 rows (4 on images of fewer than 16 output rows) are
/// tiles whose rows of padding are zero vectors; on images of fewer than 8 output rows, every row is checked.
AVX512 void conv3x3_one_output_avx512(float *output, const float *input, const float *packed, float bias, int relu,
                                      int channels, int height, int width, int padding, int yBegin, int yEnd,
                                      int prefetch) {
    const int outputHeight = height + 2 * padding - 2, outputWidth = width + 2 * padding - 2;
    // with padding: tiles of `frame` rows at the top and the bottom (8 or 4), the rest inside the image
    const int frame = padding == 0 ? 0 : outputHeight >= 16 ? 8 : outputHeight >= 8 ? 4 : -1;
    const int begin = frame > 0 ? frame : 0, end = frame >= 0 ? outputHeight - begin : 0;
    for (int x0 = 0; x0 < outputWidth; x0 += LANES) {
        __mmask16 column[3];
        UNROLL for (int kx = 0; kx < 3; kx++) column[kx] = lanes_between(padding - x0 - kx, width + padding - x0 - kx);
        const __mmask16 store = lanes_between(0, outputWidth - x0);
        // With `prefetch`: while a tile is summed, the rows that the tile below adds; in the bottom tile of the
        // first vector of positions, the first rows of the next image (the other vectors find theirs in L2).
        const ptrdiff_t nextImage = (ptrdiff_t)channels * height * width;
        const int firstRows = frame > 0 ? frame : outputHeight < ROWS ? outputHeight : ROWS;
        const int nextCount = x0 == 0 && prefetch ? (firstRows + 2) * width : 0;
#define TILE(y, n, top, bottom, general)                                                                             \
    one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y, x0, column, store,         \
                    (y) + (n) < outputHeight ? (ptrdiff_t)((y) + (n) + 2 - padding) * width : nextImage,               \
                    (y) + (n) < outputHeight ? (x0 == 0 && prefetch ? (n) * width : 0) : nextCount, n, top, bottom,   \
                    general)
        if (frame >= 0) {
            ONE_OUTPUT_FRAMES(8);
            const int stop = yEnd < end ? yEnd : end;
            for (int y0 = yBegin > begin ? yBegin : begin; y0 < stop;) {
                const int left = stop - y0;
                if (left >= ROWS) { TILE(y0, ROWS, 0, 0, 0); y0 += ROWS; }
                else if (left >= 8) { TILE(y0, 8, 0, 0, 0); y0 += 8; }
                else if (left >= 4) { TILE(y0, 4, 0, 0, 0); y0 += 4; }
                else if (left >= 2) { TILE(y0, 2, 0, 0, 0); y0 += 2; }
                else { TILE(y0, 1, 0, 0, 0); y0 += 1; }
            }
        } else {
            for (int y = yBegin; y < yEnd; y++) TILE(y, 1, 0, 0, 1);
        }
#undef TILE
    }
}

/// `v * (mask > 0 ? 1 : 0)`, the element-wise ReLU's backward.
AVX512 INLINE __m512 relu_backward(__m512 v, __m512 mask) {
    const __mmask16 positive = _mm512_cmp_ps_mask(mask, _mm512_setzero_ps(), _CMP_GT_OQ);
    return _mm512_mul_ps(v, _mm512_maskz_mov_ps(positive, _mm512_set1_ps(1.0f)));
}

AVX512 void conv3x3_one_relu_backward_avx512(float *output, const float *input, const float *mask, size_t count) {
    size_t i = 0;
    for (; i + LANES <= count; i += LANES) {
        _mm512_storeu_ps(output + i, relu_backward(_mm512_loadu_ps(input + i), _mm512_loadu_ps(mask + i)));
    }
    const __mmask16 rest = lanes_between(0, (int)(count - i));
    const __m512 v = relu_backward(_mm512_maskz_loadu_ps(rest, input + i), _mm512_maskz_loadu_ps(rest, mask + i));
    _mm512_mask_storeu_ps(output + i, rest, v);
}

/// `rows` (1 to 4, a constant once inlined) output rows from `y` x the 16 positions from `x0` of
/// `count` (1 or 2) output channels: their (masked) output gradient in registers, each input row's three
/// windows loaded once and multiplied into the sums of up to three kernel rows.
AVX512 INLINE void weight_tile(__m512 sum[PAIR][9], __m512 *biasSum, const float *plane, int stride,
                               const float *outputGradient, const float *outputMask, size_t outputPlane,
                               int outputWidth, int y, int x0, __mmask16 valid, int biasOfOutput, const int count,
                               const int rows) {
    __m512 d[PAIR][WEIGHT_ROWS];
    if (x0 == 0) {
        // the same rows of the next pair of channels on their way into the cache, a pair ahead (one tile ahead
        // is too close to hide the memory's latency: each plane is a stream, four of them at once)
        const size_t ahead = (size_t)count * outputPlane + (size_t)y * outputWidth;
        UNROLL for (int g = 0; g < count; g++) {
            for (int k = 0; k < rows * outputWidth; k += LANES) {
                _mm_prefetch((const char *)(outputGradient + g * outputPlane + ahead + k), _MM_HINT_T0);
                if (outputMask) _mm_prefetch((const char *)(outputMask + g * outputPlane + ahead + k), _MM_HINT_T0);
            }
        }
    }
    UNROLL for (int g = 0; g < count; g++) {
        UNROLL for (int i = 0; i < rows; i++) {
            const size_t offset = (size_t)g * outputPlane + (size_t)(y + i) * outputWidth + x0;
            d[g][i] = _mm512_maskz_loadu_ps(valid, outputGradient + offset);
            if (outputMask) d[g][i] = relu_backward(d[g][i], _mm512_maskz_loadu_ps(valid, outputMask + offset));
            if (biasOfOutput) biasSum[g] = _mm512_add_ps(biasSum[g], d[g][i]);
        }
    }
    UNROLL for (int r = 0; r < rows + 2; r++) {
        UNROLL for (int kx = 0; kx < 3; kx++) {
            const __m512 window = _mm512_loadu_ps(plane + (size_t)(y + r) * stride + x0 + kx);
            UNROLL for (int ky = 0; ky < 3; ky++) {
                if (r - ky >= 0 && r - ky < rows) {
                    UNROLL for (int g = 0; g < count; g++) {
                        sum[g][3 * ky + kx] = _mm512_fmadd_ps(d[g][r - ky], window, sum[g][3 * ky + kx]);
                    }
                }
            }
        }
    }
}

/// The weight-gradient lane sums of `count` (1 or 2, a constant once inlined) output channels from `o`:
/// nine tap sums and a bias sum each in zmm registers, over the vectors of positions and, in each, the rows
/// in tiles of four.
AVX512 INLINE void weight_channels(float *lanes, const float *plane, int stride, const float *outputGradient,
                                   const float *outputMask, int o, int outChannels, int outputHeight,
                                   int outputWidth, int biasOfOutput, const int count) {
    const size_t outputPlane = (size_t)outputHeight * outputWidth;
    const float *dy = outputGradient + (size_t)o * outputPlane;
    const float *m = outputMask ? outputMask + (size_t)o * outputPlane : 0;
    __m512 sum[PAIR][9], biasSum[PAIR];
    UNROLL for (int g = 0; g < count; g++) {
        UNROLL for (int t = 0; t < 9; t++) sum[g][t] = _mm512_loadu_ps(lanes + ((size_t)(o + g) * 9 + t) * LANES);
        const float *biasLanes = lanes + ((size_t)outChannels * 9 + o + g) * LANES;
        biasSum[g] = biasOfOutput ? _mm512_loadu_ps(biasLanes) : _mm512_setzero_ps();
    }
    for (int x0 = 0; x0 < outputWidth; x0 += LANES) {
        const __mmask16 valid = lanes_between(0, outputWidth - x0);
        int y = 0;
#define ROWS_OF(n) \
    weight_tile(sum, biasSum, plane, stride, dy, m, outputPlane, outputWidth, y, x0, valid, biasOfOutput, count, n)
        for (; y + WEIGHT_ROWS <= outputHeight; y += WEIGHT_ROWS) ROWS_OF(4);
        switch (outputHeight - y) {
        case 3: ROWS_OF(3); break;
        case 2: ROWS_OF(2); break;
        case 1: ROWS_OF(1); break;
        default: break;
        }
#undef ROWS_OF
    }
    UNROLL for (int g = 0; g < count; g++) {
        UNROLL for (int t = 0; t < 9; t++) _mm512_storeu_ps(lanes + ((size_t)(o + g) * 9 + t) * LANES, sum[g][t]);
        if (biasOfOutput) _mm512_storeu_ps(lanes + ((size_t)outChannels * 9 + o + g) * LANES, biasSum[g]);
    }
}

/// `one_weight_fn` with AVX-512: two output channels at a time (18 tap sums + 2 bias sums, the output
/// gradient of a tile of four rows in 8 more zmm registers), a lone last channel on its own.
AVX512 void conv3x3_one_weight_avx512(float *lanes, const float *plane, int stride, const float *outputGradient,
                                      const float *outputMask, int outChannels, int outputHeight, int outputWidth,
                                      int biasOfOutput) {
    int o = 0;
    for (; o + PAIR <= outChannels; o += PAIR) {
        weight_channels(lanes, plane, stride, outputGradient, outputMask, o, outChannels, outputHeight, outputWidth,
                        biasOfOutput, PAIR);
    }
    if (o < outChannels) {
        weight_channels(lanes, plane, stride, outputGradient, outputMask, o, outChannels, outputHeight, outputWidth,
                        biasOfOutput, 1);
    }
}
#else
typedef int conv3x3_one_channel_avx512_unused;  // ISO C wants a declaration in every file
#endif
