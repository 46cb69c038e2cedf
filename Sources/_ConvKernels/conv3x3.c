// Direct 3x3 stride-1 convolution (see conv3x3.h). The package builds for baseline x86-64: only the
// functions marked `target("avx2,fma")` use AVX2/FMA3, and Swift calls them only after
// `conv3x3_supported()` said yes.
#include "conv3x3.h"

#include <string.h>

enum { BLOCK = CONV3X3_CHANNEL_BLOCK, TILE = 24, SLACK = 32 };

static int round_up(int value, int multiple) { return (value + multiple - 1) / multiple * multiple; }

size_t conv3x3_packed_count(int outChannels, int inChannels) {
    return (size_t)round_up(outChannels, BLOCK) * (size_t)inChannels * 9;
}

void conv3x3_pack(float *packed, const float *weight, int outChannels, int inChannels, int flipped) {
    const int blocks = round_up(outChannels, BLOCK) / BLOCK;
    for (int b = 0; b < blocks; b++) {
        for (int c = 0; c < inChannels; c++) {
            for (int t = 0; t < 9; t++) {
                float *dst = packed + (((size_t)b * inChannels + c) * 9 + t) * BLOCK;  // [blocks, C, 9, 4]
                for (int j = 0; j < BLOCK; j++) {
                    const int o = b * BLOCK + j;
                    if (o >= outChannels) {
                        dst[j] = 0;
                    } else if (flipped) {
                        dst[j] = weight[((size_t)c * outChannels + o) * 9 + (8 - t)];  // [C, O, 3, 3], rotated
                    } else {
                        dst[j] = weight[((size_t)o * inChannels + c) * 9 + t];  // [O, C, 3, 3]
                    }
                }
            }
        }
    }
}

/// The padded input's geometry, and the tiles of 24 "wide" output positions that cover the output.
typedef struct {
    int paddedHeight, paddedWidth, outputHeight, outputWidth;
    size_t planeSize, paddedCount;  // one padded plane; all planes + slack, rounded to 8 floats
    int tiles;
} Layout;

static Layout layout(int channels, int height, int width, int padding) {
    Layout l;
    l.paddedHeight = height + 2 * padding;
    l.paddedWidth = width + 2 * padding;
    l.outputHeight = l.paddedHeight - 2;
    l.outputWidth = l.paddedWidth - 2;
    l.planeSize = (size_t)l.paddedHeight * (size_t)l.paddedWidth;
    // The last tile reads at most 23 floats past the last plane (see conv3x3.h): SLACK zeros.
    l.paddedCount = (size_t)round_up((int)(channels * l.planeSize) + SLACK, 8);
    const int positions = (l.outputHeight - 1) * l.paddedWidth + l.outputWidth;  // last valid wide position + 1
    l.tiles = (positions + TILE - 1) / TILE;
    return l;
}

size_t conv3x3_scratch_count(int channels, int height, int width, int padding, int blockBegin, int blockEnd) {
    const Layout l = layout(channels, height, width, padding);
    return l.paddedCount + (size_t)(blockEnd - blockBegin) * BLOCK * (size_t)l.tiles * TILE;
}

/// `padded [C, Hp, Wp]` = `input` (times `mask > 0`) inside a frame of `padding` zeros, then SLACK zeros.
static void pad_input(float *padded, const float *input, const float *mask, int channels, int height, int width,
                      int padding, const Layout *l) {
    memset(padded, 0, l->paddedCount * sizeof(float));
    for (int c = 0; c < channels; c++) {
        for (int y = 0; y < height; y++) {
            float *dst = padded + c * l->planeSize + (size_t)(y + padding) * l->paddedWidth + padding;
            const size_t offset = ((size_t)c * height + y) * width;
            const float *src = input + offset;
            if (mask) {
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

int conv3x3_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/// One tap: three input vectors at `s` (24 wide positions) times four broadcast weights at `w`.
#define TAP(s, w)                                                                   \
    do {                                                                            \
        const __m256 x0 = _mm256_loadu_ps(s), x1 = _mm256_loadu_ps((s) + 8);        \
        const __m256 x2 = _mm256_loadu_ps((s) + 16);                                \
        __m256 wv = _mm256_broadcast_ss(w);                                         \
        a00 = _mm256_fmadd_ps(wv, x0, a00); a01 = _mm256_fmadd_ps(wv, x1, a01);     \
        a02 = _mm256_fmadd_ps(wv, x2, a02);                                         \
        wv = _mm256_broadcast_ss((w) + 1);                                          \
        a10 = _mm256_fmadd_ps(wv, x0, a10); a11 = _mm256_fmadd_ps(wv, x1, a11);     \
        a12 = _mm256_fmadd_ps(wv, x2, a12);                                         \
        wv = _mm256_broadcast_ss((w) + 2);                                          \
        a20 = _mm256_fmadd_ps(wv, x0, a20); a21 = _mm256_fmadd_ps(wv, x1, a21);     \
        a22 = _mm256_fmadd_ps(wv, x2, a22);                                         \
        wv = _mm256_broadcast_ss((w) + 3);                                          \
        a30 = _mm256_fmadd_ps(wv, x0, a30); a31 = _mm256_fmadd_ps(wv, x1, a31);     \
        a32 = _mm256_fmadd_ps(wv, x2, a32);                                         \
    } while (0)

/// `tile [blocks * 4, tiles * 24]`: the wide outputs of blocks `[blockBegin, blockEnd)`.
__attribute__((target("avx2,fma")))
static void conv3x3_tiles(float *tile, const float *padded, const float *packed, int channels, const Layout *l,
                          int blockBegin, int blockEnd) {
    const size_t tileStride = (size_t)l->tiles * TILE, plane = l->planeSize;
    const int wp = l->paddedWidth;
    for (int t = 0; t < l->tiles; t++) {
        const float *origin = padded + (size_t)t * TILE;
        for (int b = blockBegin; b < blockEnd; b++) {
            const float *w = packed + (size_t)b * channels * 9 * BLOCK;
            __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
            __m256 a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
            for (int c = 0; c < channels; c++) {
                const float *r0 = origin + c * plane, *r1 = r0 + wp, *r2 = r1 + wp;
                TAP(r0, w); TAP(r0 + 1, w + 4); TAP(r0 + 2, w + 8);
                TAP(r1, w + 12); TAP(r1 + 1, w + 16); TAP(r1 + 2, w + 20);
                TAP(r2, w + 24); TAP(r2 + 1, w + 28); TAP(r2 + 2, w + 32);
                w += 9 * BLOCK;
            }
            float *out = tile + (size_t)(b - blockBegin) * BLOCK * tileStride + (size_t)t * TILE;
            _mm256_storeu_ps(out, a00); _mm256_storeu_ps(out + 8, a01); _mm256_storeu_ps(out + 16, a02);
            out += tileStride;
            _mm256_storeu_ps(out, a10); _mm256_storeu_ps(out + 8, a11); _mm256_storeu_ps(out + 16, a12);
            out += tileStride;
            _mm256_storeu_ps(out, a20); _mm256_storeu_ps(out + 8, a21); _mm256_storeu_ps(out + 16, a22);
            out += tileStride;
            _mm256_storeu_ps(out, a30); _mm256_storeu_ps(out + 8, a31); _mm256_storeu_ps(out + 16, a32);
        }
    }
}

void conv3x3_image(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int blockBegin, int blockEnd,
    float *scratch) {
    const Layout l = layout(channels, height, width, padding);
    float *padded = scratch, *tile = scratch + l.paddedCount;
    pad_input(padded, input, mask, channels, height, width, padding, &l);
    conv3x3_tiles(tile, padded, packed, channels, &l, blockBegin, blockEnd);
    // The wide rows -> [O, OH, OW], plus the bias, then the ReLU.
    const size_t tileStride = (size_t)l.tiles * TILE;
    const int oh = l.outputHeight, ow = l.outputWidth, wp = l.paddedWidth;
    for (int o = blockBegin * BLOCK; o < blockEnd * BLOCK && o < outChannels; o++) {
        const float b = bias ? bias[o] : 0.0f;
        const float *src = tile + (size_t)(o - blockBegin * BLOCK) * tileStride;
        float *dst = output + (size_t)o * oh * ow;
        for (int y = 0; y < oh; y++) {
            const float *s = src + (size_t)y * wp;
            float *d = dst + (size_t)y * ow;
            if (relu) {
                for (int x = 0; x < ow; x++) {
                    const float v = s[x] + b;
                    d[x] = v > 0 ? v : 0;
                }
            } else {
                for (int x = 0; x < ow; x++) d[x] = s[x] + b;
            }
        }
    }
}
#else
int conv3x3_supported(void) { return 0; }

void conv3x3_image(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int blockBegin, int blockEnd,
    float *scratch) {
    (void)output; (void)input; (void)mask; (void)packed; (void)bias; (void)relu; (void)channels; (void)height;
    (void)width; (void)outChannels; (void)padding; (void)blockBegin; (void)blockEnd; (void)scratch;
}
#endif
