// Direct 3x3 stride-1 convolutions with one channel on one side (see conv3x3_one_channel.h): padding,
// packing, masking, the weight gradient's lane sums, and the AVX2 micro-kernels; the AVX-512 ones are
// in conv3x3_one_channel_avx512.c. As in conv3x3.c, only the functions marked `target(...)` use AVX2/FMA3
// or AVX-512, and they run only with an instruction set that `conv3x3_best_isa()` reported.
#include "conv3x3_one_channel_kernels.h"

#include <string.h>

#include "conv3x3.h"
#include "conv3x3_kernels.h"

enum { LANES = ONE_CHANNEL_LANES };

/// Floats of `count` rounded up to whole 16-float (64-byte) blocks, so that each scratch part starts aligned.
static size_t whole_blocks(size_t count) { return (count + LANES - 1) / LANES * LANES; }

/// Floats of the padded input plane `[H + 2p, stride]`.
static size_t plane_count(int height, int width, int padding) {
    return (size_t)(height + 2 * padding) * (size_t)one_channel_stride(width + 2 * padding - 2);
}

size_t conv3x3_one_channel_scratch_count(int channels, int height, int width, int outChannels, int padding) {
    if (channels == 1) return whole_blocks((size_t)outChannels * 9) + LANES * 9 + plane_count(height, width, padding);
    return whole_blocks((size_t)channels * 9) + (size_t)channels * height * width;
}

size_t conv3x3_one_channel_weight_scratch_count(int height, int width, int outChannels, int padding) {
    return (size_t)(outChannels * 10 + 1) * LANES + plane_count(height, width, padding);
}

/// `plane [H + 2p, stride]` = `input [H, W]` (times `mask > 0`) at row and column `p`, zero elsewhere.
static void pad_plane(float *plane, int stride, const float *input, const float *mask, int height, int width,
                      int padding) {
    memset(plane, 0, plane_count(height, width, padding) * sizeof(float));
    for (int y = 0; y < height; y++) {
        float *dst = plane + (size_t)(y + padding) * stride + padding;
        const float *src = input + (size_t)y * width;
        if (mask) {
            // the element-wise ReLU's backward: the same expression, so the same bits
            const float *m = mask + (size_t)y * width;
            for (int x = 0; x < width; x++) dst[x] = src[x] * (m[x] > 0 ? 1.0f : 0.0f);
        } else {
            memcpy(dst, src, (size_t)width * sizeof(float));
        }
    }
}

/// `packed [count, 9]` = the nine taps of each of `count` filters of `weight [count, 9]`, reversed when `rotated`
/// (`w[t] = weight[8 - t]`: with one channel on one side, `[O, C, 3, 3]` and `[C, O, 3, 3]` index alike).
static void pack_taps(float *packed, const float *weight, int count, int rotated) {
    for (int k = 0; k < count; k++) {
        for (int t = 0; t < 9; t++) packed[k * 9 + t] = weight[k * 9 + (rotated ? 8 - t : t)];
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define UNROLL _Pragma("clang loop unroll(full)")
#define INLINE static inline __attribute__((always_inline))

enum { WIDTH = 8, INPUT_ROWS = 6, ROWS = 6, WEIGHT_ROWS = 4 };

/// Lanes `j < count` (of eight) set, as a mask for `_mm256_maskload_ps` / `_mm256_maskstore_ps`.
AVX2 INLINE __m256i lanes_below(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// Lanes `j` with `begin <= j < end` set.
AVX2 INLINE __m256i lanes_between(int begin, int end) {
    return _mm256_andnot_si256(lanes_below(begin), lanes_below(end));
}

/// `v` to the `count` floats from `at` (all 8 from 8 on): a plain store when the vector is whole, a masked one
/// (`store`: the lanes below `count`) only at a row's end, as AMD's cores take many cycles for each masked store.
AVX2 INLINE void store_row(float *at, __m256 v, __m256i store, int count) {
    if (count >= WIDTH) {
        _mm256_storeu_ps(at, v);
    } else {
        _mm256_maskstore_ps(at, store, v);
    }
}

/// `rows` (a constant once inlined) output rows from `y` x the 8 positions from `x0` of one output channel
/// (`w`: its nine weights in ymm registers) of `one_input`: each window loaded once and multiplied into up
/// to three rows.
AVX2 INLINE void one_input_rows(float *output, const float *plane, int stride, const __m256 *weight, float bias,
                                int relu, int outputWidth, int y, int x0, __m256i store, const int rows) {
    __m256 sum[INPUT_ROWS];
    UNROLL for (int i = 0; i < rows; i++) sum[i] = _mm256_setzero_ps();
    UNROLL for (int r = 0; r < rows + 2; r++) {
        UNROLL for (int kx = 0; kx < 3; kx++) {
            const __m256 v = _mm256_loadu_ps(plane + (size_t)(y + r) * stride + x0 + kx);
            UNROLL for (int ky = 0; ky < 3; ky++) {
                if (r - ky >= 0 && r - ky < rows) sum[r - ky] = _mm256_fmadd_ps(v, weight[3 * ky + kx], sum[r - ky]);
            }
        }
    }
    UNROLL for (int i = 0; i < rows; i++) {
        __m256 v = _mm256_add_ps(sum[i], _mm256_set1_ps(bias));
        if (relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
        store_row(output + (size_t)(y + i) * outputWidth + x0, v, store, outputWidth - x0);
    }
}

/// `one_input_fn` with AVX2: output channel by output channel, its nine weights in ymm registers, tiles
/// of up to 6 output rows x 8 positions in six accumulators, a band's rows split into tiles as even as they
/// go (13 rows: 5 + 4 + 4 rather than 6 + 6 + 1, whose one row's nine FMAs wait on each other).
AVX2 static void one_input(float *output, const float *plane, int stride, const float *packed, const float *bias,
                           int relu, int outChannels, int outputHeight, int outputWidth, int y0, int y1) {
    const size_t outputPlane = (size_t)outputHeight * outputWidth;
    const int rows = y1 - y0, tiles = (rows + INPUT_ROWS - 1) / INPUT_ROWS;
    for (int o = 0; o < outChannels; o++) {
        __m256 weight[9];
        UNROLL for (int t = 0; t < 9; t++) weight[t] = _mm256_broadcast_ss(packed + (size_t)o * 9 + t);
        float *out = output + (size_t)o * outputPlane;
        const float b = bias ? bias[o] : 0.0f;
        for (int x = 0; x < outputWidth; x += WIDTH) {
            // a last vector past the row's end moves back to end with it, so that every store is a plain one (AMD's
            // cores take many cycles for a masked store: E.0 of the MNIST network 14.3 -> 12.3 us on one thread);
            // the positions it shares with the vector before are computed again the same way, the same values
            const int x0 = x + WIDTH > outputWidth && outputWidth >= WIDTH ? outputWidth - WIDTH : x;
            const __m256i store = lanes_below(outputWidth - x0);
            for (int k = 0, y = y0; k < tiles; k++) {
                const int next = y0 + rows * (k + 1) / tiles;
#define ROWS_OF(n) one_input_rows(out, plane, stride, weight, b, relu, outputWidth, y, x0, store, n)
                switch (next - y) {
                case 6: ROWS_OF(6); break;
                case 5: ROWS_OF(5); break;
                case 4: ROWS_OF(4); break;
                case 3: ROWS_OF(3); break;
                case 2: ROWS_OF(2); break;
                default: ROWS_OF(1); break;
                }
#undef ROWS_OF
                y = next;
            }
        }
    }
}

/// One tile of `one_output`: `rows` (a constant once inlined) output rows from `y0` x the 8 positions
/// from `x0`; `column[kx]`: the lanes whose input column is inside the image for tap column kx. The tile's
/// `rows + 2` input rows are inside the image except the first `zeroTop` and the last `zeroBottom`
/// (constants), which give zero vectors; with `general`, each row is checked at run time instead. Without
/// `masked` (a constant), every window lies inside the image's columns and loads without a mask.
AVX2 INLINE void one_output_tile(float *output, const float *input, const float *packed, float bias, int relu,
                                 int channels, int height, int width, int padding, int y0, int x0,
                                 const __m256i *column, __m256i store, ptrdiff_t ahead, int aheadCount,
                                 const int rows, const int zeroTop, const int zeroBottom, const int general,
                                 const int masked) {
    const int outputWidth = width + 2 * padding - 2;
    const size_t planeSize = (size_t)height * width;
    const ptrdiff_t first = (ptrdiff_t)(y0 - padding) * width + x0 - padding;  // input row y0 - p, column x0 - p
    __m256 sum[ROWS];
    UNROLL for (int i = 0; i < rows; i++) sum[i] = _mm256_setzero_ps();
    for (int c = 0; c < channels; c++) {
        const float *w = packed + (size_t)c * 9, *plane = input + (size_t)c * planeSize;
        __m256 weight[9];
        UNROLL for (int t = 0; t < 9; t++) weight[t] = _mm256_broadcast_ss(w + t);
        for (int k = 0; k < aheadCount; k += 2 * WIDTH) {  // as in the AVX-512 kernel
            _mm_prefetch((const char *)one_channel_offset(plane, ahead + k), _MM_HINT_T0);
        }
        UNROLL for (int r = 0; r < rows + 2; r++) {
            const int inside = general ? y0 + r - padding >= 0 && y0 + r - padding < height
                                       : r >= zeroTop && r < rows + 2 - zeroBottom;
            UNROLL for (int kx = 0; kx < 3; kx++) {
                const float *at = one_channel_offset(plane, first + (ptrdiff_t)r * width + kx);
                const __m256 v = !inside ? _mm256_setzero_ps()
                                 : masked ? _mm256_maskload_ps(at, column[kx])
                                          : _mm256_loadu_ps(at);
                UNROLL for (int ky = 0; ky < 3; ky++) {
                    if (r - ky < 0 || r - ky >= rows) continue;
                    sum[r - ky] = _mm256_fmadd_ps(weight[3 * ky + kx], v, sum[r - ky]);
                }
            }
        }
    }
    UNROLL for (int i = 0; i < rows; i++) {
        __m256 v = _mm256_add_ps(sum[i], _mm256_set1_ps(bias));
        if (relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
        store_row(output + (size_t)(y0 + i) * outputWidth + x0, v, store, outputWidth - x0);
    }
}

/// `one_output_fn` with AVX2: tiles of 6 output rows x 8 positions in six ymm accumulators, the
/// channel's nine weights in nine more; with padding, the first and last 6 rows (4 on images of fewer
/// than 12 output rows) are tiles whose rows of padding are zero vectors (on images of fewer than 8
/// output rows, every row is checked).
AVX2 static void one_output(float *output, const float *input, const float *packed, float bias, int relu,
                            int channels, int height, int width, int padding, int yBegin, int yEnd, int prefetch) {
    const int outputHeight = height + 2 * padding - 2, outputWidth = width + 2 * padding - 2;
    const int frame = padding == 0 ? 0 : outputHeight >= 12 ? 6 : outputHeight >= 8 ? 4 : -1;
    const int begin = frame > 0 ? frame : 0, end = frame >= 0 ? outputHeight - begin : 0;
    for (int x0 = 0; x0 < outputWidth; x0 += WIDTH) {
        __m256i column[3];
        UNROLL for (int kx = 0; kx < 3; kx++) column[kx] = lanes_between(padding - x0 - kx, width + padding - x0 - kx);
        const __m256i store = lanes_below(outputWidth - x0);
        // a vector whose windows all lie inside the image's columns loads them without masks
        const int masked = !(x0 - padding >= 0 && x0 - padding + WIDTH + 2 <= width);
        // prefetches as in the AVX-512 kernel: the tile below's new rows, below the last the next image's first
        const ptrdiff_t nextImage = (ptrdiff_t)channels * height * width;
        const int firstRows = frame > 0 ? frame : outputHeight < ROWS ? outputHeight : ROWS;
        const int nextCount = x0 == 0 && prefetch ? (firstRows + 2) * width : 0;
#define AHEAD(y, n) (y) + (n) < outputHeight ? (ptrdiff_t)((y) + (n) + 2 - padding) * width : nextImage, \
                    (y) + (n) < outputHeight ? (x0 == 0 && prefetch ? (n) * width : 0) : nextCount
#define TILE(y, n, top, bottom, general)                                                                          \
    do {                                                                                                          \
        if (masked) {                                                                                             \
            one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y, x0, column, store, \
                            AHEAD(y, n), n, top, bottom, general, 1);                                             \
        } else {                                                                                                  \
            one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y, x0, column, store, \
                            AHEAD(y, n), n, top, bottom, general, 0);                                             \
        }                                                                                                         \
    } while (0)
        if (frame >= 0) {
            ONE_OUTPUT_FRAMES(6);
            const int stop = yEnd < end ? yEnd : end;
            for (int y0 = yBegin > begin ? yBegin : begin; y0 < stop;) {
                const int left = stop - y0;
                if (left >= 6) { TILE(y0, 6, 0, 0, 0); y0 += 6; }
                else if (left >= 4) { TILE(y0, 4, 0, 0, 0); y0 += 4; }
                else if (left >= 2) { TILE(y0, 2, 0, 0, 0); y0 += 2; }
                else { TILE(y0, 1, 0, 0, 0); y0 += 1; }
            }
        } else {
            for (int y = yBegin; y < yEnd; y++) TILE(y, 1, 0, 0, 1);
        }
#undef TILE
#undef AHEAD
    }
}

/// `one_relu_backward_fn` with AVX2.
AVX2 static void one_relu_backward(float *output, const float *input, const float *mask, size_t count) {
    size_t i = 0;
    for (; i + WIDTH <= count; i += WIDTH) {
        _mm256_storeu_ps(output + i, conv3x3_relu_backward_avx2(_mm256_loadu_ps(input + i), _mm256_loadu_ps(mask + i)));
    }
    for (; i < count; i++) output[i] = input[i] * (mask[i] > 0 ? 1.0f : 0.0f);
}

/// `rows` (a constant once inlined) output rows from `y` of half `h` (lanes 8h ..< 8h + 8) of the 16
/// positions from `x0` of `one_weight`: the (masked) output gradient of the rows in registers, each input
/// row's three windows loaded once and multiplied into the sums of up to three kernel rows.
AVX2 INLINE void weight_rows(__m256 *sum, __m256 *biasSum, const float *plane, int stride, const float *dy,
                             const float *mask, int outputWidth, int y, int x, __m256i valid, const int rows) {
    __m256 d[WEIGHT_ROWS];
    if (x == 0) {
        // the next tile's rows (past the last, the next channel's first rows) on their way into the cache
        for (int k = 0; k < rows * outputWidth; k += 2 * WIDTH) {
            _mm_prefetch((const char *)(dy + (size_t)(y + rows) * outputWidth + k), _MM_HINT_T0);
            if (mask) _mm_prefetch((const char *)(mask + (size_t)(y + rows) * outputWidth + k), _MM_HINT_T0);
        }
    }
    UNROLL for (int i = 0; i < rows; i++) {
        const size_t at = (size_t)(y + i) * outputWidth + x;
        d[i] = _mm256_maskload_ps(dy + at, valid);
        if (mask) d[i] = conv3x3_relu_backward_avx2(d[i], _mm256_maskload_ps(mask + at, valid));
        if (biasSum) *biasSum = _mm256_add_ps(*biasSum, d[i]);
    }
    UNROLL for (int r = 0; r < rows + 2; r++) {
        UNROLL for (int kx = 0; kx < 3; kx++) {
            const __m256 window = _mm256_loadu_ps(plane + (size_t)(y + r) * stride + x + kx);
            UNROLL for (int ky = 0; ky < 3; ky++) {
                if (r - ky < 0 || r - ky >= rows) continue;
                sum[3 * ky + kx] = _mm256_fmadd_ps(d[r - ky], window, sum[3 * ky + kx]);
            }
        }
    }
}

/// `one_weight_fn` with AVX2: the 16 lanes of a sum in two halves of 8, done one after the other; per
/// output channel and half, the nine tap sums and the bias sum in ten ymm registers, tiles of 4 rows.
AVX2 static void one_weight(float *lanes, const float *plane, int stride, const float *outputGradient,
                            const float *outputMask, int outChannels, int outputHeight, int outputWidth,
                            int biasOfOutput) {
    const size_t outputPlane = (size_t)outputHeight * outputWidth;
    for (int o = 0; o < outChannels; o++) {
        const float *dy = outputGradient + o * outputPlane, *m = outputMask ? outputMask + o * outputPlane : 0;
        for (int h = 0; h < 2; h++) {
            float *taps = lanes + (size_t)o * 9 * LANES + h * WIDTH;
            float *biasLanes = lanes + ((size_t)outChannels * 9 + o) * LANES + h * WIDTH;
            __m256 sum[9], biasSum = biasOfOutput ? _mm256_loadu_ps(biasLanes) : _mm256_setzero_ps();
            UNROLL for (int t = 0; t < 9; t++) sum[t] = _mm256_loadu_ps(taps + t * LANES);
            __m256 *bias = biasOfOutput ? &biasSum : 0;
            for (int x0 = 0; x0 < outputWidth; x0 += LANES) {
                const int x = x0 + h * WIDTH;
                const __m256i valid = lanes_below(outputWidth - x);
                int y = 0;
#define ROWS_OF(n) weight_rows(sum, bias, plane, stride, dy, m, outputWidth, y, x, valid, n)
                for (; y + WEIGHT_ROWS <= outputHeight; y += WEIGHT_ROWS) ROWS_OF(4);
                switch (outputHeight - y) {
                case 3: ROWS_OF(3); break;
                case 2: ROWS_OF(2); break;
                case 1: ROWS_OF(1); break;
                default: break;
                }
#undef ROWS_OF
            }
            UNROLL for (int t = 0; t < 9; t++) _mm256_storeu_ps(taps + t * LANES, sum[t]);
            if (biasOfOutput) _mm256_storeu_ps(biasLanes, biasSum);
        }
    }
}

void conv3x3_one_input_image_rows(
    float *output, const float *input, const float *mask, const float *weight, int rotated, const float *bias,
    int relu, int height, int width, int outChannels, int padding, int y0, int y1, float *scratch, int isa) {
    // packed [16 * ceil(O / 16), 9] (zero past O), then the padded plane
    const int filters = (outChannels + LANES - 1) / LANES * LANES, outputWidth = width + 2 * padding - 2;
    const int outputHeight = height + 2 * padding - 2;
    float *packed = scratch, *plane = scratch + whole_blocks((size_t)filters * 9);
    memset(packed, 0, (size_t)filters * 9 * sizeof(float));
    pack_taps(packed, weight, outChannels, rotated);
    const int stride = one_channel_stride(outputWidth);
    pad_plane(plane, stride, input, mask, height, width, padding);
    const one_input_fn kernel = isa == CONV3X3_ISA_AVX512 ? conv3x3_one_input_avx512 : one_input;
    kernel(output, plane, stride, packed, bias, relu, outChannels, outputHeight, outputWidth, y0 < 0 ? 0 : y0,
           y1 > outputHeight ? outputHeight : y1);
}

void conv3x3_one_channel_image(
    float *output, const float *input, const float *mask, const float *weight, int rotated, const float *bias,
    int relu, int channels, int height, int width, int outChannels, int padding, float *scratch, int isa) {
    if (channels == 1) {
        conv3x3_one_input_image_rows(output, input, mask, weight, rotated, bias, relu, height, width, outChannels,
                                     padding, 0, height + 2 * padding - 2, scratch, isa);
    } else {
        conv3x3_one_output_image_rows(output, input, mask, weight, rotated, bias, relu, channels, height, width,
                                      padding, 0, height + 2 * padding - 2, scratch, isa);
    }
}

void conv3x3_one_output_image_rows(
    float *output, const float *input, const float *mask, const float *weight, int rotated, const float *bias,
    int relu, int channels, int height, int width, int padding, int y0, int y1, float *scratch, int isa) {
    const int avx512 = isa == CONV3X3_ISA_AVX512, outputHeight = height + 2 * padding - 2;
    if (y0 < 0) y0 = 0;
    if (y1 > outputHeight) y1 = outputHeight;
    if (y0 >= y1) return;
    // packed [C, 9], then the masked input [C, H, W] when there is a mask
    float *packed = scratch, *masked = scratch + whole_blocks((size_t)channels * 9);
    pack_taps(packed, weight, channels, rotated);
    if (mask) {
        // only the input rows these output rows read (the others are never loaded)
        const one_relu_backward_fn relu_backward = avx512 ? conv3x3_one_relu_backward_avx512 : one_relu_backward;
        const int r0 = y0 - padding > 0 ? y0 - padding : 0, r1 = y1 + 2 - padding < height ? y1 + 2 - padding : height;
        for (int c = 0; c < channels && r0 < r1; c++) {
            const size_t first = ((size_t)c * height + r0) * width;
            relu_backward(masked + first, input + first, mask + first, (size_t)(r1 - r0) * width);
        }
        input = masked;
    }
    const one_output_fn kernel = avx512 ? conv3x3_one_output_avx512 : one_output;
    // the next image's rows are asked for only when the whole image is computed (a band has no next image)
    const int whole = y0 == 0 && y1 == outputHeight;
    kernel(output, input, packed, bias ? bias[0] : 0.0f, relu, channels, height, width, padding, y0, y1,
           !mask && whole);
}

/// `l[0] + ... + l[15]` added pairwise: lanes j and j + 8, then j + 4, j + 2, j + 1.
static float pairwise_sum(const float *l) {
    float s[8];
    for (int j = 0; j < 8; j++) s[j] = l[j] + l[j + 8];
    for (int j = 0; j < 4; j++) s[j] = s[j] + s[j + 4];
    for (int j = 0; j < 2; j++) s[j] = s[j] + s[j + 2];
    return s[0] + s[1];
}

void conv3x3_one_channel_weight_gradient(
    float *weightGradient, float *biasGradient, int biasOfInput, const float *input, const float *inputMask,
    const float *outputGradient, const float *outputMask, int images, int height, int width, int outChannels,
    int padding, float *scratch, int isa) {
    const one_weight_fn kernel = isa == CONV3X3_ISA_AVX512 ? conv3x3_one_weight_avx512 : one_weight;
    const int outputHeight = height + 2 * padding - 2, outputWidth = width + 2 * padding - 2;
    const int stride = one_channel_stride(outputWidth), planeRows = height + 2 * padding;
    const int biasRows = biasGradient ? (biasOfInput ? 1 : outChannels) : 0, rows = outChannels * 9 + biasRows;
    // lanes [O * 9 + bias rows, 16] (the bias rows after the weights'), then the padded plane
    float *lanes = scratch, *plane = scratch + (size_t)(outChannels * 10 + 1) * LANES;
    memset(lanes, 0, (size_t)rows * LANES * sizeof(float));
    const size_t imageSize = (size_t)height * width, outputSize = (size_t)outChannels * outputHeight * outputWidth;
    for (int n = 0; n < images; n++) {
        pad_plane(plane, stride, input + n * imageSize, inputMask ? inputMask + n * imageSize : 0, height, width,
                  padding);
        if (biasGradient && biasOfInput) {
            float *sum = lanes + (size_t)outChannels * 9 * LANES;  // lane j: the plane's columns j mod 16
            for (size_t i = 0; i < (size_t)planeRows * stride; i += LANES) {
                for (int j = 0; j < LANES; j++) sum[j] += plane[i + j];
            }
        }
        kernel(lanes, plane, stride, outputGradient + n * outputSize, outputMask ? outputMask + n * outputSize : 0,
               outChannels, outputHeight, outputWidth, biasGradient && !biasOfInput);
    }
    for (int r = 0; r < outChannels * 9; r++) weightGradient[r] += pairwise_sum(lanes + (size_t)r * LANES);
    for (int r = 0; r < biasRows; r++) biasGradient[r] += pairwise_sum(lanes + (size_t)(outChannels * 9 + r) * LANES);
}
#else
void conv3x3_one_input_image_rows(
    float *output, const float *input, const float *mask, const float *weight, int rotated, const float *bias,
    int relu, int height, int width, int outChannels, int padding, int y0, int y1, float *scratch, int isa) {
    (void)output; (void)input; (void)mask; (void)weight; (void)rotated; (void)bias; (void)relu; (void)height;
    (void)width; (void)outChannels; (void)padding; (void)y0; (void)y1; (void)scratch; (void)isa;
}

void conv3x3_one_channel_image(
    float *output, const float *input, const float *mask, const float *weight, int rotated, const float *bias,
    int relu, int channels, int height, int width, int outChannels, int padding, float *scratch, int isa) {
    (void)output; (void)input; (void)mask; (void)weight; (void)rotated; (void)bias; (void)relu; (void)channels;
    (void)height; (void)width; (void)outChannels; (void)padding; (void)scratch; (void)isa;
    (void)pad_plane; (void)pack_taps;
}

void conv3x3_one_output_image_rows(
    float *output, const float *input, const float *mask, const float *weight, int rotated, const float *bias,
    int relu, int channels, int height, int width, int padding, int y0, int y1, float *scratch, int isa) {
    (void)output; (void)input; (void)mask; (void)weight; (void)rotated; (void)bias; (void)relu; (void)channels;
    (void)height; (void)width; (void)padding; (void)y0; (void)y1; (void)scratch; (void)isa;
}

void conv3x3_one_channel_weight_gradient(
    float *weightGradient, float *biasGradient, int biasOfInput, const float *input, const float *inputMask,
    const float *outputGradient, const float *outputMask, int images, int height, int width, int outChannels,
    int padding, float *scratch, int isa) {
    (void)weightGradient; (void)biasGradient; (void)biasOfInput; (void)input; (void)inputMask; (void)outputGradient;
    (void)outputMask; (void)images; (void)height; (void)width; (void)outChannels; (void)padding; (void)scratch;
    (void)isa;
}
#endif
