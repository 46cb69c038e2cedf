// The AVX-512 micro-kernels of the one-channel direct 3x3 convolutions (see conv3x3_one_channel.h and
// conv3x3_one_channel_kernels.h; padding, packing and masking are in conv3x3_one_channel.c). A vector
// holds 16 neighbouring output positions of a row; every output (and every lane of a weight-gradient
// sum) sees the same operations in the same order as in the AVX2 kernels, so both give the same bits.
#include "conv3x3_one_channel_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

enum { LANES = ONE_CHANNEL_LANES, GROUP = 16, ROWS = 8, PAIR = 2 };

#define AVX512 __attribute__((target("avx512f,fma")))
#define UNROLL _Pragma("clang loop unroll(full)")
#define INLINE static inline __attribute__((always_inline))

/// Lanes `j` with `begin <= j < end` set (of 16).
INLINE __mmask16 lanes_between(int begin, int end) {
    begin = begin < 0 ? 0 : begin;
    end = end > LANES ? LANES : end;
    return end <= begin ? 0 : (__mmask16)(((1u << end) - 1) & ~((1u << begin) - 1));
}

/// `one_input_fn` with AVX-512: per vector of 16 positions, the nine windows in zmm registers and 16
/// output channels at a time in 16 accumulators (each FMA broadcasts its weight from memory).
AVX512 void conv3x3_one_input_avx512(float *output, const float *plane, int stride, const float *packed,
                                     const float *bias, int relu, int outChannels, int outputHeight,
                                     int outputWidth) {
    const size_t outputPlane = (size_t)outputHeight * outputWidth;
    const __m512 zero = _mm512_setzero_ps();
    for (int y = 0; y < outputHeight; y++) {
        for (int x0 = 0; x0 < outputWidth; x0 += LANES) {
            const __mmask16 store = lanes_between(0, outputWidth - x0);
            __m512 window[9];
            UNROLL for (int t = 0; t < 9; t++) window[t] = _mm512_loadu_ps(plane + (size_t)(y + t / 3) * stride + x0 + t % 3);
            for (int o0 = 0; o0 < outChannels; o0 += GROUP) {
                const float *w = packed + (size_t)o0 * 9;
                __m512 sum[GROUP];
                UNROLL for (int g = 0; g < GROUP; g++) sum[g] = zero;
                UNROLL for (int t = 0; t < 9; t++) {
                    UNROLL for (int g = 0; g < GROUP; g++) sum[g] = _mm512_fmadd_ps(window[t], _mm512_set1_ps(w[g * 9 + t]), sum[g]);
                }
                float *out = output + (size_t)o0 * outputPlane + (size_t)y * outputWidth + x0;
                UNROLL for (int g = 0; g < GROUP; g++) {
                    if (o0 + g < outChannels) {
                        __m512 v = _mm512_add_ps(sum[g], _mm512_set1_ps(bias ? bias[o0 + g] : 0.0f));
                        if (relu) v = _mm512_max_ps(v, zero);
                        _mm512_mask_storeu_ps(out + g * outputPlane, store, v);
                    }
                }
            }
        }
    }
}

/// One tile of `conv3x3_one_output_avx512`: `rows` (a constant once inlined) output rows from `y0` x the
/// 16 positions from `x0`; `column[kx]`: the lanes whose input column is inside the image for tap column kx.
AVX512 INLINE void one_output_tile(float *output, const float *input, const float *packed, float bias, int relu,
                                   int channels, int height, int width, int padding, int y0, int x0,
                                   const __mmask16 *column, __mmask16 store, const int rows) {
    const int outputWidth = width + 2 * padding - 2;
    const size_t planeSize = (size_t)height * width;
    __m512 sum[ROWS];
    UNROLL for (int i = 0; i < rows; i++) sum[i] = _mm512_setzero_ps();
    for (int c = 0; c < channels; c++) {
        const float *w = packed + (size_t)c * 9, *plane = input + (size_t)c * planeSize;
        __m512 weight[9];
        UNROLL for (int t = 0; t < 9; t++) weight[t] = _mm512_set1_ps(w[t]);
        UNROLL for (int r = 0; r < rows + 2; r++) {
            const int iy = y0 + r - padding, inside = iy >= 0 && iy < height;
            const ptrdiff_t row = (ptrdiff_t)(inside ? iy : 0) * width + x0 - padding;
            UNROLL for (int kx = 0; kx < 3; kx++) {
                const __m512 v = _mm512_maskz_loadu_ps(inside ? column[kx] : 0, one_channel_offset(plane, row + kx));
                UNROLL for (int ky = 0; ky < 3; ky++) {
                    if (r - ky >= 0 && r - ky < rows) sum[r - ky] = _mm512_fmadd_ps(weight[3 * ky + kx], v, sum[r - ky]);
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

/// `one_output_fn` with AVX-512: tiles of 8 output rows x 16 positions in eight zmm accumulators, the
/// channel's nine weights in nine more; each input row is loaded once per tap column and feeds up to three rows.
AVX512 void conv3x3_one_output_avx512(float *output, const float *input, const float *packed, float bias, int relu,
                                      int channels, int height, int width, int padding) {
    const int outputHeight = height + 2 * padding - 2, outputWidth = width + 2 * padding - 2;
    for (int x0 = 0; x0 < outputWidth; x0 += LANES) {
        __mmask16 column[3];
        UNROLL for (int kx = 0; kx < 3; kx++) column[kx] = lanes_between(padding - x0 - kx, width + padding - x0 - kx);
        const __mmask16 store = lanes_between(0, outputWidth - x0);
        for (int y0 = 0; y0 < outputHeight; y0 += ROWS) {
            switch (outputHeight - y0 < ROWS ? outputHeight - y0 : ROWS) {
            case 8: one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y0, x0, column, store, 8); break;
            case 7: one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y0, x0, column, store, 7); break;
            case 6: one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y0, x0, column, store, 6); break;
            case 5: one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y0, x0, column, store, 5); break;
            case 4: one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y0, x0, column, store, 4); break;
            case 3: one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y0, x0, column, store, 3); break;
            case 2: one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y0, x0, column, store, 2); break;
            default: one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y0, x0, column, store, 1);
            }
        }
    }
}

/// `v * (mask > 0 ? 1 : 0)`, the element-wise ReLU's backward.
AVX512 INLINE __m512 relu_backward(__m512 v, __m512 mask) {
    const __mmask16 positive = _mm512_cmp_ps_mask(mask, _mm512_setzero_ps(), _CMP_GT_OQ);
    return _mm512_mul_ps(v, _mm512_maskz_mov_ps(positive, _mm512_set1_ps(1.0f)));
}

/// The weight-gradient sums of `count` (1 or 2, a constant once inlined) output channels from `o`:
/// nine tap sums and a bias sum each in zmm registers, the nine windows of each vector of positions in nine more.
AVX512 INLINE void weight_channels(float *lanes, const float *plane, int stride, const float *outputGradient,
                                   const float *outputMask, int o, int outChannels, int outputHeight,
                                   int outputWidth, int biasOfOutput, const int count) {
    const size_t outputPlane = (size_t)outputHeight * outputWidth;
    __m512 sum[PAIR][9], biasSum[PAIR];
    UNROLL for (int g = 0; g < count; g++) {
        UNROLL for (int t = 0; t < 9; t++) sum[g][t] = _mm512_loadu_ps(lanes + ((size_t)(o + g) * 9 + t) * LANES);
        biasSum[g] = biasOfOutput ? _mm512_loadu_ps(lanes + ((size_t)outChannels * 9 + o + g) * LANES) : _mm512_setzero_ps();
    }
    for (int y = 0; y < outputHeight; y++) {
        for (int x0 = 0; x0 < outputWidth; x0 += LANES) {
            const __mmask16 valid = lanes_between(0, outputWidth - x0);
            const size_t at = (size_t)y * outputWidth + x0;
            __m512 window[9];
            UNROLL for (int t = 0; t < 9; t++) window[t] = _mm512_loadu_ps(plane + (size_t)(y + t / 3) * stride + x0 + t % 3);
            UNROLL for (int g = 0; g < count; g++) {
                const size_t offset = (size_t)(o + g) * outputPlane + at;
                __m512 d = _mm512_maskz_loadu_ps(valid, outputGradient + offset);
                if (outputMask) d = relu_backward(d, _mm512_maskz_loadu_ps(valid, outputMask + offset));
                UNROLL for (int t = 0; t < 9; t++) sum[g][t] = _mm512_fmadd_ps(d, window[t], sum[g][t]);
                if (biasOfOutput) biasSum[g] = _mm512_add_ps(biasSum[g], d);
            }
        }
    }
    UNROLL for (int g = 0; g < count; g++) {
        UNROLL for (int t = 0; t < 9; t++) _mm512_storeu_ps(lanes + ((size_t)(o + g) * 9 + t) * LANES, sum[g][t]);
        if (biasOfOutput) _mm512_storeu_ps(lanes + ((size_t)outChannels * 9 + o + g) * LANES, biasSum[g]);
    }
}

/// `one_weight_fn` with AVX-512: two output channels at a time (18 tap sums + 2 bias sums + 9 windows
/// in 29 zmm registers), a lone last channel on its own.
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
