#ifndef CONV3X3_H
#define CONV3X3_H

#include <stddef.h>

/// Direct 3x3, stride-1 convolution of one NCHW image with AVX2 + FMA3 or AVX-512 (no im2col):
///
///     output[o, y, x] = relu?(bias[o] + sum_{c, ky, kx} w[o, c, ky, kx] * padded[c, y + ky, x + kx])
///
/// where `padded` is `input` (`[C, H, W]`, optionally multiplied by `mask > 0`, a fused ReLU's
/// backward) with `padding` zeros on every side, and `output` is `[O, H + 2p - 2, W + 2p - 2]`.
///
/// AVX2: a tile of 16 output channels x 6 output positions lives in 12 ymm registers; per tap, two
/// weight vectors and six broadcast inputs make 12 FMAs. AVX-512: a tile of 32 output channels x 12
/// positions in 24 zmm registers; per tap, two weight vectors and 12 broadcasts make 24 FMAs. Both
/// instruction sets perform the same FMAs in the same order for every output, so they give the same bits. Output rows whose window reaches into the top or
/// bottom padding skip those kernel rows. Each output is summed over (c, ky, kx) in that order
/// whatever the split of the work, so results do not depend on the thread count or the batch.
/// The kernel pays for layers with at least 16 output and 8 input channels; with fewer, most vector
/// lanes or most of the time go unused (layers with one channel on a side: `conv3x3_one_channel.h`).
///
/// `conv3x3_image` and `conv3x3_weight_gradient_image` take an instruction set that
/// `conv3x3_best_isa()` reported or a lower one (not `CONV3X3_ISA_NONE`); the package builds for
/// baseline x86-64 and only the kernels' inner functions use AVX2/FMA3 or AVX-512.

/// Instruction sets of the kernels, in increasing order.
enum { CONV3X3_ISA_NONE = 0, CONV3X3_ISA_AVX2 = 1, CONV3X3_ISA_AVX512 = 2 };

/// The best instruction set this CPU runs: `CONV3X3_ISA_AVX512` with AVX-512F (and AVX2 + FMA3),
/// `CONV3X3_ISA_AVX2` with AVX2 + FMA3, else `CONV3X3_ISA_NONE` (then the kernels must not be called).
int conv3x3_best_isa(void);

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
/// `relu` nonzero to apply `max(0, .)` after the bias, `scratch` of `conv3x3_scratch_count` floats,
/// `isa` the instruction set of the micro-kernel (`CONV3X3_ISA_AVX2` or `CONV3X3_ISA_AVX512`),
/// `prefetchNext` nonzero when the next image follows in memory (`input + C * H * W`, the same for `mask`):
/// the AVX-512 path asks for it in the cache while this one is computed (results do not change).
void conv3x3_image(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, float *scratch, int isa, int prefetchNext);

/// The output rows `[y0, y1)` of `conv3x3_image` (of `OH = H + 2p - 2`), the same values: how one image is split
/// across threads. The other arguments as in `conv3x3_image`; `scratch` of `conv3x3_scratch_count` floats.
void conv3x3_image_rows(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int y0, int y1, float *scratch, int isa,
    int prefetchNext);

/// The weight gradient of one image: `weightGradient [O, C, 3, 3] += sum_{y, x} dY[o, y, x] * padded[c, y + ky, x + kx]`
/// with `dY` = `outputGradient` `[O, OH, OW]` (times `outputMask > 0` when given) and `padded` = `input`
/// `[C, H, W]` (times `inputMask > 0` when given) padded as in `conv3x3_image`; tiles of 16 output
/// channels x 6 columns `(c, ky, kx)` in 12 ymm registers (AVX2) or 32 x 12 in 24 zmm registers
/// (AVX-512), summed over the positions in row-major order and then added. `biasGradient` (nil: none)
/// `+=` the channel sums of dY (`[O]`) or, with `biasOfInput`, of the masked input (`[C]`). `scratch`:
/// `conv3x3_scratch_count` floats; `isa` and `prefetchNext` (the next image's input, output gradient and
/// their masks follow these in memory) as in `conv3x3_image`.
void conv3x3_weight_gradient_image(
    float *weightGradient, float *biasGradient, int biasOfInput, const float *input, const float *inputMask,
    const float *outputGradient, const float *outputMask, int channels, int height, int width, int outChannels,
    int padding, float *scratch, int isa, int prefetchNext);

#endif
