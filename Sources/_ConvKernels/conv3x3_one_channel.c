// Direct 3x3 stride-1 convolutions with one channel on one side (see conv3x3_one_channel.h): padding,
// packing, masking, the weight gradient's lane sums, and the AVX2 micro-kernels; the AVX-512 ones are
// in conv3x3_one_channel_avx512.c. As in conv3x3.c, only the functions marked `target(...)` use AVX2/FMA3
// or AVX-512, and they run only with an instruction set that `conv3x3_best_isa()` reported.
#include "conv3x3_one_channel_kernels.h"

#include <string.h>

#include "conv3x3.h"

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

enum { WIDTH = 8, GROUP = 4, ROWS = 4 };

/// Lanes `j < count` (of eight) set, as a mask for `_mm256_maskload_ps` / `_mm256_maskstore_ps`.
AVX2 INLINE __m256i lanes_below(int count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// Lanes `j` with `begin <= j < end` set.
AVX2 INLINE __m256i lanes_between(int begin, int end) {
    return _mm256_andnot_si256(lanes_below(begin), lanes_below(end));
}

/// `one_input_fn` with AVX2: per vector of 8 positions, the nine windows in ymm registers and four
/// output channels at a time (four accumulators, each weight broadcast before its FMA).
AVX2 static void one_input(float *output, const float *plane, int stride, const float *packed, const float *bias,
                           int relu, int outChannels, int outputHeight, int outputWidth) {
    const size_t outputPlane = (size_t)outputHeight * outputWidth;
    const __m256 zero = _mm256_setzero_ps();
    for (int y = 0; y < outputHeight; y++) {
        for (int x0 = 0; x0 < outputWidth; x0 += WIDTH) {
            const __m256i store = lanes_below(outputWidth - x0);
            __m256 window[9];
            UNROLL for (int t = 0; t < 9; t++) window[t] = _mm256_loadu_ps(plane + (size_t)(y + t / 3) * stride + x0 + t % 3);
            for (int o0 = 0; o0 < outChannels; o0 += GROUP) {
                const float *w = packed + (size_t)o0 * 9;
                __m256 sum[GROUP];
                UNROLL for (int g = 0; g < GROUP; g++) sum[g] = zero;
                UNROLL for (int t = 0; t < 9; t++) {
                    UNROLL for (int g = 0; g < GROUP; g++) {
                        sum[g] = _mm256_fmadd_ps(window[t], _mm256_broadcast_ss(w + g * 9 + t), sum[g]);
                    }
                }
                UNROLL for (int g = 0; g < GROUP; g++) {
                    if (o0 + g < outChannels) {
                        __m256 v = _mm256_add_ps(sum[g], _mm256_set1_ps(bias ? bias[o0 + g] : 0.0f));
                        if (relu) v = _mm256_max_ps(v, zero);
                        _mm256_maskstore_ps(output + (size_t)(o0 + g) * outputPlane + (size_t)y * outputWidth + x0, store, v);
                    }
                }
            }
        }
    }
}

/// One tile of `one_output`: `rows` (a constant once inlined) output rows from `y0` x the 8 positions
/// from `x0`; `column[kx]`: the lanes whose input column is inside the image for tap column kx.
AVX2 INLINE void one_output_tile(float *output, const float *input, const float *packed, float bias, int relu,
                                 int channels, int height, int width, int padding, int y0, int x0,
                                 const __m256i *column, __m256i store, const int rows) {
    const int outputWidth = width + 2 * padding - 2;
    const size_t planeSize = (size_t)height * width;
    const __m256i none = _mm256_setzero_si256();
    __m256 sum[ROWS];
    UNROLL for (int i = 0; i < rows; i++) sum[i] = _mm256_setzero_ps();
    for (int c = 0; c < channels; c++) {
        const float *w = packed + (size_t)c * 9, *plane = input + (size_t)c * planeSize;
        __m256 weight[9];
        UNROLL for (int t = 0; t < 9; t++) weight[t] = _mm256_broadcast_ss(w + t);
        UNROLL for (int r = 0; r < rows + 2; r++) {
            const int iy = y0 + r - padding, inside = iy >= 0 && iy < height;
            const ptrdiff_t row = (ptrdiff_t)(inside ? iy : 0) * width + x0 - padding;
            UNROLL for (int kx = 0; kx < 3; kx++) {
                const __m256 v = _mm256_maskload_ps(one_channel_offset(plane, row + kx), inside ? column[kx] : none);
                UNROLL for (int ky = 0; ky < 3; ky++) {
                    if (r - ky >= 0 && r - ky < rows) sum[r - ky] = _mm256_fmadd_ps(weight[3 * ky + kx], v, sum[r - ky]);
                }
            }
        }
    }
    UNROLL for (int i = 0; i < rows; i++) {
        __m256 v = _mm256_add_ps(sum[i], _mm256_set1_ps(bias));
        if (relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
        _mm256_maskstore_ps(output + (size_t)(y0 + i) * outputWidth + x0, store, v);
    }
}

/// `one_output_fn` with AVX2: tiles of 4 output rows x 8 positions in four ymm accumulators, the
/// channel's nine weights in nine more.
AVX2 static void one_output(float *output, const float *input, const float *packed, float bias, int relu,
                            int channels, int height, int width, int padding) {
    const int outputHeight = height + 2 * padding - 2, outputWidth = width + 2 * padding - 2;
    for (int x0 = 0; x0 < outputWidth; x0 += WIDTH) {
        __m256i column[3];
        UNROLL for (int kx = 0; kx < 3; kx++) column[kx] = lanes_between(padding - x0 - kx, width + padding - x0 - kx);
        const __m256i store = lanes_below(outputWidth - x0);
        for (int y0 = 0; y0 < outputHeight; y0 += ROWS) {
            switch (outputHeight - y0 < ROWS ? outputHeight - y0 : ROWS) {
            case 4: one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y0, x0, column, store, 4); break;
            case 3: one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y0, x0, column, store, 3); break;
            case 2: one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y0, x0, column, store, 2); break;
            default: one_output_tile(output, input, packed, bias, relu, channels, height, width, padding, y0, x0, column, store, 1);
            }
        }
    }
}

/// `v * (mask > 0 ? 1 : 0)`, the element-wise ReLU's backward.
AVX2 INLINE __m256 relu_backward(__m256 v, __m256 mask) {
    const __m256 positive = _mm256_cmp_ps(mask, _mm256_setzero_ps(), _CMP_GT_OQ);
    return _mm256_mul_ps(v, _mm256_and_ps(positive, _mm256_set1_ps(1.0f)));
}

/// `one_relu_backward_fn` with AVX2.
AVX2 static void one_relu_backward(float *output, const float *input, const float *mask, size_t count) {
    size_t i = 0;
    for (; i + WIDTH <= count; i += WIDTH) {
        _mm256_storeu_ps(output + i, relu_backward(_mm256_loadu_ps(input + i), _mm256_loadu_ps(mask + i)));
    }
    for (; i < count; i++) output[i] = input[i] * (mask[i] > 0 ? 1.0f : 0.0f);
}

/// `one_weight_fn` with AVX2: the 16 lanes of a sum in two ymm registers; per output channel and kernel
/// row, the three taps' sums (six registers) and, on the first kernel row, the bias sum (two more).
AVX2 static void one_weight(float *lanes, const float *plane, int stride, const float *outputGradient,
                            const float *outputMask, int outChannels, int outputHeight, int outputWidth,
                            int biasOfOutput) {
    const size_t outputPlane = (size_t)outputHeight * outputWidth;
    for (int o = 0; o < outChannels; o++) {
        const float *dy = outputGradient + o * outputPlane, *m = outputMask ? outputMask + o * outputPlane : 0;
        for (int ky = 0; ky < 3; ky++) {
            float *taps = lanes + ((size_t)o * 9 + 3 * ky) * LANES, *biasLanes = lanes + ((size_t)outChannels * 9 + o) * LANES;
            const int withBias = biasOfOutput && ky == 0;
            __m256 sum[3][2], biasSum[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
            UNROLL for (int kx = 0; kx < 3; kx++) {
                UNROLL for (int h = 0; h < 2; h++) sum[kx][h] = _mm256_loadu_ps(taps + kx * LANES + h * WIDTH);
            }
            if (withBias) {
                UNROLL for (int h = 0; h < 2; h++) biasSum[h] = _mm256_loadu_ps(biasLanes + h * WIDTH);
            }
            for (int x0 = 0; x0 < outputWidth; x0 += LANES) {
                for (int y = 0; y < outputHeight; y++) {
                    const size_t at = (size_t)y * outputWidth + x0;
                    __m256 d[2];
                    UNROLL for (int h = 0; h < 2; h++) {
                        const __m256i valid = lanes_below(outputWidth - x0 - h * WIDTH);
                        d[h] = _mm256_maskload_ps(dy + at + h * WIDTH, valid);
                        if (m) d[h] = relu_backward(d[h], _mm256_maskload_ps(m + at + h * WIDTH, valid));
                    }
                    const float *window = plane + (size_t)(y + ky) * stride + x0;
                    UNROLL for (int kx = 0; kx < 3; kx++) {
                        UNROLL for (int h = 0; h < 2; h++) {
                            sum[kx][h] = _mm256_fmadd_ps(d[h], _mm256_loadu_ps(window + kx + h * WIDTH), sum[kx][h]);
                        }
                    }
                    if (withBias) {
                        UNROLL for (int h = 0; h < 2; h++) biasSum[h] = _mm256_add_ps(biasSum[h], d[h]);
                    }
                }
            }
            UNROLL for (int kx = 0; kx < 3; kx++) {
                UNROLL for (int h = 0; h < 2; h++) _mm256_storeu_ps(taps + kx * LANES + h * WIDTH, sum[kx][h]);
            }
            if (withBias) {
                UNROLL for (int h = 0; h < 2; h++) _mm256_storeu_ps(biasLanes + h * WIDTH, biasSum[h]);
            }
        }
    }
}

void conv3x3_one_channel_image(
    float *output, const float *input, const float *mask, const float *weight, int rotated, const float *bias,
    int relu, int channels, int height, int width, int outChannels, int padding, float *scratch, int isa) {
    const int avx512 = isa == CONV3X3_ISA_AVX512;
    if (channels == 1) {
        // packed [16 * ceil(O / 16), 9] (zero past O), then the padded plane
        const int filters = (outChannels + LANES - 1) / LANES * LANES, outputWidth = width + 2 * padding - 2;
        float *packed = scratch, *plane = scratch + whole_blocks((size_t)filters * 9);
        memset(packed, 0, (size_t)filters * 9 * sizeof(float));
        pack_taps(packed, weight, outChannels, rotated);
        const int stride = one_channel_stride(outputWidth);
        pad_plane(plane, stride, input, mask, height, width, padding);
        const one_input_fn kernel = avx512 ? conv3x3_one_input_avx512 : one_input;
        kernel(output, plane, stride, packed, bias, relu, outChannels, height + 2 * padding - 2, outputWidth);
    } else {
        // packed [C, 9], then the masked input [C, H, W] when there is a mask
        float *packed = scratch, *masked = scratch + whole_blocks((size_t)channels * 9);
        pack_taps(packed, weight, channels, rotated);
        if (mask) {
            const one_relu_backward_fn relu_backward = avx512 ? conv3x3_one_relu_backward_avx512 : one_relu_backward;
            relu_backward(masked, input, mask, (size_t)channels * height * width);
            input = masked;
        }
        const one_output_fn kernel = avx512 ? conv3x3_one_output_avx512 : one_output;
        kernel(output, input, packed, bias ? bias[0] : 0.0f, relu, channels, height, width, padding);
    }
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
        pad_plane(plane, stride, input + n * imageSize, inputMask ? inputMask + n * imageSize : 0, height, width, padding);
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
void conv3x3_one_channel_image(
    float *output, const float *input, const float *mask, const float *weight, int rotated, const float *bias,
    int relu, int channels, int height, int width, int outChannels, int padding, float *scratch, int isa) {
    (void)output; (void)input; (void)mask; (void)weight; (void)rotated; (void)bias; (void)relu; (void)channels;
    (void)height; (void)width; (void)outChannels; (void)padding; (void)scratch; (void)isa;
    (void)pad_plane; (void)pack_taps;
}

void conv3x3_one_channel_weight_gradient(
    float *weightGradient, float *biasGradient, int biasOfInput, const float *input, const float *inputMask,
    const float *outputGradient, const float *outputMask, int images, int height, int width, int outChannels,
    int padding, float *scratch, int isa) {
    (void)weightGradient; (void)biasGradient; (void)biasOfInput; (void)input; (void)inputMask; (void)outputGradient;
    (void)outputMask; (void)images; (void)height; (void)width; (void)outChannels; (void)padding; (void)scratch; (void)isa;
}
#endif
