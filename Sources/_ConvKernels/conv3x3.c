// Direct 3x3 stride-1 convolution (see conv3x3.h): padding, packing, transposes and the AVX2
// micro-kernels; the AVX-512 ones are in conv3x3_avx512.c. The package builds for baseline x86-64:
// only the functions marked `target(...)` use AVX2/FMA3 or AVX-512, and they run only with an
// instruction set that `conv3x3_best_isa()` reported.
#include "conv3x3_kernels.h"

#include <string.h>

enum { BLOCK = CONV3X3_CHANNEL_BLOCK, POSITIONS = 6 };

int conv3x3_blocks(int outChannels) { return (outChannels + BLOCK - 1) / BLOCK; }

size_t conv3x3_packed_count(int outChannels, int inChannels) {
    return (size_t)conv3x3_blocks(outChannels) * BLOCK * (size_t)inChannels * 9;
}

void conv3x3_pack(float *packed, const float *weight, int outChannels, int inChannels, int rotated) {
    // Reads `weight` in order and writes each value to its place: `[blocks, C, 9, 16]`, t = 3 * ky + kx.
    memset(packed, 0, conv3x3_packed_count(outChannels, inChannels) * sizeof(float));
    const size_t perChannel = 9 * BLOCK;
    if (rotated) {
        for (int c = 0; c < inChannels; c++) {  // weight [C, O, 3, 3], w[o, c, t] = weight[c, o, 8 - t]
            for (int o = 0; o < outChannels; o++) {
                const float *src = weight + ((size_t)c * outChannels + o) * 9;
                float *dst = packed + ((size_t)(o / BLOCK) * inChannels + c) * perChannel + o % BLOCK;
                for (int t = 0; t < 9; t++) dst[t * BLOCK] = src[8 - t];
            }
        }
    } else {
        for (int o = 0; o < outChannels; o++) {  // weight [O, C, 3, 3]
            for (int c = 0; c < inChannels; c++) {
                const float *src = weight + ((size_t)o * inChannels + c) * 9;
                float *dst = packed + ((size_t)(o / BLOCK) * inChannels + c) * perChannel + o % BLOCK;
                for (int t = 0; t < 9; t++) dst[t * BLOCK] = src[t];
            }
        }
    }
}

/// Floats of the padded image `[C, H + 2p, W + 2p]` (the first part of the scratch memory).
static size_t padded_count(int channels, int height, int width, int padding) {
    return (size_t)channels * (size_t)(height + 2 * padding) * (size_t)(width + 2 * padding);
}

size_t conv3x3_scratch_count(int channels, int height, int width, int outChannels, int padding) {
    const size_t positions = (size_t)(height + 2 * padding - 2) * (size_t)(width + 2 * padding - 2);
    return padded_count(channels, height, width, padding) + (size_t)conv3x3_blocks(outChannels) * BLOCK * positions;
}

/// `padded [C, r1 - r0, W + 2p]` = the rows `[r0, r1)` of `input` (times `mask > 0`) inside a frame of `padding`
/// zeros (`[C, H + 2p, W + 2p]`; all of it for `r0 = 0`, `r1 = H + 2p`).
static void pad_input(float *padded, const float *input, const float *mask, int channels, int height, int width,
                      int padding, int r0, int r1) {
    const int wp = width + 2 * padding;
    memset(padded, 0, (size_t)channels * (r1 - r0) * wp * sizeof(float));
    for (int c = 0; c < channels; c++) {
        for (int y = r0 - padding > 0 ? r0 - padding : 0; y < height && y + padding < r1; y++) {
            float *dst = padded + ((size_t)c * (r1 - r0) + y + padding - r0) * wp + padding;
            const size_t offset = ((size_t)c * height + y) * width;
            const float *src = input + offset;
            if (mask) {
                // the element-wise ReLU's backward: the same expression, so the same bits
                const float *m = mask + offset;
                for (int x = 0; x < width; x++) dst[x] = src[x] * (m[x] > 0 ? 1.0f : 0.0f);
            } else {
                memcpy(dst, src, (size_t)width * sizeof(float));
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

int conv3x3_best_isa(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return CONV3X3_ISA_NONE;
    return __builtin_cpu_supports("avx512f") ? CONV3X3_ISA_AVX512 : CONV3X3_ISA_AVX2;
}

/// The step both AVX2 tiles repeat: two vectors (16 output channels) at `v` times the broadcast float
/// at offset `d` from each of the six pointers `s0` ... `s5`, into the accumulators `a00` ... `a51`;
/// then `v` moves to the next 16 floats.
#define FMA_TILE(v, s, d)                                                                                 \
    do {                                                                                                  \
        const __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps((v) + 8);                              \
        __m256 x = _mm256_broadcast_ss(s##0 + (d));                                                       \
        a00 = _mm256_fmadd_ps(v0, x, a00); a01 = _mm256_fmadd_ps(v1, x, a01);                             \
        x = _mm256_broadcast_ss(s##1 + (d));                                                              \
        a10 = _mm256_fmadd_ps(v0, x, a10); a11 = _mm256_fmadd_ps(v1, x, a11);                             \
        x = _mm256_broadcast_ss(s##2 + (d));                                                              \
        a20 = _mm256_fmadd_ps(v0, x, a20); a21 = _mm256_fmadd_ps(v1, x, a21);                             \
        x = _mm256_broadcast_ss(s##3 + (d));                                                              \
        a30 = _mm256_fmadd_ps(v0, x, a30); a31 = _mm256_fmadd_ps(v1, x, a31);                             \
        x = _mm256_broadcast_ss(s##4 + (d));                                                              \
        a40 = _mm256_fmadd_ps(v0, x, a40); a41 = _mm256_fmadd_ps(v1, x, a41);                             \
        x = _mm256_broadcast_ss(s##5 + (d));                                                              \
        a50 = _mm256_fmadd_ps(v0, x, a50); a51 = _mm256_fmadd_ps(v1, x, a51);                             \
        (v) += BLOCK;                                                                                     \
    } while (0)

/// One tap: the weight vectors at `w` times the input at offset `d` from each of the six positions' windows.
#define TAP(d) FMA_TILE(w, p, d)

/// `conv3x3_tiles_fn` with AVX2: tiles of 16 channels x 6 positions held in 12 ymm registers.
__attribute__((target("avx2,fma")))
static void conv3x3_tiles(float *rows, size_t blockStride, const conv3x3_rectangle *r, const float *packed,
                          int channels, size_t plane, int sourceWidth, int outputWidth, int blocks) {
    const int ws = sourceWidth, total = (r->rowEnd - r->rowBegin) * (r->columnEnd - r->columnBegin);
    const int full = r->kyBegin == 0 && r->kyEnd == 3 && r->kxBegin == 0 && r->kxEnd == 3;
    for (int start = 0; start < total; start += POSITIONS) {
        int position[POSITIONS];
        const float *corner[POSITIONS];
        const int count = conv3x3_tile_corners(r, start, POSITIONS, outputWidth, ws, position, corner);
        for (int b = 0; b < blocks; b++) {
            const float *w = packed + (size_t)b * channels * 9 * BLOCK;
            const float *p0 = corner[0], *p1 = corner[1], *p2 = corner[2], *p3 = corner[3], *p4 = corner[4];
            const float *p5 = corner[5];
            __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
            __m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
            if (full) {
                for (int c = 0; c < channels; c++) {
                    TAP(0); TAP(1); TAP(2);
                    TAP(ws); TAP(ws + 1); TAP(ws + 2);
                    TAP(2 * ws); TAP(2 * ws + 1); TAP(2 * ws + 2);
                    p0 += plane; p1 += plane; p2 += plane; p3 += plane; p4 += plane; p5 += plane;
                }
            } else {
                for (int c = 0; c < channels; c++) {
                    const float *wc = w;
                    for (int ky = r->kyBegin; ky < r->kyEnd; ky++) {
                        for (int kx = r->kxBegin; kx < r->kxEnd; kx++) {
                            w = wc + (3 * ky + kx) * BLOCK;
                            TAP((ky - r->kyBegin) * ws + kx - r->kxBegin);
                        }
                    }
                    w = wc + 9 * BLOCK;
                    p0 += plane; p1 += plane; p2 += plane; p3 += plane; p4 += plane; p5 += plane;
                }
            }
            float *out = rows + (size_t)b * blockStride;  // [P, 16]
            const __m256 sums[POSITIONS][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}, {a40, a41}, {a50, a51}};
            for (int j = 0; j < count; j++) {
                _mm256_storeu_ps(out + (size_t)position[j] * BLOCK, sums[j][0]);
                _mm256_storeu_ps(out + (size_t)position[j] * BLOCK + 8, sums[j][1]);
            }
        }
    }
}

/// `r[k][j]` becomes `r[j][k]` (an 8 x 8 transpose in registers).
__attribute__((target("avx2,fma"))) static inline __attribute__((always_inline)) void transpose8_avx2(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44), u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44), u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20), r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
}

/// `rows` and `sums` of `conv3x3_kernels.h` with AVX2: eight channels x eight positions at a time through an
/// 8 x 8 transpose; each lane adds its channel's values in position order from +0 (the positions past
/// the last load as zeros and add +0, which leaves such a sum as it is).
__attribute__((target("avx2,fma")))
void conv3x3_rows_avx2(float *rows, const float *source, const float *mask, int channels, int positions, float *sums) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int o0 = 0; o0 < conv3x3_blocks(channels) * BLOCK; o0 += 8) {
        const int here = channels - o0 < 0 ? 0 : channels - o0 < 8 ? channels - o0 : 8;
        __m256 sum = zero;
        for (int p = 0; p < positions; p += 8) {
            const int count = positions - p < 8 ? positions - p : 8;
            const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(count), index);
            __m256 r[8];  // [channel, position], then [position, channel]
            for (int k = 0; k < 8; k++) {
                if (k < here) {
                    const size_t at = (size_t)(o0 + k) * positions + p;
                    r[k] = count == 8 ? _mm256_loadu_ps(source + at) : _mm256_maskload_ps(source + at, lanes);
                    if (mask) {
                        const __m256 m = count == 8 ? _mm256_loadu_ps(mask + at) : _mm256_maskload_ps(mask + at, lanes);
                        r[k] = conv3x3_relu_backward_avx2(r[k], m);
                    }
                } else {
                    r[k] = zero;
                }
            }
            transpose8_avx2(r);
            for (int j = 0; j < 8; j++) sum = _mm256_add_ps(sum, r[j]);
            if (rows) {
                float *dst = rows + ((size_t)(o0 / BLOCK) * positions + p) * BLOCK + o0 % BLOCK;
                for (int j = 0; j < count; j++) _mm256_storeu_ps(dst + (size_t)j * BLOCK, r[j]);
            }
        }
        if (sums && here > 0) {
            float lane[8];
            _mm256_storeu_ps(lane, sum);
            for (int k = 0; k < here; k++) sums[o0 + k] += lane[k];
        }
    }
}

/// `output [O, P]` (channel `o` at `output + o * outputStride`) = `relu?(rows [blocks, P, 16] transposed + bias)`,
/// eight positions x eight channels at a time through an in-register 8x8 transpose. The ReLU is
/// `max(v, 0)`, which gives `v > 0 ? v : 0` for every v, -0 and NaN included.
__attribute__((target("avx2,fma")))
void conv3x3_store_avx2(float *output, const float *rows, const float *bias, int relu, int outChannels, int positions,
                          int blocks, size_t outputStride) {
    const __m256 zero = _mm256_setzero_ps();
    for (int b = 0; b < blocks; b++) {
        for (int half = 0; half < 2; half++) {
            const int o0 = b * BLOCK + half * 8;
            if (o0 >= outChannels) break;
            const int channelsHere = outChannels - o0 < 8 ? outChannels - o0 : 8;
            const float *src = rows + (size_t)b * positions * BLOCK + half * 8;  // [P, 16], this half's 8 channels
            float start[8];
            for (int k = 0; k < 8; k++) start[k] = bias && k < channelsHere ? bias[o0 + k] : 0.0f;
            int p = 0;
            for (; p + 8 <= positions; p += 8) {
                const float *r = src + (size_t)p * BLOCK;
                const __m256 r0 = _mm256_loadu_ps(r), r1 = _mm256_loadu_ps(r + BLOCK);
                const __m256 r2 = _mm256_loadu_ps(r + 2 * BLOCK), r3 = _mm256_loadu_ps(r + 3 * BLOCK);
                const __m256 r4 = _mm256_loadu_ps(r + 4 * BLOCK), r5 = _mm256_loadu_ps(r + 5 * BLOCK);
                const __m256 r6 = _mm256_loadu_ps(r + 6 * BLOCK), r7 = _mm256_loadu_ps(r + 7 * BLOCK);
                const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
                const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
                const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
                const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
                const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
                const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
                const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
                const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
                __m256 channel[8];  // channel[k]: channel o0 + k at positions p ..< p + 8
                channel[0] = _mm256_permute2f128_ps(u0, u4, 0x20); channel[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
                channel[2] = _mm256_permute2f128_ps(u2, u6, 0x20); channel[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
                channel[4] = _mm256_permute2f128_ps(u0, u4, 0x31); channel[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
                channel[6] = _mm256_permute2f128_ps(u2, u6, 0x31); channel[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
                for (int k = 0; k < channelsHere; k++) {
                    __m256 v = _mm256_add_ps(channel[k], _mm256_set1_ps(start[k]));
                    if (relu) v = _mm256_max_ps(v, zero);
                    _mm256_storeu_ps(output + (size_t)(o0 + k) * outputStride + p, v);
                }
            }
            for (; p < positions; p++) {
                for (int k = 0; k < channelsHere; k++) {
                    const float v = src[(size_t)p * BLOCK + k] + start[k];
                    output[(size_t)(o0 + k) * outputStride + p] = relu ? (v > 0 ? v : 0) : v;
                }
            }
        }
    }
}

/// The first kernel row (column) whose tap reaches the image from output row (column) `y` with `padding`,
/// and the end of those taps, for an image `size` rows (columns) long.
static int tap_begin(int y, int padding) { return padding - y > 0 ? padding - y : 0; }
static int tap_end(int y, int padding, int size) { return padding + size - y < 3 ? padding + size - y : 3; }

void conv3x3_image_rows(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int y0, int y1, float *scratch, int isa,
    int prefetchNext) {
    const int avx512 = isa == CONV3X3_ISA_AVX512;
    const conv3x3_tiles_fn tiles = avx512 ? conv3x3_tiles_avx512 : conv3x3_tiles;
    const int blocks = conv3x3_blocks(outChannels), oh = height + 2 * padding - 2, ow = width + 2 * padding - 2;
    float *rows = scratch + padded_count(channels, height, width, padding);
    // The positions are cut into rectangles whose windows reach the image through the same taps, and each
    // skips the taps that would read padding, so the windows read the image itself (or, with a mask, its rows
    // [r0, r1) times mask > 0 in the scratch memory). With finite weights the values are those of adding the
    // padding's products too: each is a zero, and the sums start at +0 (so are never -0), so adding one
    // changes nothing. A row whose middle (the columns that see no padding) is narrower than 12 would leave
    // short tiles in its edge columns and corners: then the rows [y0 - p, y1 + 2 - p) are copied inside a
    // frame of zeros and only the kernel rows that read padding are skipped.
    const int framed = padding > 0 && ow - 2 * padding < 12;
    const int r0 = y0 - padding > 0 ? y0 - padding : 0, r1 = y1 + 2 - padding < height ? y1 + 2 - padding : height;
    const float *source = input;
    int sourceRow = 0, sourceColumn = 0, sourceWidth = width;  // the image row and column at `source`, its row length
    size_t plane = (size_t)height * width;
    void (*const copy)(float *, const float *, const float *, int, int, int, int, int, int) =
        avx512 ? conv3x3_pad_avx512 : pad_input;
    if (framed) {
        copy(scratch, input, mask, channels, height, width, padding, y0, y1 + 2);
        source = scratch, sourceRow = y0 - padding, sourceColumn = -padding, sourceWidth = width + 2 * padding;
        plane = (size_t)(y1 + 2 - y0) * sourceWidth;
    } else if (mask && r0 < r1) {
        copy(scratch, input, mask, channels, height, width, 0, r0, r1);
        source = scratch, sourceRow = r0, plane = (size_t)(r1 - r0) * width;
    }
    if (avx512 && prefetchNext) conv3x3_prefetch_avx512(input, mask, (size_t)channels * height * width);
    const size_t blockStride = (size_t)(y1 - y0) * ow * BLOCK;
    for (int ya = y0, yb; ya < y1; ya = yb) {
        const int kyBegin = tap_begin(ya, padding), kyEnd = tap_end(ya, padding, height);
        for (yb = ya + 1; yb < y1 && tap_begin(yb, padding) == kyBegin && tap_end(yb, padding, height) == kyEnd; yb++) {}
        for (int xa = 0, xb; xa < ow; xa = xb) {
            // framed: one stretch of whole rows, every kernel column (the frame gives the padding's zeros)
            const int kxBegin = framed ? 0 : tap_begin(xa, padding), kxEnd = framed ? 3 : tap_end(xa, padding, width);
            xb = framed ? ow : xa + 1;
            while (xb < ow && tap_begin(xb, padding) == kxBegin && tap_end(xb, padding, width) == kxEnd) xb++;
            // a window wholly in the padding (an image smaller than the padding) reads nothing: its sums stay +0
            const int reaches = kyBegin < kyEnd && kxBegin < kxEnd;
            const size_t corner =
                (size_t)(ya - padding + kyBegin - sourceRow) * sourceWidth + (size_t)(xa - padding + kxBegin - sourceColumn);
            const conv3x3_rectangle rectangle = {
                ya - y0, yb - y0, xa, xb, kyBegin, reaches ? kyEnd : kyBegin, kxBegin, reaches ? kxEnd : kxBegin,
                reaches ? source + corner : source};
            tiles(rows, blockStride, &rectangle, packed, channels, plane, sourceWidth, ow, blocks);
        }
    }
    const size_t stride = (size_t)oh * ow;
    if (avx512) {
        conv3x3_store_avx512(output + (size_t)y0 * ow, rows, bias, relu, outChannels, (y1 - y0) * ow, stride);
    } else {
        conv3x3_store_avx2(output + (size_t)y0 * ow, rows, bias, relu, outChannels, (y1 - y0) * ow, blocks, stride);
    }
}

/// One position of the weight-gradient kernel: the gradient vectors at `g` times the input at `index`
/// of each of the six columns `(c, ky, kx)`.
#define POSITION(index) FMA_TILE(g, q, index)

/// `conv3x3_weight_tiles_fn` with AVX2: tiles of 16 output channels x 6 columns `(c, ky, kx)` held in
/// 12 ymm registers.
__attribute__((target("avx2,fma")))
static void conv3x3_weight_tiles(float *weightGradient, const float *rows, const float *padded, int channels,
                                 int outChannels, int outputHeight, int outputWidth) {
    const int ow = outputWidth, wp = outputWidth + 2, positions = outputHeight * outputWidth, columns = channels * 9;
    const size_t plane = (size_t)(outputHeight + 2) * wp;
    for (int first = 0; first < columns; first += POSITIONS) {
        // The tile's columns (a last, short tile repeats its last column) and where each reads the input.
        const int count = columns - first < POSITIONS ? columns - first : POSITIONS;
        int column[POSITIONS];
        const float *origin[POSITIONS];
        for (int j = 0; j < POSITIONS; j++) {
            column[j] = first + (j < count ? j : count - 1);
            const int c = column[j] / 9, t = column[j] % 9;
            origin[j] = padded + (size_t)c * plane + (size_t)(t / 3) * wp + t % 3;
        }
        const float *q0 = origin[0], *q1 = origin[1], *q2 = origin[2], *q3 = origin[3], *q4 = origin[4];
        const float *q5 = origin[5];
        for (int b = 0; b < conv3x3_blocks(outChannels); b++) {
            const float *g = rows + (size_t)b * positions * BLOCK;
            __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
            __m256 a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
            for (int y = 0; y < outputHeight; y++) {
                for (int index = y * wp; index < y * wp + ow; index++) POSITION(index);
            }
            float sums[POSITIONS][BLOCK];  // [column, channel]
            _mm256_storeu_ps(sums[0], a00); _mm256_storeu_ps(sums[0] + 8, a01);
            _mm256_storeu_ps(sums[1], a10); _mm256_storeu_ps(sums[1] + 8, a11);
            _mm256_storeu_ps(sums[2], a20); _mm256_storeu_ps(sums[2] + 8, a21);
            _mm256_storeu_ps(sums[3], a30); _mm256_storeu_ps(sums[3] + 8, a31);
            _mm256_storeu_ps(sums[4], a40); _mm256_storeu_ps(sums[4] + 8, a41);
            _mm256_storeu_ps(sums[5], a50); _mm256_storeu_ps(sums[5] + 8, a51);
            for (int k = 0; k < BLOCK && b * BLOCK + k < outChannels; k++) {
                float *dst = weightGradient + (size_t)(b * BLOCK + k) * columns;
                for (int j = 0; j < count; j++) dst[column[j]] += sums[j][k];
            }
        }
    }
}

void conv3x3_weight_gradient_image(
    float *weightGradient, float *biasGradient, int biasOfInput, const float *input, const float *inputMask,
    const float *outputGradient, const float *outputMask, int channels, int height, int width, int outChannels,
    int padding, float *scratch, int isa, int prefetchNext) {
    const int oh = height + 2 * padding - 2, ow = width + 2 * padding - 2;
    float *rows = scratch + padded_count(channels, height, width, padding);
    const float *padded = padding == 0 && !inputMask ? input : scratch;  // without padding and mask: the input itself
    if (isa == CONV3X3_ISA_AVX512) {
        // the same values and sums as below; the input's channel sums skip the frame's zeros, which add nothing
        // to a sum that starts at +0
        if (padded == scratch) conv3x3_pad_avx512(scratch, input, inputMask, channels, height, width, padding, 0, height + 2 * padding);
        conv3x3_rows_avx512(rows, outputGradient, outputMask, outChannels, oh * ow, biasOfInput ? 0 : biasGradient);
        if (prefetchNext) {
            conv3x3_prefetch_avx512(input, inputMask, (size_t)channels * height * width);
            conv3x3_prefetch_avx512(outputGradient, outputMask, (size_t)outChannels * oh * ow);
        }
        conv3x3_weight_tiles_avx512(weightGradient, rows, padded, channels, outChannels, oh, ow);
        if (biasGradient && biasOfInput) conv3x3_rows_avx512(0, input, inputMask, channels, height * width, biasGradient);
        return;
    }
    if (padded == scratch) pad_input(scratch, input, inputMask, channels, height, width, padding, 0, height + 2 * padding);
    conv3x3_rows_avx2(rows, outputGradient, outputMask, outChannels, oh * ow, biasOfInput ? 0 : biasGradient);
    conv3x3_weight_tiles(weightGradient, rows, padded, channels, outChannels, oh, ow);
    if (biasGradient && biasOfInput) conv3x3_rows_avx2(0, input, inputMask, channels, height * width, biasGradient);
}
#else
int conv3x3_best_isa(void) { return CONV3X3_ISA_NONE; }

void conv3x3_image_rows(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int y0, int y1, float *scratch, int isa,
    int prefetchNext) {
    (void)y0; (void)y1; (void)isa; (void)prefetchNext; (void)output; (void)input; (void)mask; (void)packed; (void)bias; (void)relu; (void)channels; (void)height;
    (void)width; (void)outChannels; (void)padding; (void)scratch;
    (void)pad_input;
}

void conv3x3_weight_gradient_image(
    float *weightGradient, float *biasGradient, int biasOfInput, const float *input, const float *inputMask,
    const float *outputGradient, const float *outputMask, int channels, int height, int width, int outChannels,
    int padding, float *scratch, int isa, int prefetchNext) {
    (void)isa; (void)prefetchNext; (void)weightGradient; (void)biasGradient; (void)biasOfInput; (void)input; (void)inputMask; (void)outputGradient;
    (void)outputMask; (void)channels; (void)height; (void)width; (void)outChannels; (void)padding; (void)scratch;
}
#endif

void conv3x3_image(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, float *scratch, int isa, int prefetchNext) {
    conv3x3_image_rows(output, input, mask, packed, bias, relu, channels, height, width, outChannels, padding, 0,
                       height + 2 * padding - 2, scratch, isa, prefetchNext);
}
