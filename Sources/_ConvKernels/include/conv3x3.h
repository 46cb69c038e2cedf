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
/// The kernel computes the output as if it were `W + 2p` wide (the padded input's row length), so
/// that 8 consecutive outputs read 8 consecutive inputs at every tap, across row ends; a tile of
/// 4 output channels x 24 positions lives in 12 ymm registers. The two extra columns per row are
/// computed and dropped. Each output value is summed in the same order (c, ky, kx) whatever the
/// split of the work, so results do not depend on the thread count.
///
/// Only `conv3x3_supported()` CPUs may call the kernel; the package builds for baseline x86-64 and
/// only the kernel's functions use AVX2/FMA3.

/// 1 when the CPU has AVX2 and FMA3, else 0 (then `conv3x3_image` must not be called).
int conv3x3_supported(void);

/// Output channels per register tile (the packed weight's block size).
#define CONV3X3_CHANNEL_BLOCK 4

/// Floats of a packed weight for `outChannels` outputs and `inChannels` inputs:
/// `[ceil(O / 4), C, 9, 4]`, the missing channels of the last block zero.
size_t conv3x3_packed_count(int outChannels, int inChannels);

/// Packs `weight` for `conv3x3_image`. `flipped == 0`: `weight` is `[O, C, 3, 3]` (a convolution's).
/// `flipped == 1`: `weight` is `[C, O, 3, 3]` and is read rotated by 180 degrees,
/// `w[o, c, ky, kx] = weight[c, o, 2 - ky, 2 - kx]` (the input gradient of a convolution, the forward
/// of a transposed convolution).
void conv3x3_pack(float *packed, const float *weight, int outChannels, int inChannels, int flipped);

/// Floats of scratch memory that `conv3x3_image` needs for one call over output blocks
/// `[blockBegin, blockEnd)` (blocks of 4 output channels).
size_t conv3x3_scratch_count(int channels, int height, int width, int padding, int blockBegin, int blockEnd);

/// One image: `output` `[O, OH, OW]` (only the channels of blocks `[blockBegin, blockEnd)` are written),
/// `input` `[C, H, W]`, `mask` nil or `[C, H, W]`, `packed` from `conv3x3_pack`, `bias` nil or `[O]`,
/// `relu` nonzero to apply `max(0, .)` after the bias, `scratch` of `conv3x3_scratch_count` floats.
void conv3x3_image(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int blockBegin, int blockEnd,
    float *scratch);

#endif
