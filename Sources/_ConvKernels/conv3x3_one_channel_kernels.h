// The micro-kernels of the one-channel direct 3x3 convolutions (internal to `_ConvKernels`;
// `conv3x3_one_channel.c` pads, packs, masks and picks a kernel by instruction set; see
// conv3x3_one_channel.h for the mathematics and the summation order every kernel keeps).
#ifndef CONV3X3_ONE_CHANNEL_KERNELS_H
#define CONV3X3_ONE_CHANNEL_KERNELS_H

#include <stdint.h>

#include "conv3x3_one_channel.h"

/// Output positions per AVX-512 vector, and lanes of the weight gradient's partial sums in both instruction sets.
#define ONE_CHANNEL_LANES 16

/// Floats per row of the padded input plane: room for every window of every vector of an output row
/// (`16 * ceil(OW / 16) + 2` floats) and for whole 16-float chunks of the plane's rows, zero past the image.
static inline int one_channel_stride(int outputWidth) {
    return ONE_CHANNEL_LANES * ((outputWidth + ONE_CHANNEL_LANES - 1) / ONE_CHANNEL_LANES + 1);
}

/// `base + offset` floats, for masked loads whose masked-off lanes may lie outside the image (the
/// instructions do not touch them); computed on integers so that no out-of-object pointer arithmetic happens.
static inline const float *one_channel_offset(const float *base, ptrdiff_t offset) {
    return (const float *)((uintptr_t)base + (uintptr_t)(offset * (ptrdiff_t)sizeof(float)));
}

/// One input channel: the output rows `[y0, y1)` of `output [O, OH, OW]` from the padded plane `[OH + 2, stride]`
/// and `packed` `[16 * ceil(O / 16), 9]` (zero past O), adding `bias` (nil: +0) and applying `relu`.
typedef void (*one_input_fn)(float *output, const float *plane, int stride, const float *packed, const float *bias,
                             int relu, int outChannels, int outputHeight, int outputWidth, int y0, int y1);

/// One output channel: the rows `[y0, y1)` of `output [OH, OW]` from `input [C, H, W]` (unpadded; the edges
/// are masked loads) and `packed [C, 9]`, adding `bias` and applying `relu`. `prefetch`: `input` is an image of
/// a batch in memory (the next image follows it), not a copy in cache; the AVX-512 kernel then prefetches.
typedef void (*one_output_fn)(float *output, const float *input, const float *packed, float bias, int relu,
                              int channels, int height, int width, int padding, int y0, int y1, int prefetch);

/// The frame tiles of a one-output kernel's rows `[yBegin, yEnd)`: the top frame (output rows `[0, begin)`,
/// `frame` = `big` or 4 rows, whose window rows above the image are zeros) and the bottom one (`[end, outputHeight)`)
/// as tiles of `frame` rows when the rows take them whole, else their rows one by one as `general` tiles (each
/// window row checked). `TILE(y, rows, zeroTop, zeroBottom, general)` and the variables named here are the
/// kernel's; `big` (8 with AVX-512, 6 with AVX2) a constant, so that every tile's shape is one.
#define ONE_OUTPUT_FRAMES(big)                                                                   \
    do {                                                                                         \
        if (yBegin == 0 && yEnd >= begin) {                                                      \
            if (frame == (big) && padding == 1) TILE(0, big, 1, 0, 0);                           \
            if (frame == (big) && padding == 2) TILE(0, big, 2, 0, 0);                           \
            if (frame == 4 && padding == 1) TILE(0, 4, 1, 0, 0);                                 \
            if (frame == 4 && padding == 2) TILE(0, 4, 2, 0, 0);                                 \
        } else {                                                                                 \
            for (int y = yBegin; y < yEnd && y < begin; y++) TILE(y, 1, 0, 0, 1);                \
        }                                                                                        \
        if (yEnd == outputHeight && yBegin <= end) {                                             \
            if (frame == (big) && padding == 1) TILE(outputHeight - (big), big, 0, 1, 0);        \
            if (frame == (big) && padding == 2) TILE(outputHeight - (big), big, 0, 2, 0);        \
            if (frame == 4 && padding == 1) TILE(outputHeight - 4, 4, 0, 1, 0);                  \
            if (frame == 4 && padding == 2) TILE(outputHeight - 4, 4, 0, 2, 0);                  \
        } else {                                                                                 \
            for (int y = yBegin > end ? yBegin : end; y < yEnd; y++) TILE(y, 1, 0, 0, 1);        \
        }                                                                                        \
    } while (0)

/// One image of the weight gradient: `lanes [O * 9 (+ O), 16] +=` the products of `outputGradient
/// [O, OH, OW]` (times `outputMask > 0` when given) with the windows of the padded plane `[OH + 2, stride]`
/// (and the sums of the masked output gradient when `biasOfOutput`), lane j taking the positions x = 16k + j.
typedef void (*one_weight_fn)(float *lanes, const float *plane, int stride, const float *outputGradient,
                              const float *outputMask, int outChannels, int outputHeight, int outputWidth,
                              int biasOfOutput);

/// `output[i] = input[i] * (mask[i] > 0 ? 1 : 0)` for `count` floats (the element-wise ReLU's backward).
typedef void (*one_relu_backward_fn)(float *output, const float *input, const float *mask, size_t count);

#if defined(__x86_64__)
void conv3x3_one_relu_backward_avx512(float *output, const float *input, const float *mask, size_t count);
void conv3x3_one_input_avx512(float *output, const float *plane, int stride, const float *packed, const float *bias,
                              int relu, int outChannels, int outputHeight, int outputWidth, int y0, int y1);
void conv3x3_one_output_avx512(float *output, const float *input, const float *packed, float bias, int relu,
                               int channels, int height, int width, int padding, int y0, int y1, int prefetch);
void conv3x3_one_weight_avx512(float *lanes, const float *plane, int stride, const float *outputGradient,
                               const float *outputMask, int outChannels, int outputHeight, int outputWidth,
                               int biasOfOutput);
#endif

#endif
