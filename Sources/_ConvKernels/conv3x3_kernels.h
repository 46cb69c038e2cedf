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

#if defined(__x86_64__)
/// AVX-512 (`conv3x3_avx512.c`): tiles of 32 output channels (two zmm per position or column).
void conv3x3_tiles_avx512(float *rows, const float *padded, const float *packed, int channels, int outputHeight,
                          int outputWidth, int first, int last, int kyBegin, int kyEnd, int blocks);
void conv3x3_weight_tiles_avx512(float *weightGradient, const float *rows, const float *padded, int channels,
                                 int outChannels, int outputHeight, int outputWidth);
#endif

#endif
