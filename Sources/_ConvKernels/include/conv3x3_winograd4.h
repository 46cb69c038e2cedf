#ifndef CONV3X3_WINOGRAD4_H
#define CONV3X3_WINOGRAD4_H

#include <stddef.h>

/// The 3x3, stride-1 convolution of `conv3x3.h` without a mask (a forward pass: the same arguments and layout, the
/// same output up to rounding) by Winograd's minimal filtering F(4x4, 3x3) (Lavin and Gray, 2016, with the points
/// 0, 1, -1, 2, -2 and infinity):
///
///     Y = A^T [ (G g G^T) . (B^T d B) ] A
///
/// for each 4 x 4 tile of outputs `Y`, its 6 x 6 window `d` of the padded input and each 3 x 3 kernel `g`, summed
/// over the input channels inside the brackets: 36 multiplications per 16 outputs where the direct sum takes 144 and
/// F(2x2, 3x3) (`conv3x3_winograd.h`) 64. The element-wise product is 36 matrix products `M[k] = U[k] V[k]` on the
/// register tiles of F(2x2, 3x3)'s (`U[k]`: the transformed weights `[O, C]`, `V[k]`: the transformed windows
/// `[C, tiles]`); each `M[k][o, t]` is summed over c in order with one FMA per term from +0, and the transforms are
/// fixed sequences of additions, subtractions and scalings by powers of two (exact; the weights'
/// transform in double), so both instruction sets give the same bits, and an output does not depend
/// on the batch, the split of tiles across threads or the thread count.
///
/// Rounding: the transforms scale by up to 5 (input), 8 (output) and 1/24 (weights), so the result differs from the
/// direct kernel's by more than F(2x2, 3x3)'s does: 1.2e-6 to 5.3e-6 of the largest output against a sum in double on
/// the MNIST network's layers and other shapes, where F(2x2, 3x3) gives 1.4e-7 to 3.1e-7.

/// Floats of `conv3x3_winograd4_pack`'s output: `[36, blocks, C, 16]` (point, output block, input channel, output
/// channel in the block).
size_t conv3x3_winograd4_packed_count(int outChannels, int inChannels);

/// `U = G g G^T` for every kernel, packed for `conv3x3_winograd4_image_tiles`; `weight` and `rotated` as in
/// `conv3x3_pack`. Missing channels of the last block are zero.
void conv3x3_winograd4_pack(float *packed, const float *weight, int outChannels, int inChannels, int rotated);

/// Floats of scratch memory `conv3x3_winograd4_image_tiles` needs for an image (any range of its tiles).
size_t conv3x3_winograd4_scratch_count(int channels, int height, int width, int outChannels, int padding);

/// The tiles `[tile0, tile1)` (clamped to the image's) of `conv3x3_image` without a mask, by F(4x4, 3x3): `output`
/// `[O, OH, OW]` with `OH = H + 2p - 2`, `OW = W + 2p - 2`, its `ceil(OH / 4) x ceil(OW / 4)` tiles numbered row by
/// row (tile row `ty` covers output rows `4 ty ..< 4 ty + 4`, tile column `tx` columns `4 tx ..< 4 tx + 4`): the
/// outputs of those tiles, every other output left as it is. `input` `[C, H, W]`, `bias` (nil or `[O]`), `relu` as in
/// `conv3x3_image`; `packed` from `conv3x3_winograd4_pack`; `scratch` of `conv3x3_winograd4_scratch_count` floats;
/// `isa` `CONV3X3_ISA_AVX2` or `CONV3X3_ISA_AVX512`. Reads only the input rows and columns inside the image.
void conv3x3_winograd4_image_tiles(
    float *output, const float *input, const float *packed, const float *bias, int relu, int channels, int height,
    int width, int outChannels, int padding, int tile0, int tile1, float *scratch, int isa);

#endif
