// The AVX-512 micro-kernels of the direct 3x3 convolution (see conv3x3_kernels.h; padding, packing,
// transposes and the choice of instruction set are in conv3x3.c). A block of 16 output channels is one
// zmm register; a tile holds two blocks (32 channels) x POSITIONS output positions or weight columns
// in 2 x POSITIONS of the 32 zmm registers (a lone last block: one x POSITIONS). Each accumulator sees
// the same FMAs in the same order as in the AVX2 kernels, so both give the same bits.
#include "conv3x3_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#ifndef CONV3X3_AVX512_POSITIONS
#define CONV3X3_AVX512_POSITIONS 12
#endif
#ifndef CONV3X3_AVX512_COLUMNS
#define CONV3X3_AVX512_COLUMNS 12
#endif

enum { BLOCK = CONV3X3_CHANNEL_BLOCK, POSITIONS = CONV3X3_AVX512_POSITIONS, COLUMNS = CONV3X3_AVX512_COLUMNS };

#define AVX512 __attribute__((target("avx512f,fma")))
#define AVX512W __attribute__((target("avx512f,fma,prfchw")))  // and PREFETCHW (every CPU with AVX-512 has it)
#define UNROLL _Pragma("clang loop unroll(full)")

/// One forward tile: `blockCount` (1 or 2) blocks of 16 channels x `size` (12, 8 or 4) positions whose windows
/// start at `corner[j]` (on kernel row `kyBegin`, column `kxBegin`), over the taps `[kyBegin, kyEnd) x [kxBegin,
/// kxEnd)`; sums go to `out + b * blockStride + position[j] * 16` for `j < count`. Inlined with constant
/// `blockCount` and `size` (and taps, for whole windows).
AVX512 static inline __attribute__((always_inline)) void forward_tile(
    float *out, size_t blockStride, const float *w, size_t weightStride, const float *const *corner,
    const int *position, int count, int channels, int kyBegin, int kyEnd, int kxBegin, int kxEnd, int sourceWidth,
    size_t plane, int blockCount, int size) {
    __m512 sum[2][POSITIONS];
    UNROLL for (int b = 0; b < blockCount; b++) {
        UNROLL for (int j = 0; j < size; j++) sum[b][j] = _mm512_setzero_ps();
    }
    for (int c = 0; c < channels; c++) {
        const float *q[POSITIONS];
        UNROLL for (int j = 0; j < size; j++) q[j] = corner[j] + (size_t)c * plane;
        const float *wc = w + (size_t)c * 9 * BLOCK;
        for (int ky = kyBegin; ky < kyEnd; ky++) {
            for (int kx = kxBegin; kx < kxEnd; kx++) {
                const int d = (ky - kyBegin) * sourceWidth + kx - kxBegin;
                __m512 weight[2];
                UNROLL for (int b = 0; b < blockCount; b++) {
                    weight[b] = _mm512_loadu_ps(wc + b * weightStride + (3 * ky + kx) * BLOCK);
                }
                UNROLL for (int j = 0; j < size; j++) {
                    const __m512 x = _mm512_set1_ps(q[j][d]);
                    UNROLL for (int b = 0; b < blockCount; b++) sum[b][j] = _mm512_fmadd_ps(weight[b], x, sum[b][j]);
                }
            }
        }
    }
    UNROLL for (int j = 0; j < size; j++) {
        if (j < count) {
            UNROLL for (int b = 0; b < blockCount; b++) {
                _mm512_storeu_ps(out + b * blockStride + (size_t)position[j] * BLOCK, sum[b][j]);
            }
        }
    }
}

/// `forward_tile` with a constant block count and tile size, for whole windows (constant taps) or not.
#define FORWARD_TILE(blockCount, size)                                                                           \
    do {                                                                                                          \
        if (full) {                                                                                               \
            forward_tile(out, blockStride, w, weightStride, corner, position, count, channels, 0, 3, 0, 3,        \
                         sourceWidth, plane, blockCount, size);                                                   \
        } else {                                                                                                  \
            forward_tile(out, blockStride, w, weightStride, corner, position, count, channels, r->kyBegin,        \
                         r->kyEnd, r->kxBegin, r->kxEnd, sourceWidth, plane, blockCount, size);                   \
        }                                                                                                         \
    } while (0)

AVX512 void conv3x3_tiles_avx512(float *rows, size_t blockStride, const conv3x3_rectangle *r, const float *packed,
                                 int channels, size_t plane, int sourceWidth, int outputWidth, int blocks) {
    const size_t weightStride = (size_t)channels * 9 * BLOCK;
    const int total = (r->rowEnd - r->rowBegin) * (r->columnEnd - r->columnBegin);
    const int full = r->kyBegin == 0 && r->kyEnd == 3 && r->kxBegin == 0 && r->kxEnd == 3;
    for (int start = 0; start < total; start += POSITIONS) {
        int position[POSITIONS];
        const float *corner[POSITIONS];
        const int count = conv3x3_tile_corners(r, start, POSITIONS, outputWidth, sourceWidth, position, corner);
        for (int b = 0; b < blocks; b += 2) {
            float *out = rows + b * blockStride;
            const float *w = packed + b * weightStride;
            // a short last tile of a rectangle (its edges are narrow) in the smallest of 4, 8 or 12 positions
            if (blocks - b >= 2) {
                if (count > 8) FORWARD_TILE(2, POSITIONS); else if (count > 4) FORWARD_TILE(2, 8); else FORWARD_TILE(2, 4);
            } else {
                if (count > 8) FORWARD_TILE(1, POSITIONS); else if (count > 4) FORWARD_TILE(1, 8); else FORWARD_TILE(1, 4);
            }
        }
    }
}

_Static_assert(COLUMNS <= 16, "a channel's sums over a tile's columns fill at most one zmm register");

/// One weight-gradient tile: `blockCount` (1 or 2) blocks of 16 output channels x COLUMNS columns
/// reading the input at `origin[j]`; adds the sums of the columns `first + j`, `j < count`, to
/// `weightGradient`, a channel's `count` sums at a time (one add per value, as a scalar loop would).
AVX512 static inline __attribute__((always_inline)) void weight_tile(
    float *weightGradient, const float *g, size_t blockStride, const float *const *origin, int first, int count,
    int outChannel, int outChannels, int columns, int outputHeight, int outputWidth, int wp, int blockCount) {
    __m512 sum[2][COLUMNS];
    UNROLL for (int b = 0; b < blockCount; b++) {
        UNROLL for (int j = 0; j < COLUMNS; j++) sum[b][j] = _mm512_setzero_ps();
    }
    const float *q[COLUMNS];
    UNROLL for (int j = 0; j < COLUMNS; j++) q[j] = origin[j];
    for (int y = 0; y < outputHeight; y++) {
        for (int index = y * wp; index < y * wp + outputWidth; index++) {
            __m512 gradient[2];
            UNROLL for (int b = 0; b < blockCount; b++) gradient[b] = _mm512_loadu_ps(g + b * blockStride);
            UNROLL for (int j = 0; j < COLUMNS; j++) {
                const __m512 x = _mm512_set1_ps(q[j][index]);
                UNROLL for (int b = 0; b < blockCount; b++) sum[b][j] = _mm512_fmadd_ps(gradient[b], x, sum[b][j]);
            }
            g += BLOCK;
        }
    }
    // channel k's sums over the columns: row k of the transposed [column, channel] tile
    const __mmask16 valid = (__mmask16)((1u << count) - 1);
    UNROLL for (int b = 0; b < blockCount; b++) {
        __m512 r[16];  // [column, channel], the columns past COLUMNS zero (the inner guard only keeps the index in range)
        UNROLL for (int j = 0; j < 16; j++) r[j] = j < COLUMNS ? sum[b][j < COLUMNS ? j : 0] : _mm512_setzero_ps();
        conv3x3_transpose16_avx512(r);
        for (int k = 0; k < BLOCK && outChannel + b * BLOCK + k < outChannels; k++) {
            float *dst = weightGradient + (size_t)(outChannel + b * BLOCK + k) * columns + first;
            _mm512_mask_storeu_ps(dst, valid, _mm512_add_ps(_mm512_maskz_loadu_ps(valid, dst), r[k]));
        }
    }
}

AVX512 void conv3x3_weight_tiles_avx512(float *weightGradient, const float *rows, const float *padded, int channels,
                                        int outChannels, int outputHeight, int outputWidth) {
    const int wp = outputWidth + 2, columns = channels * 9, blocks = conv3x3_blocks(outChannels);
    const size_t plane = (size_t)(outputHeight + 2) * wp, blockStride = (size_t)outputHeight * outputWidth * BLOCK;
    for (int first = 0; first < columns; first += COLUMNS) {
        // The tile's columns (a last, short tile repeats its last column) and where each reads the input.
        const int count = columns - first < COLUMNS ? columns - first : COLUMNS;
        const float *origin[COLUMNS];
        for (int j = 0; j < COLUMNS; j++) {
            const int column = first + (j < count ? j : count - 1), c = column / 9, t = column % 9;
            origin[j] = padded + (size_t)c * plane + (size_t)(t / 3) * wp + t % 3;
        }
        for (int b = 0; b < blocks; b += 2) {
            const float *g = rows + b * blockStride;
            if (blocks - b >= 2) {
                weight_tile(weightGradient, g, blockStride, origin, first, count, b * BLOCK, outChannels, columns,
                            outputHeight, outputWidth, wp, 2);
            } else {
                weight_tile(weightGradient, g, blockStride, origin, first, count, b * BLOCK, outChannels, columns,
                            outputHeight, outputWidth, wp, 1);
            }
        }
    }
}

AVX512 void conv3x3_pad_avx512(float *padded, const float *input, const float *mask, int channels, int height, int width,
                               int padding, int r0, int r1) {
    const int wp = width + 2 * padding, hp = r1 - r0;
    const __m512 zero = _mm512_setzero_ps();
    for (int c = 0; c < channels; c++) {
        float *plane = padded + (size_t)c * hp * wp;
        for (int r = r0; r < r1; r++) {
            if (r >= padding && r < padding + height) continue;
            for (int x = 0; x < wp; x += 16) {  // a row of padding
                const __mmask16 lanes = (__mmask16)(wp - x >= 16 ? 0xFFFF : (1u << (wp - x)) - 1);
                _mm512_mask_storeu_ps(plane + (size_t)(r - r0) * wp + x, lanes, zero);
            }
        }
        for (int y = r0 - padding > 0 ? r0 - padding : 0; y < height && y + padding < r1; y++) {
            float *dst = plane + (size_t)(y + padding - r0) * wp;
            const size_t offset = ((size_t)c * height + y) * width;
            for (int x = 0; x < padding; x++) dst[x] = 0, dst[padding + width + x] = 0;
            for (int x = 0; x < width; x += 16) {
                const __mmask16 lanes = (__mmask16)(width - x >= 16 ? 0xFFFF : (1u << (width - x)) - 1);
                __m512 v = _mm512_maskz_loadu_ps(lanes, input + offset + x);
                if (mask) v = _mm512_mul_ps(v, conv3x3_relu_factor_avx512(mask + offset + x, lanes));
                _mm512_mask_storeu_ps(dst + padding + x, lanes, v);
            }
        }
    }
}

void conv3x3_prefetch_avx512(const float *data, const float *mask, size_t count) {
    for (size_t i = 0; i < count; i += 16) {
        _mm_prefetch((const char *)(data + count + i), _MM_HINT_T1);
        if (mask) _mm_prefetch((const char *)(mask + count + i), _MM_HINT_T1);
    }
}

AVX512 void conv3x3_rows_avx512(float *rows, const float *source, const float *mask, int channels, int positions,
                                float *sums) {
    for (int o0 = 0; o0 < channels; o0 += BLOCK) {
        const int here = channels - o0 < BLOCK ? channels - o0 : BLOCK;
        __m512 sum = _mm512_setzero_ps();
        for (int p = 0; p < positions; p += 16) {
            const int count = positions - p < 16 ? positions - p : 16;
            const __mmask16 lanes = (__mmask16)(count == 16 ? 0xFFFF : (1u << count) - 1);
            __m512 r[16];  // [channel, position], then [position, channel]
            if (p + 80 <= positions) {
                // 16 channels (32 streams with the mask) are more than the hardware prefetcher follows: each
                // channel's line 4 steps ahead is asked for in L1 (E.2's Winograd weight gradient from memory
                // 56-57 -> 45 us an image)
                for (int k = 0; k < here; k++) {
                    const size_t at = (size_t)(o0 + k) * positions + p + 64;
                    _mm_prefetch((const char *)(source + at), _MM_HINT_T0);
                    if (mask) _mm_prefetch((const char *)(mask + at), _MM_HINT_T0);
                }
            }
            UNROLL for (int k = 0; k < 16; k++) {
                if (k < here) {
                    const size_t at = (size_t)(o0 + k) * positions + p;
                    r[k] = _mm512_maskz_loadu_ps(lanes, source + at);
                    if (mask) r[k] = _mm512_mul_ps(r[k], conv3x3_relu_factor_avx512(mask + at, lanes));
                } else {
                    r[k] = _mm512_setzero_ps();
                }
            }
            conv3x3_transpose16_avx512(r);
            // each lane adds its channel's values in position order, as the scalar loop; the positions past
            // `count` add +0, which leaves a sum that started at +0 unchanged
            UNROLL for (int j = 0; j < 16; j++) sum = _mm512_add_ps(sum, r[j]);
            if (rows) {
                float *dst = rows + ((size_t)(o0 / BLOCK) * positions + p) * BLOCK;
                for (int j = 0; j < count; j++) _mm512_storeu_ps(dst + (size_t)j * BLOCK, r[j]);
            }
        }
        if (sums) {
            float lane[16];
            _mm512_storeu_ps(lane, sum);
            for (int k = 0; k < here; k++) sums[o0 + k] += lane[k];
        }
    }
}

AVX512W void conv3x3_store_avx512(float *output, const float *rows, const float *bias, int relu, int outChannels,
                                 int positions, size_t outputStride) {
    const __m512 zero = _mm512_setzero_ps();
    for (int o0 = 0; o0 < outChannels; o0 += BLOCK) {
        const int here = outChannels - o0 < BLOCK ? outChannels - o0 : BLOCK;
        const float *src = rows + (size_t)(o0 / BLOCK) * positions * BLOCK;
        for (int p = 0; p < positions; p += 16) {
            const int count = positions - p < 16 ? positions - p : 16;
            const __mmask16 lanes = (__mmask16)(count == 16 ? 0xFFFF : (1u << count) - 1);
            __m512 r[16];  // [position, channel], then [channel, position]
            UNROLL for (int j = 0; j < 16; j++) {
                r[j] = j < count ? _mm512_loadu_ps(src + (size_t)(p + j) * BLOCK) : zero;
            }
            if (p + 80 <= positions) {
                // each channel's output line 4 steps ahead, asked for with the intent to write (prefetchw): 16 store
                // streams are more than the hardware prefetcher follows (E.2's forward from memory, 128 images on 2
                // threads, 3.26-3.50 -> 2.96-3.24 ms)
                for (int k = 0; k < here; k++) {
                    _mm_prefetch((const char *)(output + (size_t)(o0 + k) * outputStride + p + 64), _MM_HINT_ET0);
                }
            }
            conv3x3_transpose16_avx512(r);
            UNROLL for (int k = 0; k < 16; k++) {
                if (k < here) {
                    __m512 v = _mm512_add_ps(r[k], _mm512_set1_ps(bias ? bias[o0 + k] : 0.0f));
                    if (relu) v = _mm512_max_ps(v, zero);
                    _mm512_mask_storeu_ps(output + (size_t)(o0 + k) * outputStride + p, lanes, v);
                }
            }
        }
    }
}
#else
typedef int conv3x3_avx512_unused;  // ISO C wants a declaration in every file
#endif
