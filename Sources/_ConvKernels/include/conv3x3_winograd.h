#ifndef CONV3X3_WINOGRAD_H
#define CONV3X3_WINOGRAD_H

#include <stddef.h>

/// The 3x3, stride-1 convolution of `conv3x3.h` (the same arguments and layout, the same output up to
/// rounding) by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, 2016):
///
///     Y = A^T [ (G g G^T) . (B^T d B) ] A
///
/// for each 2 x 2 tile of outputs `Y`, its 4 x 4 window `d` of the padded input and each 3 x 3 kernel `g`,
/// summed over the input channels inside the brackets. Per output that is 36 / 16 = 2.25 times fewer
/// multiplications than the direct sum; the transforms `B` and `A` are additions only and `G` halves.
///
/// The element-wise product, summed over the channels, is 16 matrix products `M[k] = U[k] V[k]`
/// (`U[k]`: the transformed weights `[O, C]`, `V[k]`: the transformed windows `[C, tiles]`), computed with
/// the register tiles of the direct kernel (AVX-512: 32 output channels x 12 tiles in 24 zmm registers;
/// AVX2: 16 x 6 in 12 ymm registers). Each `M[k][o, t]` is summed over c in order with one FMA per term from
/// +0, and the transforms are fixed sequences of additions, so both instruction sets give the same bits, and
/// an output does not depend on the batch, the split of rows across threads or the thread count.
///
/// Rounding: the result is not the direct kernel's bit for bit. Relative to the largest output, the two
/// differ by about 1e-7 to 1e-6 (the transforms add up to 9 inputs before the products), the same order as
/// the direct kernel's own rounding against a sum in double precision.

/// Floats of `conv3x3_winograd_pack`'s output: `[16, blocks, C, 16]` (`k`, output block, input channel,
/// output channel in the block).
size_t conv3x3_winograd_packed_count(int outChannels, int inChannels);

/// `U = G g G^T` for every kernel, packed for `conv3x3_winograd_image_rows`; `weight` and `rotated` as in
/// `conv3x3_pack`. Missing channels of the last block are zero.
void conv3x3_winograd_pack(float *packed, const float *weight, int outChannels, int inChannels, int rotated);

/// Floats of scratch memory `conv3x3_winograd_image_rows` needs for an image (any band of its rows).
size_t conv3x3_winograd_scratch_count(int channels, int height, int width, int outChannels, int padding);

/// The output rows `[y0, y1)` (`y0` even) of `conv3x3_image` by F(2x2, 3x3): `output` `[O, OH, OW]` with
/// `OH = H + 2p - 2`, `OW = W + 2p - 2`; `input`, `mask` (nil or `[C, H, W]`, the input times `mask > 0`),
/// `bias` (nil or `[O]`), `relu` as in `conv3x3_image`; `packed` from `conv3x3_winograd_pack`; `scratch` of
/// `conv3x3_winograd_scratch_count` floats; `isa` `CONV3X3_ISA_AVX2` or `CONV3X3_ISA_AVX512`; `prefetchNext`
/// as in `conv3x3_image` (the next image's input, and mask, asked for in the L2 cache; results do not change).
void conv3x3_winograd_image_rows(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int y0, int y1, float *scratch, int isa,
    int prefetchNext);

/// The tiles `[tile0, tile1)` (clamped to the image's) of `conv3x3_winograd_image_rows`, numbered row by row over the
/// image's `ceil(OH / 2) x ceil(OW / 2)` tiles (tile row `ty` covers output rows `2 ty, 2 ty + 1`, tile column `tx`
/// output columns `2 tx, 2 tx + 1`): the outputs of those tiles, the same bits, every other output left as it is.
/// How two threads share one image whose tile rows do not split evenly (batch-1 inference: a 10 x 10 output's
/// 5 x 5 tiles as 13 + 12 instead of 3 + 2 rows). Arguments as for `conv3x3_winograd_image_rows`.
void conv3x3_winograd_image_tiles(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int tile0, int tile1, float *scratch, int isa);

/// Floats of scratch memory `conv3x3_winograd_weight_gradient` needs.
size_t conv3x3_winograd_weight_scratch_count(int channels, int height, int width, int outChannels, int padding);

/// The weight gradient of `conv3x3_weight_gradient_image` over `images` consecutive images by F(2x2, 3x3)'s
/// transpose: per kernel, `G^T [ sum_{n, tiles} (A dY A^T) . (B^T d B) ] G` with the 2 x 2 tiles `dY` of the output
/// gradient (times `outputMask > 0`; zeros past the last row and column) and the 4 x 4 windows `d` of the padded
/// input (times `inputMask > 0`), as in `conv3x3_winograd_image_rows`. The 16 points' sums `[O, C]` run over the
/// images and their tiles in order, one FMA per term from +0, on register tiles of 32 output channels x 12 input
/// channels (AVX-512) or 16 x 6 (AVX2), the same FMAs in the same order; the result is transformed once and added to
/// `weightGradient [O, C, 3, 3]`, or with `overwrite` written there as `0 + value` (the bits of adding it to zeros,
/// without reading what the memory held: the caller need not zero it). `biasGradient` (nil: none) `+=` per image the
/// channel sums of the output gradient (`[O]`) or, with `biasOfInput`, of the masked input (`[C]`), the values of
/// `conv3x3_weight_gradient_image`. Other arguments as there; `scratch` of `conv3x3_winograd_weight_scratch_count`
/// floats.
void conv3x3_winograd_weight_gradient(
    float *weightGradient, float *biasGradient, int biasOfInput, const float *input, const float *inputMask,
    const float *outputGradient, const float *outputMask, int images, int channels, int height, int width,
    int outChannels, int padding, float *scratch, int isa, int overwrite);

#endif
