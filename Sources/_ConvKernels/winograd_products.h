// The matrix products of Winograd's minimal filtering (internal to `_ConvKernels`), shared by F(2x2, 3x3)
// (`conv3x3_winograd.c`, 16 points) and F(4x4, 3x3) (`conv3x3_winograd4.c`, 36 points): per point k,
// `M[k] = U[k] V[k]` on register tiles of output channels x tiles, each sum over the input channels in order with
// one FMA per term from +0 (AVX-512 and AVX2 the same FMAs in the same order, so the same bits).
#ifndef WINOGRAD_PRODUCTS_H
#define WINOGRAD_PRODUCTS_H

#include <stddef.h>
#include <string.h>
#include "conv3x3.h"

/// Tiles per AVX-512 register tile (and the multiple the transformed buffers' rows are padded to).
enum { WINOGRAD_BLOCK = CONV3X3_CHANNEL_BLOCK, WINOGRAD_GROUP = 12 };

/// Where the products read and write: `points` products over `tiles` tiles, `V [points, C, stride]` (`vPoint` floats
/// from one point to the next), `M [blocks, points, stride, 16]` (`mPoint` floats from one point to the next).
typedef struct {
    int points, tiles;
    size_t stride, vPoint, mPoint;
} winograd_products_layout;

/// The transform of one 3 x 3 kernel `g` (row-major) to `points` values `u`.
typedef void (*winograd_kernel_transform)(float *u, const float g[9]);

/// `packed [points, blocks, C, 16]` (point, output block, input channel, output channel in the block) = `transform` of
/// every kernel of `weight` (`[O, C, 3, 3]`, or `[C, O, 3, 3]` turned by 180 degrees when `rotated`); the missing
/// channels of the last block zero. One block of 16 output channels and one input channel at a time, so that each
/// point's row is written whole and in order. `points` at most 36.
static void winograd_pack(float *packed, const float *weight, int outChannels, int inChannels, int rotated, int points,
                          winograd_kernel_transform transform) {
    const int blocks = conv3x3_blocks(outChannels);
    for (int blockIndex = 0; blockIndex < blocks; blockIndex++) {
        for (int c = 0; c < inChannels; c++) {
            float u[36][WINOGRAD_BLOCK] = {{0}};  // [point, output channel in the block]
            for (int lane = 0; lane < WINOGRAD_BLOCK && blockIndex * WINOGRAD_BLOCK + lane < outChannels; lane++) {
                const int o = blockIndex * WINOGRAD_BLOCK + lane;
                float g[9], t[36];
                if (rotated) {
                    const float *src = weight + ((size_t)c * outChannels + o) * 9;
                    for (int i = 0; i < 9; i++) g[i] = src[8 - i];
                } else {
                    memcpy(g, weight + ((size_t)o * inChannels + c) * 9, sizeof g);
                }
                transform(t, g);
                for (int k = 0; k < points; k++) u[k][lane] = t[k];
            }
            for (int k = 0; k < points; k++) {
                memcpy(packed + (((size_t)k * blocks + blockIndex) * inChannels + c) * WINOGRAD_BLOCK, u[k], sizeof u[k]);
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define WINOGRAD_AVX512 __attribute__((target("avx512f,fma")))
#define WINOGRAD_AVX2 __attribute__((target("avx2,fma")))
#define WINOGRAD_INLINE static inline __attribute__((always_inline))
#define WINOGRAD_UNROLL _Pragma("clang loop unroll(full)")

/// One AVX-512 tile of the products: `blockCount` (1 or 2) blocks of 16 output channels x `size` (12, 8 or 4)
/// tiles; `u` the first block's `[C, 16]` (the next `uStride` floats on), `v` the first tile's `[C]` (`vStride`
/// apart); sums go to `out + b * outStride + j * 16`.
WINOGRAD_AVX512 WINOGRAD_INLINE void products_tile_avx512(float *out, size_t outStride, const float *u, size_t uStride, const float *v,
                                        size_t vStride, int channels, int blockCount, int size) {
    __m512 sum[2][WINOGRAD_GROUP];
    WINOGRAD_UNROLL for (int b = 0; b < blockCount; b++) {
        WINOGRAD_UNROLL for (int j = 0; j < size; j++) sum[b][j] = _mm512_setzero_ps();
    }
    for (int c = 0; c < channels; c++) {
        __m512 weight[2];
        WINOGRAD_UNROLL for (int b = 0; b < blockCount; b++) weight[b] = _mm512_loadu_ps(u + b * uStride + (size_t)c * WINOGRAD_BLOCK);
        const float *vc = v + (size_t)c * vStride;
        WINOGRAD_UNROLL for (int j = 0; j < size; j++) {
            const __m512 x = _mm512_set1_ps(vc[j]);
            WINOGRAD_UNROLL for (int b = 0; b < blockCount; b++) sum[b][j] = _mm512_fmadd_ps(weight[b], x, sum[b][j]);
        }
    }
    WINOGRAD_UNROLL for (int b = 0; b < blockCount; b++) {
        WINOGRAD_UNROLL for (int j = 0; j < size; j++) _mm512_storeu_ps(out + b * outStride + (size_t)j * WINOGRAD_BLOCK, sum[b][j]);
    }
}

#define PRODUCTS_TILE_AVX512(blockCount, size) \
    products_tile_avx512(out, outStride, u, uStride, vt, stride, channels, blockCount, size)

/// `M [blocks, points, stride, 16]` = `U [points, blocks, C, 16]` x `V [points, C, stride]` with AVX-512.
WINOGRAD_AVX512 static void winograd_products_avx512(float *m, const float *packed, const float *v, int channels, int blocks,
                                                     winograd_products_layout b) {
    const size_t stride = b.stride, uStride = (size_t)channels * WINOGRAD_BLOCK, outStride = b.points * b.mPoint;
    for (int k = 0; k < b.points; k++) {
        for (int t0 = 0; t0 < b.tiles; t0 += WINOGRAD_GROUP) {
            const int count = b.tiles - t0;
            const float *vt = v + k * b.vPoint + t0;
            for (int blockIndex = 0; blockIndex < blocks; blockIndex += 2) {
                float *out = m + ((size_t)blockIndex * b.points + k) * b.mPoint + (size_t)t0 * WINOGRAD_BLOCK;
                const float *u = packed + ((size_t)k * blocks + blockIndex) * uStride;
                if (blocks - blockIndex >= 2) {
                    if (count > 8) PRODUCTS_TILE_AVX512(2, WINOGRAD_GROUP); else if (count > 4) PRODUCTS_TILE_AVX512(2, 8); else PRODUCTS_TILE_AVX512(2, 4);
                } else {
                    if (count > 8) PRODUCTS_TILE_AVX512(1, WINOGRAD_GROUP); else if (count > 4) PRODUCTS_TILE_AVX512(1, 8); else PRODUCTS_TILE_AVX512(1, 4);
                }
            }
        }
    }
}

/// One AVX2 tile of the products: 16 output channels x `size` (1 to 6, a constant once inlined) tiles in `2 size`
/// ymm registers; `u` the block's `[C, 16]`, `v` the first tile's `[C]` (`stride` apart); sums to `out + j * 16`.
WINOGRAD_AVX2 WINOGRAD_INLINE void products_tile_avx2(float *out, const float *u, const float *v, size_t stride, int channels,
                                    const int size) {
    __m256 sum[6][2];
    WINOGRAD_UNROLL for (int j = 0; j < size; j++) sum[j][0] = sum[j][1] = _mm256_setzero_ps();
    for (int c = 0; c < channels; c++) {
        const __m256 w0 = _mm256_loadu_ps(u + (size_t)c * WINOGRAD_BLOCK), w1 = _mm256_loadu_ps(u + (size_t)c * WINOGRAD_BLOCK + 8);
        const float *vc = v + (size_t)c * stride;
        WINOGRAD_UNROLL for (int j = 0; j < size; j++) {
            const __m256 x = _mm256_broadcast_ss(vc + j);
            sum[j][0] = _mm256_fmadd_ps(w0, x, sum[j][0]);
            sum[j][1] = _mm256_fmadd_ps(w1, x, sum[j][1]);
        }
    }
    WINOGRAD_UNROLL for (int j = 0; j < size; j++) {
        _mm256_storeu_ps(out + (size_t)j * WINOGRAD_BLOCK, sum[j][0]);
        _mm256_storeu_ps(out + (size_t)j * WINOGRAD_BLOCK + 8, sum[j][1]);
    }
}

/// `M [blocks, points, stride, 16]` = `U [points, blocks, C, 16]` x `V [points, C, stride]` with AVX2: tiles of 16 output
/// channels x 6 tiles in 12 ymm registers (the same FMAs in the same order as `products_avx512`), and a last tile
/// of the band's remaining 1 to 5 tiles, so that no products are computed for tiles past the band's (a band of 5
/// x 5 tiles, say, would otherwise compute 30).
WINOGRAD_AVX2 static void winograd_products_avx2(float *m, const float *packed, const float *v, int channels, int blocks,
                                                 winograd_products_layout b) {
    const size_t stride = b.stride, uStride = (size_t)channels * WINOGRAD_BLOCK;
    for (int k = 0; k < b.points; k++) {
        for (int t0 = 0; t0 < b.tiles; t0 += 6) {
            const int count = b.tiles - t0;
            const float *vt = v + k * b.vPoint + t0;
            for (int blockIndex = 0; blockIndex < blocks; blockIndex++) {
                const float *u = packed + ((size_t)k * blocks + blockIndex) * uStride;
                float *out = m + ((size_t)blockIndex * b.points + k) * b.mPoint + (size_t)t0 * WINOGRAD_BLOCK;
                switch (count >= 6 ? 6 : count) {
                    case 6: products_tile_avx2(out, u, vt, stride, channels, 6); break;
                    case 5: products_tile_avx2(out, u, vt, stride, channels, 5); break;
                    case 4: products_tile_avx2(out, u, vt, stride, channels, 4); break;
                    case 3: products_tile_avx2(out, u, vt, stride, channels, 3); break;
                    case 2: products_tile_avx2(out, u, vt, stride, channels, 2); break;
                    default: products_tile_avx2(out, u, vt, stride, channels, 1); break;
                }
            }
        }
    }
}

#endif

#endif
