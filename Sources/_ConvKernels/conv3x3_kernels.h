// The micro-kernels of the direct 3x3 convolution, one pair per instruction set (internal to
// `_ConvKernels`; `conv3x3.c` pads, packs, transposes and picks a pair by `conv3x3_isa`).
#ifndef CONV3X3_KERNELS_H
#define CONV3X3_KERNELS_H

#include "conv3x3.h"

/// The output at the positions `[first, last)` (row-major), as `rows [blocks, OH * OW, 16]` (channels
/// innermost), from `padded [C, OH + 2, OW + 2]` and `packed [blocks, C, 9, 16]`, over the kernel rows
/// `[kyBegin, kyEnd)` only (the others would read only padding for these positions). Each output is
/// summed over (c, ky, kx) in that order, with one FMA per term, starting from +0.
typedef void (*conv3x3_tiles_fn)(float *rows, const float *padded, const float *packed, int channels,
                                 int outputHeight, int outputWidth, int first, int last, int kyBegin, int kyEnd,
                                 int blocks);

/// `weightGradient [O, C * 9] +=` the products of `rows [blocks, OH * OW, 16]` (the output gradient,
/// channels innermost) and `padded [C, OH + 2, OW + 2]`, each column `(c, ky, kx)` summed over the
/// positions in row-major order, one FMA per term, starting from +0, then added.
typedef void (*conv3x3_weight_tiles_fn)(float *weightGradient, const float *rows, const float *padded, int channels,
                                        int outChannels, int outputHeight, int outputWidth);

/// The positions of the tile that starts at `start` (at most `size`, up to `last`; a short last tile
/// repeats its last position) and the corners of their 3x3 windows in `padded` (rows `wp` wide, from
/// kernel row `kyBegin`), for output rows `ow` wide; returns how many positions are real.
static inline int conv3x3_tile_corners(int start, int last, int size, int ow, int wp, int kyBegin, const float *padded,
                                       int *position, const float **corner) {
    const int count = last - start < size ? last - start : size;
    for (int j = 0; j < size; j++) {
        position[j] = start + (j < count ? j : count - 1);
        corner[j] = padded + (size_t)(position[j] / ow + kyBegin) * wp + position[j] % ow;
    }
    return count;
}

#if defined(__x86_64__)
/// AVX-512 (`conv3x3_avx512.c`): tiles of 32 output channels (two zmm per position or column).
void conv3x3_tiles_avx512(float *rows, const float *padded, const float *packed, int channels, int outputHeight,
                          int outputWidth, int first, int last, int kyBegin, int kyEnd, int blocks);
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
