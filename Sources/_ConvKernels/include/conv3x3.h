#ifndef CONV3X3_H
#define CONV3X3_H

#include <stddef.h>

/// Direct 3x3, stride-1 convolution of one NCHW image with AVX2 + FMA3 (no im2col):
///
///     output[o, y, x] = relu?(bias[o] + sum_{c, ky, kx} w[o, c, ky, kx] * padded[c, y + ky, x + kx])
///
/// where `padded` is `input` (`[C, H, W]`, optionally multiplied by `mask > 0`, a fused ReLU's
/// backward) with `padding` zeros on every side, and `output` is `[O, H + 2p - 2, W + 2p - 2]`.
///
/// A tile of 16 output channels x 6 output positions lives in 12 ymm registers; per tap, two weight
/// vectors and six broadcast inputs make 12 FMAs. Output rows whose window reaches into the top or
/// bottom padding skip those kernel rows. Each output is summed over (c, ky, kx) in that order
/// whatever the split of the work, so results do not depend on the thread count or the batch.
/// The kernel pays for layers with at least 16 output and 8 input channels; with fewer, most vector
/// lanes or most of the time go unused.
///
/// Only `conv3x3_supported()` CPUs may call `conv3x3_image` and `conv3x3_weight_gradient_image`; the
/// package builds for baseline x86-64 and only the kernels' inner functions use AVX2/FMA3.

/// 1 when the CPU has AVX2 and FMA3, else 0 (then `conv3x3_image` must not be called).
int conv3x3_supported(void);

/// Output channels per block: the packed weight's block, one register tile wide.
#define CONV3X3_CHANNEL_BLOCK 16

/// Blocks of `CONV3X3_CHANNEL_BLOCK` output channels (the last one may be short).
int conv3x3_blocks(int outChannels);

/// Floats of a packed weight for `outChannels` outputs and `inChannels` inputs:
/// `[blocks, C, 9, 16]`, the missing channels of the last block zero.
size_t conv3x3_packed_count(int outChannels, int inChannels);

/// Packs `weight` for `conv3x3_image`. `rotated == 0`: `weight` is `[O, C, 3, 3]` (a convolution's).
/// `rotated == 1`: `weight` is `[C, O, 3, 3]` and is read rotated by 180 degrees,
/// `w[o, c, ky, kx] = weight[c, o, 2 - ky, 2 - kx]` (the input gradient of a convolution, the forward
/// of a transposed convolution).
void conv3x3_pack(float *packed, const float *weight, int outChannels, int inChannels, int rotated);

/// Floats of scratch memory that `conv3x3_image` and `conv3x3_weight_gradient_image` need: the padded
/// image `[C, H + 2p, W + 2p]` and the output (gradient) with its channels innermost, `[blocks, OH * OW, 16]`.
size_t conv3x3_scratch_count(int channels, int height, int width, int outChannels, int padding);

/// One image: `output` `[O, OH, OW]`, `input` `[C, H, W]`, `mask` nil or `[C, H, W]`, `packed` from `conv3x3_pack`, `bias` nil or `[O]`,
/// `relu` nonzero to apply `max(0, .)` after the bias, `scratch` of `conv3x3_scratch_count` floats.
void conv3x3_image(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, float *scratch);

/// The weight gradient of one image: `weightGradient [O, C, 3, 3] += sum_{y, x} dY[o, y, x] * padded[c, y + ky, x + kx]`
/// with `dY` = `outputGradient` `[O, OH, OW]` (times `outputMask > 0` when given) and `padded` = `input`
/// `[C, H, W]` (times `inputMask > 0` when given) padded as in `conv3x3_image`; tiles of 16 output
/// channels x 6 columns `(c, ky, kx)` in 12 ymm registers, summed over the positions in row-major order
/// and then added. `biasGradient` (nil: none) `+=` the channel sums of dY (`[O]`) or, with
/// `biasOfInput`, of the masked input (`[C]`). `scratch`: `conv3x3_scratch_count` floats.
void conv3x3_weight_gradient_image(
    float *weightGradient, float *biasGradient, int biasOfInput, const float *input, const float *inputMask,
    const float *outputGradient, const float *outputMask, int channels, int height, int width, int outChannels,
    int padding, float *scratch);

#endif
