// The micro-kernels of the direct 3x3 convolution, one pair per instruction set (internal to
// `_ConvKernels`; `conv3x3.c` pads, packs, transposes and picks a pair by `conv3x3_isa`).
#ifndef CONV3X3_KERNELS_H
#define CONV3X3_KERNELS_H

#include "conv3x3.h"

/// A rectangle of output positions whose 3x3 windows all reach the image through the same kernel rows
/// `[kyBegin, kyEnd)` and columns `[kxBegin, kxEnd)`: the other taps would read only padding, so a
/// rectangle's positions read the image itself (no padded copy) and skip them. Rows count from the
/// first row of the band being computed; `first` is the input under tap `(kyBegin, kxBegin)` of position
/// `(rowBegin, columnBegin)`, and the input's rows are `sourceWidth` floats apart.
typedef struct {
    int rowBegin, rowEnd, columnBegin, columnEnd;
    int kyBegin, kyEnd, kxBegin, kxEnd;
    const float *first;
} conv3x3_rectangle;

/// The output at the positions of `rectangle`, as `rows [blocks, P, 16]` (channels innermost; block `b` at
/// `rows + b * blockStride`, position `(y, x)` at `(y * outputWidth + x) * 16` in it) from the input (channel
/// planes `plane` floats apart, rows `sourceWidth` apart) and `packed [blocks, C, 9, 16]`. Each output is
/// summed over (c, ky, kx) in that order over the rectangle's taps, with one FMA per term, starting from +0.
typedef void (*conv3x3_tiles_fn)(float *rows, size_t blockStride, const conv3x3_rectangle *rectangle,
                                 const float *packed, int channels, size_t plane, int sourceWidth, int outputWidth,
                                 int blocks);

/// `weightGradient [O, C * 9] +=` the products of `rows [blocks, OH * OW, 16]` (the output gradient,
/// channels innermost) and `padded [C, OH + 2, OW + 2]`, each column `(c, ky, kx)` summed over the
/// positions in row-major order, one FMA per term, starting from +0, then added.
typedef void (*conv3x3_weight_tiles_fn)(float *weightGradient, const float *rows, const float *padded, int channels,
                                        int outChannels, int outputHeight, int outputWidth);

/// The positions `start ..< start + size` of `rectangle` (row-major in it; past its end, a short last tile
/// repeats its last position) as indices into rows `outputWidth` wide, and the corners of their windows;
/// returns how many positions are real.
static inline int conv3x3_tile_corners(const conv3x3_rectangle *rectangle, int start, int size, int outputWidth,
                                       int sourceWidth, int *position, const float **corner) {
    const int width = rectangle->columnEnd - rectangle->columnBegin;
    const int total = (rectangle->rowEnd - rectangle->rowBegin) * width;
    const int count = total - start < size ? total - start : size;
    for (int j = 0; j < size; j++) {
        const int k = start + (j < count ? j : count - 1), row = k / width, column = k % width;
        position[j] = (rectangle->rowBegin + row) * outputWidth + rectangle->columnBegin + column;
        corner[j] = rectangle->first + (size_t)row * sourceWidth + column;
    }
    return count;
}

#if defined(__x86_64__)
#include <immintrin.h>

/// `output [O, P]` (channel `o` at `output + o * outputStride`) = `relu?(rows [blocks, P, 16]` transposed `+ bias)`
/// with AVX2 (`conv3x3.c`; bias nil: + 0; ReLU `max(v, 0)`): the same values as `conv3x3_store_avx512`.
void conv3x3_store_avx2(float *output, const float *rows, const float *bias, int relu, int outChannels, int positions,
                        int blocks, size_t outputStride);

/// `rows [blocks, P, 16]` (nil: not written) = `source [C, P]` (times `mask > 0` when given) with the channels
/// innermost, the missing channels of the last block zero; `sums` (nil: none) `[C] +=` each channel's sum over the
/// positions in order, started from +0 (`conv3x3.c`, AVX2; `conv3x3_rows_avx512` gives the same values).
void conv3x3_rows_avx2(float *rows, const float *source, const float *mask, int channels, int positions, float *sums);

/// The lanes `[lo, hi)` of an AVX2 mask (all bits set inside, none outside; `lo` may be negative, `hi` past 8).
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) __m256i conv3x3_lanes_avx2(int lo, int hi) {
    const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(index, _mm256_set1_epi32(lo - 1)), _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), index));
}

/// The even (`odd` 0) or odd (1) lanes of `x0` then of `x1`: `[x0[0], x0[2], .., x1[6]]` or `[x0[1], .., x1[7]]`.
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) __m256 conv3x3_deinterleave_avx2(
    __m256 x0, __m256 x1, int odd) {
    const __m256 s = odd ? _mm256_shuffle_ps(x0, x1, 0xDD) : _mm256_shuffle_ps(x0, x1, 0x88);  // 0 2 8 10 | 4 6 12 14
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), 0xD8));
}

/// `v * (mask > 0 ? 1 : 0)` (false for NaN), a fused ReLU's backward, with AVX2 (the same values as the portable
/// expression).
__attribute__((target("avx2"))) static inline __attribute__((always_inline)) __m256 conv3x3_relu_backward_avx2(
    __m256 v, __m256 mask) {
    return _mm256_mul_ps(v, _mm256_and_ps(_mm256_cmp_ps(mask, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_set1_ps(1.0f)));
}

/// Ones where `mask > 0` (false for NaN) in `lanes`, zeros elsewhere: the factor of a fused ReLU's backward.
__attribute__((target("avx512f,fma"))) static inline __attribute__((always_inline)) __m512 conv3x3_relu_factor_avx512(
    const float *mask, __mmask16 lanes) {
    const __mmask16 positive = _mm512_mask_cmp_ps_mask(lanes, _mm512_maskz_loadu_ps(lanes, mask), _mm512_setzero_ps(),
                                                       _CMP_GT_OQ);
    return _mm512_maskz_mov_ps(positive, _mm512_set1_ps(1.0f));
}

/// `r[k][j]` becomes `r[j][k]` (a 16 x 16 transpose in registers).
__attribute__((target("avx512f,fma"))) static inline __attribute__((always_inline)) void conv3x3_transpose16_avx512(
    __m512 r[16]) {
    __m512 t[16];
    _Pragma("clang loop unroll(full)") for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    _Pragma("clang loop unroll(full)") for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    _Pragma("clang loop unroll(full)") for (int i = 0; i < 16; i += 8) {
        _Pragma("clang loop unroll(full)") for (int k = 0; k < 4; k++) {
            t[i + k] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0x88);
            t[i + k + 4] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0xDD);
        }
    }
    _Pragma("clang loop unroll(full)") for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
        r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xDD);
    }
}

/// AVX-512 (`conv3x3_avx512.c`): tiles of 32 output channels (two zmm per position or column).
void conv3x3_tiles_avx512(float *rows, size_t blockStride, const conv3x3_rectangle *rectangle, const float *packed,
                          int channels, size_t plane, int sourceWidth, int outputWidth, int blocks);
void conv3x3_weight_tiles_avx512(float *weightGradient, const float *rows, const float *padded, int channels,
                                 int outChannels, int outputHeight, int outputWidth);

/// `padded [C, r1 - r0, W + 2p]` = the rows `[r0, r1)` of `input` `[C, H, W]` (times `mask > 0` when given) inside
/// a frame of `padding` zeros (all of `[C, H + 2p, W + 2p]` for `r0 = 0`, `r1 = H + 2p`).
void conv3x3_pad_avx512(float *padded, const float *input, const float *mask, int channels, int height, int width,
                        int padding, int r0, int r1);

/// `rows [blocks, P, 16]` (nil: not written) = `source [C, P]` (times `mask > 0` when given) with the channels
/// innermost, the missing channels of the last block zero; `sums` (nil: none) `[C] +=` each channel's sum
/// over the positions in order, started from +0.
void conv3x3_rows_avx512(float *rows, const float *source, const float *mask, int channels, int positions,
                         float *sums);

/// Asks for the `count` floats that follow `data` (and those that follow `mask`, when given) in the L2 cache:
/// the next image's, while this one is computed.
void conv3x3_prefetch_avx512(const float *data, const float *mask, size_t count);

/// `output [O, P]` (channel `o` at `output + o * outputStride`) = `relu?(rows [blocks, P, 16]` transposed `+ bias)`
/// (bias nil: + 0; ReLU `max(v, 0)`).
void conv3x3_store_avx512(float *output, const float *rows, const float *bias, int relu, int outChannels,
                          int positions, size_t outputStride);
#endif

#endif
