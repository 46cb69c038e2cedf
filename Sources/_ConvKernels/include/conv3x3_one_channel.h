#ifndef CONV3X3_ONE_CHANNEL_H
#define CONV3X3_ONE_CHANNEL_H

#include <stddef.h>

/// Direct 3x3, stride-1 convolutions with ONE channel on one side (AVX2 + FMA3 or AVX-512, no im2col):
/// the first layer of an image network (1 -> O channels) and the last layer of its decoder (C -> 1),
/// where the kernels of `conv3x3.h` would leave most of their 16-channel vector lanes empty.
/// Vectors run along the output rows instead: a vector holds 16 (AVX-512) or 8 (AVX2) neighbouring
/// output positions, so the results are written in NCHW order with no transpose.
///
///     output[o, y, x] = relu?(bias[o] + sum_{c, ky, kx} w[o, c, ky, kx] * padded[c, y + ky, x + kx])
///
/// with `C == 1` or `O == 1`; `padded`, `mask`, `bias` and `relu` as in `conv3x3_image`.
///
/// - One input channel (`C == 1`): per tile of rows x one vector of positions, the shifted input rows
///   ("windows") stay in registers and each output channel is nine FMAs per row, each weight broadcast
///   once for the tile's rows.
/// - One output channel (`O == 1`): per tile of up to 12 (AVX-512) or 6 (AVX2) output rows x one
///   vector, each input row is loaded three times (one per kx, masked at the image's edges) and feeds up
///   to three output rows with the channel's nine weights held in registers.
///
/// Summation order: each output starts from +0 and adds one FMA per term in (c, ky, kx) order, all nine
/// taps of every channel (a tap over the padding multiplies a zero), then the bias (+0 without one),
/// then the ReLU `max(v, 0)`. Both instruction sets perform these operations for every output, so they
/// give the same bits, whatever the thread count or the batch.
///
/// `isa`: `CONV3X3_ISA_AVX2` or `CONV3X3_ISA_AVX512` (see `conv3x3_best_isa`), never `CONV3X3_ISA_NONE`.

/// Floats of scratch memory for `conv3x3_one_channel_image`: the packed weights, the padded input
/// plane (`C == 1`) or the masked input `[C, H, W]` (`O == 1`, with a mask).
size_t conv3x3_one_channel_scratch_count(int channels, int height, int width, int outChannels, int padding);

/// One image: `output` `[O, OH, OW]`, `input` and `mask` (nil or a fused ReLU's output) `[C, H, W]`,
/// `weight` `[O, C, 3, 3]`, or `[C, O, 3, 3]` read rotated by 180 degrees when `rotated` (as in
/// `conv3x3_pack`), `bias` nil or `[O]`, `relu` nonzero for `max(0, .)` after the bias. `C == 1` or `O == 1`.
void conv3x3_one_channel_image(
    float *output, const float *input, const float *mask, const float *weight, int rotated, const float *bias,
    int relu, int channels, int height, int width, int outChannels, int padding, float *scratch, int isa);

/// The output rows `[y0, y1)` (clamped to the output's) of `conv3x3_one_channel_image` with one input channel
/// (`C == 1`), the same bits; the other rows of `output` are left as they are. `scratch`: as for the whole image.
/// How the threads split one image (batch-1 inference) so that each writes, and later reads, its own rows.
void conv3x3_one_input_image_rows(
    float *output, const float *input, const float *mask, const float *weight, int rotated, const float *bias,
    int relu, int height, int width, int outChannels, int padding, int y0, int y1, float *scratch, int isa);

/// The output rows `[y0, y1)` (clamped to the output's) of `conv3x3_one_channel_image` with one output channel
/// (`O == 1`), the same bits; the other rows of `output` are left as they are. `scratch`: as for the whole image.
/// How the threads split one image (batch-1 inference): each reads mostly the input rows its thread wrote in the
/// layer before (split by rows too), where the same rows of every channel are.
void conv3x3_one_output_image_rows(
    float *output, const float *input, const float *mask, const float *weight, int rotated, const float *bias,
    int relu, int channels, int height, int width, int padding, int y0, int y1, float *scratch, int isa);

/// Floats of scratch memory for `conv3x3_one_channel_weight_gradient`.
size_t conv3x3_one_channel_weight_scratch_count(int height, int width, int outChannels, int padding);

/// The weight gradient of a convolution with one input channel, over `images` consecutive images:
/// `weightGradient [O, 1, 3, 3] += sum_{n, y, x} dY[n, o, y, x] * padded[n, 0, y + ky, x + kx]` with
/// `dY` = `outputGradient` `[N, O, OH, OW]` (times `outputMask > 0` when given) and `padded` = `input`
/// `[N, 1, H, W]` (times `inputMask > 0` when given) padded as in `conv3x3_image`. `biasGradient` (nil:
/// none) `+=` the channel sums of dY (`[O]`) or, with `biasOfInput`, of the masked input (`[1]`).
///
/// Summation order: each sum has 16 partial sums, lane j taking the positions `x = 16k + j` (over the
/// images in order, then k, then the rows; a lane past the row's end adds `0 * input`); the 16 lanes are
/// then added pairwise (j + 8, then + 4, + 2, + 1) and the total added to the gradient once per call.
/// The input's sums take lane j = column j mod 16 of the padded plane (scratch layout), row by row. The
/// AVX2 kernel keeps the 16 lanes in two registers and gives the same bits.
void conv3x3_one_channel_weight_gradient(
    float *weightGradient, float *biasGradient, int biasOfInput, const float *input, const float *inputMask,
    const float *outputGradient, const float *outputMask, int images, int height, int width, int outChannels,
    int padding, float *scratch, int isa);

#endif
