#ifndef MAX_POOL_H
#define MAX_POOL_H

#include <stddef.h>
#include <stdint.h>

/// 2 x 2 max pooling at stride 2 (floor mode, PyTorch's `MaxPool2d(2)`) of `planes` consecutive planes
/// `[height, width]`: `output [planes, height / 2, width / 2]` the largest value of each window (the first
/// in row-major window order among equals; a NaN wins over any number, the last NaN if several) and
/// `argmax` its index within its plane. The convolution kernels call it on an image's output while it is
/// in cache (a convolution, its ReLU and the pooling after them as one pass). The values are only chosen,
/// never computed, so AVX-512, AVX2 and the portable loop give the same bits. `isa`: `CONV3X3_ISA_AVX512` or
/// `CONV3X3_ISA_AVX2` for those bodies (only if `conv3x3_best_isa()` reported it), anything else for the portable loop.
void max_pool_2x2(float *output, int32_t *argmax, const float *input, int planes, int height, int width, int isa);

/// `max_pool_2x2` of the output rows `[y0, y1)` of every plane only (clamped to `[0, height / 2)`; the other
/// rows of `output` and `argmax` are left as they are, and `argmax` still counts from the plane's start): how
/// the threads that split one image's convolution by rows pool each its own band while it is in their cache.
void max_pool_2x2_rows(float *output, int32_t *argmax, const float *input, int planes, int height, int width, int y0,
                       int y1, int isa);

/// The backward of a max pooling (any window; `max_pool_2x2`'s and `PoolingKernels.maxPool`'s) for `planes`
/// planes: `inputGradient [planes, planeSize]` is zero except at each window's `argmax` (an index within its
/// plane), where it is +0 plus the gradients `outputGradient [planes, pooledPlaneSize]` of the windows that
/// chose it, added in window order. With `mask` `[planes, planeSize]` (only for windows that do not overlap,
/// such as `max_pool_2x2`'s: each position is chosen at most once), each chosen position's value is then
/// times `mask > 0 ? 1 : 0` (a fused ReLU's backward before the pooling: the values the convolution kernels'
/// `mask` gives, without a masked copy of the whole image). The convolution kernels call it on one image at a
/// time, into cache, so that a pooled layer's input gradient never exists as a whole batch;
/// `PoolingKernels.maxPoolBackward` on each thread's planes.
void max_pool_backward(float *inputGradient, const float *outputGradient, const int32_t *argmax, const float *mask,
                       int planes, size_t planeSize, size_t pooledPlaneSize);

#endif
