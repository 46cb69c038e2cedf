// Winograd F(2x2, 3x3) for the 3x3 stride-1 convolution and its weight gradient (see conv3x3_winograd.h). Each
// transform is a fixed sequence of additions (and halvings for the weights): portable C for the weights and the
// output, and input transforms that read the image itself with masked loads (AVX-512 and AVX2, the same values). The 16
// matrix products take the register tiles of the direct kernel (winograd_products.h, shared with F(4x4, 3x3)), and the
// transposing store pass is the direct kernel's (conv3x3_kernels.h). The weight gradient reuses
// the input transform and adds the output gradient's (`A dY A^T`, portable and AVX-512) and the weights' (`G^T X G`).
#include "conv3x3_winograd.h"
#include "conv3x3_kernels.h"
#include "winograd_products.h"

#include <string.h>

enum { BLOCK = CONV3X3_CHANNEL_BLOCK, POINTS = 16, GROUP = WINOGRAD_GROUP };

size_t conv3x3_winograd_packed_count(int outChannels, int inChannels) {
    return (size_t)POINTS * conv3x3_blocks(outChannels) * BLOCK * (size_t)inChannels;
}

/// `u [4][4] = G g G^T` for one 3 x 3 kernel `g` (row-major, `g[3 * ky + kx]`), with
/// `G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]`.
static void transform_kernel(float u[16], const float g[9]) {
    float t[4][3];  // G g
    for (int x = 0; x < 3; x++) {
        const float a = g[x], b = g[3 + x], c = g[6 + x], s = a + c;
        t[0][x] = a, t[1][x] = (s + b) * 0.5f, t[2][x] = (s - b) * 0.5f, t[3][x] = c;
    }
    for (int r = 0; r < 4; r++) {
        const float a = t[r][0], b = t[r][1], c = t[r][2], s = a + c;
        u[4 * r] = a, u[4 * r + 1] = (s + b) * 0.5f, u[4 * r + 2] = (s - b) * 0.5f, u[4 * r + 3] = c;
    }
}

void conv3x3_winograd_pack(float *packed, const float *weight, int outChannels, int inChannels, int rotated) {
    winograd_pack(packed, weight, outChannels, inChannels, rotated, POINTS, transform_kernel);
}

/// The band of rows `[y0, y1)` in tiles: `tileRows` rows of `tilesX` tiles from tile row `y0 / 2`, `tiles` in all,
/// `stride` apart in the transformed buffers (whole groups of `GROUP` and 16 more), from tile `first` of each row
/// on (0 but for the weight gradient's bands of several images, one after the other); the padded window they read
/// is `[C, 2 * tileRows + 2, 2 * tilesX + 2]`. Its tiles are the image's tile columns `column ..< column + tilesX`:
/// all of them (`column` 0), or, for a band of one tile row that two threads share (`make_column_band`), some.
typedef struct {
    int tileRows, tilesX, tiles, stride, paddedRows, paddedColumns, first, column;
    size_t vPoint, mPoint;  // floats from one of the 16 points to the next in V and in (a block of) M
} band;

/// `b`'s layout in the transformed buffers for rows of `tiles` tiles.
static void set_layout(band *b, int channels, int tiles) {
    // room for whole groups of tiles, and for the AVX-512 transform's whole vectors past the last tile (see there)
    b->stride = (tiles + GROUP - 1) / GROUP * GROUP + 16;
    // the points' rows a little more than a multiple of 4 KB apart, so that the transforms' 16 streams do not
    // share cache sets (or, stores and loads, alias 4 KB apart)
    b->vPoint = ((size_t)channels * b->stride + 1023) / 1024 * 1024 + 80, b->mPoint = (size_t)b->stride * BLOCK + 16;
}

/// The tile columns `[tx0, tx1)` of the tile rows of output rows `[y0, y1)` (a column band: one tile row).
static band make_column_band(int channels, int y0, int y1, int tx0, int tx1) {
    const int tileRows = (y1 + 1) / 2 - y0 / 2, tilesX = tx1 - tx0, tiles = tileRows * tilesX;
    band b = {tileRows, tilesX, tiles, 0, 2 * tileRows + 2, 2 * tilesX + 2, 0, tx0, 0, 0};
    set_layout(&b, channels, tiles);
    return b;
}

/// The whole tile rows of output rows `[y0, y1)`.
static band make_band(int channels, int outputWidth, int y0, int y1) {
    return make_column_band(channels, y0, y1, 0, (outputWidth + 1) / 2);
}

#ifndef CONV3X3_WINOGRAD_TILES
#define CONV3X3_WINOGRAD_TILES 48
#endif

/// The output rows of one band: whole tile rows, about `CONV3X3_WINOGRAD_TILES` tiles (at least one tile row).
static int band_rows(int outputWidth) {
    const int tileRows = CONV3X3_WINOGRAD_TILES / ((outputWidth + 1) / 2);
    return 2 * (tileRows > 1 ? tileRows : 1);
}

/// The largest band of an image, whose layout the scratch memory has.
static band largest_band(int channels, int outputHeight, int outputWidth) {
    const int rows = band_rows(outputWidth);
    return make_band(channels, outputWidth, 0, rows < outputHeight ? rows : outputHeight);
}

/// Floats per row of the AVX2 input transform's staged window rows (`input_transform_avx2`) for rows of `tilesX` tiles
/// from tile column `column` of an image `width` wide with `padding`: room for the loads of every group of eight
/// tiles (columns up to `2 column + 16 * ceil(tilesX / 8) + 2`) and for the whole vectors that copy the image's row,
/// a multiple of 8.
static int staged_pitch(int column, int tilesX, int width, int padding) {
    const int loads = 2 * column + 16 * ((tilesX + 7) / 8) + 2, copies = padding + (width + 7) / 8 * 8;
    return ((loads > copies ? loads : copies) + 7) / 8 * 8;
}

/// Floats of the scratch memory's row space for bands of `b`'s width (whole rows): a row of zeros at least as wide
/// as the image (AVX-512) or the four staged window rows of the AVX2 input transform, whichever is larger. A column
/// band's tiles end at the row's, so its loads end at most 14 floats past a whole row's (the 16 added).
static size_t row_space(band b, int width, int padding) {
    const size_t staged = 4 * ((size_t)staged_pitch(0, b.tilesX, width, padding) + 16);
    return staged > (size_t)b.paddedColumns ? staged : (size_t)b.paddedColumns;
}

size_t conv3x3_winograd_scratch_count(int channels, int height, int width, int outChannels, int padding) {
    const int oh = height + 2 * padding - 2, ow = width + 2 * padding - 2;
    const band b = largest_band(channels, oh, ow);
    const size_t blocks = (size_t)conv3x3_blocks(outChannels);
    return row_space(b, width, padding)                       // a row of zeros, or the AVX2 transform's staged rows
           + (size_t)POINTS * b.vPoint                        // V [16, C, stride]
           + blocks * POINTS * b.mPoint                       // M [blocks, 16, stride, 16]
           + blocks * BLOCK * (size_t)(2 * b.tileRows) * ow;  // the band's outputs, channels innermost
}

#define INLINE static inline __attribute__((always_inline))

/// `A^T M A` of every tile's 16 products `M [blocks, 16, stride, 16]`, with `A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]`,
/// to `rows`: the band's output row y, column `2 b.column + x`, of block `blockIndex` at
/// `rows + blockIndex * blockPitch + (y * rowPitch + x) * 16` (whole rows: `[blocks, (y1 - y0) * OW, 16]`); outputs
/// past the image's last row or column are left out.
INLINE void output_transform(float *rows, const float *m, int blocks, band b, int outputWidth, int bandRows,
                             size_t rowPitch, size_t blockPitch) {
    const size_t pointStride = b.mPoint;
    for (int blockIndex = 0; blockIndex < blocks; blockIndex++) {
        const float *mb = m + (size_t)blockIndex * POINTS * pointStride;
        float *out = rows + blockIndex * blockPitch;
        for (int t = 0; t < b.tiles; t++) {
            const int ty = t / b.tilesX, tx = t % b.tilesX, y = 2 * ty, x = 2 * tx;
            const float *p = mb + (size_t)t * BLOCK;
            float y00[BLOCK], y01[BLOCK], y10[BLOCK], y11[BLOCK];
            for (int l = 0; l < BLOCK; l++) {
                float s0[4], s1[4];
                for (int j = 0; j < 4; j++) {
                    const float m0 = p[j * pointStride + l], m1 = p[(4 + j) * pointStride + l];
                    const float m2 = p[(8 + j) * pointStride + l], m3 = p[(12 + j) * pointStride + l];
                    s0[j] = (m0 + m1) + m2, s1[j] = (m1 - m2) - m3;
                }
                y00[l] = (s0[0] + s0[1]) + s0[2], y01[l] = (s0[1] - s0[2]) - s0[3];
                y10[l] = (s1[0] + s1[1]) + s1[2], y11[l] = (s1[1] - s1[2]) - s1[3];
            }
            const int right = 2 * b.column + x + 1 < outputWidth, lower = y + 1 < bandRows;
            float *at = out + ((size_t)y * rowPitch + x) * BLOCK;
            memcpy(at, y00, sizeof y00);
            if (right) memcpy(at + BLOCK, y01, sizeof y01);
            if (lower) {
                memcpy(at + rowPitch * BLOCK, y10, sizeof y10);
                if (right) memcpy(at + (rowPitch + 1) * BLOCK, y11, sizeof y11);
            }
        }
    }
}

/// `u [blocks, 16, stride, 16]` = `A dY A^T` of every tile of the band of output rows from `y0` on, read from the
/// output gradient's `rows [blocks, OH * OW, 16]`, with `A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]` (the transpose of
/// `output_transform`); outputs past the last row or column count as zeros.
INLINE void gradient_transform(float *u, const float *rows, int blocks, band b, int outputHeight, int outputWidth, int y0) {
    const size_t pointStride = b.mPoint, positions = (size_t)outputHeight * outputWidth;
    for (int blockIndex = 0; blockIndex < blocks; blockIndex++) {
        const float *source = rows + blockIndex * positions * BLOCK;
        float *ub = u + (size_t)blockIndex * POINTS * pointStride + (size_t)b.first * BLOCK;
        for (int t = 0; t < b.tiles; t++) {
            const int y = y0 + 2 * (t / b.tilesX), x = 2 * (t % b.tilesX);
            const float *at = source + ((size_t)y * outputWidth + x) * BLOCK;
            float d00[BLOCK], d01[BLOCK] = {0}, d10[BLOCK] = {0}, d11[BLOCK] = {0};
            const int right = x + 1 < outputWidth, lower = y + 1 < outputHeight;
            memcpy(d00, at, sizeof d00);
            if (right) memcpy(d01, at + BLOCK, sizeof d01);
            if (lower) memcpy(d10, at + (size_t)outputWidth * BLOCK, sizeof d10);
            if (right && lower) memcpy(d11, at + (size_t)(outputWidth + 1) * BLOCK, sizeof d11);
            float *out = ub + (size_t)t * BLOCK;
            for (int l = 0; l < BLOCK; l++) {
                // A applied to the tile's columns (d0, d0 + d1, d0 - d1, -d1), then the same to each of its rows
                const float r0[2] = {d00[l], d01[l]}, r1[2] = {d00[l] + d10[l], d01[l] + d11[l]};
                const float r2[2] = {d00[l] - d10[l], d01[l] - d11[l]}, r3[2] = {-d10[l], -d11[l]};
                const float *r[4] = {r0, r1, r2, r3};
                for (int i = 0; i < 4; i++) {
                    const float a = r[i][0], c = r[i][1];
                    float *o = out + 4 * i * pointStride + l;
                    o[0] = a, o[pointStride] = a + c, o[2 * pointStride] = a - c, o[3 * pointStride] = -c;
                }
            }
        }
    }
}

/// `weightGradient [O, C, 3, 3] +=` (with `overwrite`, `= 0 +`) `G^T X G` of every kernel's 16 sums `X`
/// (`sums [16, blocks, C, 16]`), with
/// `G^T = [[1, 1/2, 1/2, 0], [0, 1/2, -1/2, 0], [0, 1/2, 1/2, 1]]` (the transpose of `transform_kernel`): a block's
/// 16 output channels at a time, in the vector lanes, 16 input channels at a time, whose kernels are then added to
/// each output channel's run of `9 x 16` consecutive floats of `weightGradient` (one output channel after the other
/// rather than 16 rows far apart; the additions wait on the cache: 3.6 -> 3.0 % of a joint training step's samples).
static void weight_transform(float *weightGradient, const float *sums, int channels, int outChannels, int overwrite) {
    const int blocks = conv3x3_blocks(outChannels);
    const size_t point = (size_t)blocks * channels * BLOCK;
    for (int blockIndex = 0; blockIndex < blocks; blockIndex++) {
        for (int c0 = 0; c0 < channels; c0 += BLOCK) {
            const int count = channels - c0 < BLOCK ? channels - c0 : BLOCK;
            float y[BLOCK][9][BLOCK];  // [input channel in the group, kernel tap, output channel in the block]
            for (int j = 0; j < count; j++) {
                const float *x = sums + ((size_t)blockIndex * channels + c0 + j) * BLOCK;
                for (int l = 0; l < BLOCK; l++) {
                    float t[3][4];  // G^T X
                    for (int k = 0; k < 4; k++) {
                        const float x0 = x[k * point + l], x1 = x[(4 + k) * point + l], x2 = x[(8 + k) * point + l];
                        const float x3 = x[(12 + k) * point + l], half = (x1 + x2) * 0.5f;
                        t[0][k] = x0 + half, t[1][k] = (x1 - x2) * 0.5f, t[2][k] = half + x3;
                    }
                    for (int i = 0; i < 3; i++) {
                        const float half = (t[i][1] + t[i][2]) * 0.5f;
                        y[j][3 * i][l] = t[i][0] + half, y[j][3 * i + 1][l] = (t[i][1] - t[i][2]) * 0.5f;
                        y[j][3 * i + 2][l] = half + t[i][3];
                    }
                }
            }
            for (int l = 0; l < BLOCK && blockIndex * BLOCK + l < outChannels; l++) {
                float *dst = weightGradient + ((size_t)(blockIndex * BLOCK + l) * channels + c0) * 9;
                for (int j = 0; j < count; j++) {
                    for (int i = 0; i < 9; i++) dst[9 * j + i] = (overwrite ? 0.0f : dst[9 * j + i]) + y[j][i][l];
                }
            }
        }
    }
}

/// The images in one band of the weight gradient: 1 when an image takes several bands, else enough whole images for
/// about `CONV3X3_WINOGRAD_TILES` tiles (so that the products' sums go to memory and back once per that many tiles).
static int images_per_band(int outputHeight, int outputWidth) {
    if (outputHeight > band_rows(outputWidth)) return 1;
    const int tiles = (outputHeight + 1) / 2 * ((outputWidth + 1) / 2);
    return (CONV3X3_WINOGRAD_TILES + tiles - 1) / tiles;
}

/// The largest band of the weight gradient (the layout of its scratch memory): `largest_band`, or a whole image
/// whose rows have room for `images_per_band` images' tiles.
static band weight_band(int channels, int outputHeight, int outputWidth) {
    band b = largest_band(channels, outputHeight, outputWidth);
    const int group = images_per_band(outputHeight, outputWidth);
    if (group > 1) set_layout(&b, channels, group * b.tiles);
    return b;
}

size_t conv3x3_winograd_weight_scratch_count(int channels, int height, int width, int outChannels, int padding) {
    const int oh = height + 2 * padding - 2, ow = width + 2 * padding - 2;
    const band b = weight_band(channels, oh, ow);
    const size_t blocks = (size_t)conv3x3_blocks(outChannels);
    return (size_t)POINTS * blocks * BLOCK * channels               // the sums [16, blocks, C, 16]
           + blocks * BLOCK * (size_t)oh * ow                       // the output gradient's rows, channels innermost
           + (size_t)POINTS * b.vPoint                              // V [16, C, stride]
           + blocks * POINTS * b.mPoint                             // the transformed gradient [blocks, 16, stride, 16]
           + row_space(b, width, padding);                          // a row of zeros, or the AVX2 transform's staged rows
}

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,fma")))
#define AVX2 __attribute__((target("avx2,fma")))
#define UNROLL _Pragma("clang loop unroll(full)")

/// Where `b`'s 16 products read and write (`winograd_products.h`).
static winograd_products_layout products_layout(band b) {
    const winograd_products_layout layout = {POINTS, b.tiles, (size_t)b.stride, b.vPoint, b.mPoint};
    return layout;
}

/// Per window row r of tile row `ty` (of a band from output row `y0`): its offset in a channel's plane, or -1 outside
/// the image.
INLINE void window_offsets(int offset[4], int y0, int ty, int padding, int height, int width) {
    for (int r = 0; r < 4; r++) {
        const int y = y0 + 2 * ty + r - padding;
        offset[r] = y >= 0 && y < height ? y * width : -1;
    }
}

/// The next tile row's two new window rows (inside the image, in this band): from row `first` on, `count` floats of
/// each plane, none but for the row's first group of tiles (`tx == 0`).
typedef struct {
    int first, count;
} next_rows;

INLINE next_rows rows_ahead(int y0, int ty, int tx, int padding, int height, int width, band b) {
    const int ya = y0 + 2 * ty + 4 - padding > 0 ? y0 + 2 * ty + 4 - padding : 0;
    const int yb = y0 + 2 * ty + 6 - padding < height ? y0 + 2 * ty + 6 - padding : height;
    const next_rows n = {ya, tx == 0 && ty + 1 < b.tileRows && ya < yb ? (yb - ya) * width : 0};
    return n;
}

/// Asks for `ahead`'s rows of a channel's `image` (and of its `relu` mask, when given) in L1 while this tile row is
/// transformed: its loads would otherwise wait on L2 or memory (E.2's forward from memory 4.1-4.6 -> 3.4-3.6 ms for
/// 128 images on 2 threads, AVX-512).
INLINE void prefetch_rows_ahead(const float *image, const float *relu, next_rows ahead, int width) {
    for (int i = 0; i < ahead.count; i += 16) {
        _mm_prefetch((const char *)(image + (size_t)ahead.first * width + i), _MM_HINT_T0);
        if (relu) _mm_prefetch((const char *)(relu + (size_t)ahead.first * width + i), _MM_HINT_T0);
    }
}

/// `V [16, C, stride]` = `B^T d B` of every tile's 4 x 4 window `d` of the padded input (times `mask > 0` when
/// `masked`), with `B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]`: the rows of the window first
/// (`r0 - r2, r1 + r2, r2 - r1, r1 - r3`), then each tile's columns the same way. With AVX-512, sixteen tiles of a
/// tile row at a time: each window row's even and odd columns (and those two further on) are picked out of two
/// masked loads each (zeros outside the image: the padding).
AVX512 INLINE void input_transform_avx512_body(float *v, const float *input, const float *mask, const float *zeros,
                                               int channels, int height, int width, int padding, int y0, band b,
                                               int masked) {
    const size_t channelStride = (size_t)b.stride, pointStride = b.vPoint, plane = (size_t)height * width;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int ty = 0; ty < b.tileRows; ty++) {
        for (int tx = 0; tx < b.tilesX; tx += 16) {
            // per load k (padded columns 2 tx + 0, 16, 2, 18): its first image column and its lanes inside the image;
            // per window row r: its offset in a channel's plane, or none outside the image (then a row of zeros)
            int first[4], offset[4];
            __mmask16 lanes[4];
            UNROLL for (int k = 0; k < 4; k++) {
                first[k] = 2 * (b.column + tx) - padding + (k & 1) * 16 + (k >> 1) * 2;
                const int lo = first[k] < 0 ? -first[k] : 0, hi = width - first[k] < 16 ? width - first[k] : 16;
                lanes[k] = hi <= lo ? 0 : (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
            }
            window_offsets(offset, y0, ty, padding, height, width);
            const next_rows ahead = rows_ahead(y0, ty, tx, padding, height, width, b);
            for (int c = 0; c < channels; c++) {
                const float *image = input + c * plane, *relu = masked ? mask + c * plane : 0;
                prefetch_rows_ahead(image, relu, ahead, width);
                const float *source[4], *factor[4];
                UNROLL for (int r = 0; r < 4; r++) {
                    source[r] = offset[r] < 0 ? zeros : image + offset[r];
                    factor[r] = offset[r] < 0 ? zeros : masked ? relu + offset[r] : 0;
                }
                __m512 a[4], p[4], q[4], d[4];  // per window row: columns 2t, 2t + 1, 2t + 2, 2t + 3 of tile t
                UNROLL for (int r = 0; r < 4; r++) {
                    __m512 x[4];
                    UNROLL for (int k = 0; k < 4; k++) {
                        x[k] = _mm512_maskz_loadu_ps(lanes[k], source[r] + first[k]);
                        if (masked) x[k] = _mm512_mul_ps(x[k], conv3x3_relu_factor_avx512(factor[r] + first[k], lanes[k]));
                    }
                    a[r] = _mm512_permutex2var_ps(x[0], even, x[1]), p[r] = _mm512_permutex2var_ps(x[0], odd, x[1]);
                    q[r] = _mm512_permutex2var_ps(x[2], even, x[3]), d[r] = _mm512_permutex2var_ps(x[2], odd, x[3]);
                }
                // the rows of B^T d: r0 - r2, r1 + r2, r2 - r1, r1 - r3; then each tile's columns the same way.
                // Whole vectors are stored (masked stores are slow on some CPUs): lanes past the row's last tile
                // land on the next tiles' (written after: tiles go in order) or in the row's 16 spare floats (zeroed below).
                float *out = v + c * channelStride + b.first + (size_t)ty * b.tilesX + tx;
                UNROLL for (int i = 0; i < 4; i++) {
#define WINOGRAD_ROWS(x) \
    (i == 0 ? _mm512_sub_ps(x[0], x[2]) : i == 1 ? _mm512_add_ps(x[1], x[2]) : i == 2 ? _mm512_sub_ps(x[2], x[1]) : _mm512_sub_ps(x[1], x[3]))
                    const __m512 wa = WINOGRAD_ROWS(a), wp = WINOGRAD_ROWS(p), wq = WINOGRAD_ROWS(q), wd = WINOGRAD_ROWS(d);
#undef WINOGRAD_ROWS
                    float *o = out + 4 * i * pointStride;
                    _mm512_storeu_ps(o, _mm512_sub_ps(wa, wq));
                    _mm512_storeu_ps(o + pointStride, _mm512_add_ps(wp, wq));
                    _mm512_storeu_ps(o + 2 * pointStride, _mm512_sub_ps(wq, wp));
                    _mm512_storeu_ps(o + 3 * pointStride, _mm512_sub_ps(wp, wd));
                }
            }
        }
    }
    // The products read up to 3 floats past the last tile (to a multiple of 4): the last tile row's whole vectors
    // wrote 16 - n there (from the zeros outside the image, or its last column); with n > 12 tiles in their last
    // chunk, zeros are written there.
    if ((b.tilesX - 1) % 16 + 1 > 12) {
        for (int k = 0; k < POINTS; k++) {
            for (int c = 0; c < channels; c++) {
                _mm512_storeu_ps(v + k * pointStride + c * channelStride + b.first + b.tiles, _mm512_setzero_ps());
            }
        }
    }
}

/// `input_transform_avx512_body`, `zeros` a row of `width` zeros (read for window rows outside the image).
AVX512 static void input_transform_avx512(float *v, const float *input, const float *mask, float *zeros, int channels,
                                          int height, int width, int padding, int y0, band b) {
    memset(zeros, 0, (size_t)width * sizeof(float));
    if (mask) {
        input_transform_avx512_body(v, input, mask, zeros, channels, height, width, padding, y0, b, 1);
    } else {
        input_transform_avx512_body(v, input, 0, zeros, channels, height, width, padding, y0, b, 0);
    }
}

/// Window row `y` of the padded input staged in `row` (`pitch` floats): the image's row `y` (times `relu > 0` when
/// `relu` is given) from column `padding` on, zeros around it, and zeros throughout for a row of the padding. Whole
/// vectors only: the last one ends at the row's end and rewrites the values before it (AMD's cores take many
/// cycles for each masked store, and several times a plain load for a masked load).
AVX2 INLINE void stage_row_avx2(float *row, const float *image, const float *relu, int y, int height, int width,
                                int padding, int pitch) {
    if (y < 0 || y >= height || width < 8) {
        for (int x = 0; x < pitch; x += 8) _mm256_storeu_ps(row + x, _mm256_setzero_ps());
        if (y < 0 || y >= height) return;
    } else {
        // zeros where the copy below does not write: the left padding, and from the row's end on
        for (int x = 0; x < padding; x += 8) _mm256_storeu_ps(row + x, _mm256_setzero_ps());
        for (int x = (padding + width) / 8 * 8; x < pitch; x += 8) _mm256_storeu_ps(row + x, _mm256_setzero_ps());
    }
    const float *source = image + (size_t)y * width, *factor = relu ? relu + (size_t)y * width : 0;
    float *target = row + padding;
    if (width < 8) {
        for (int x = 0; x < width; x++) target[x] = factor ? source[x] * (factor[x] > 0 ? 1.0f : 0.0f) : source[x];
        return;
    }
    for (int x = 0;; x += 8) {
        const int at = x + 8 <= width ? x : width - 8;
        const __m256 v = _mm256_loadu_ps(source + at);
        _mm256_storeu_ps(target + at, factor ? conv3x3_relu_backward_avx2(v, _mm256_loadu_ps(factor + at)) : v);
        if (at + 8 >= width) break;
    }
}

/// One staged window row of eight tiles from `row` (its padded column 2 tx): its columns 2t, 2t + 1, 2t + 2 and
/// 2t + 3 of tile t in `x[0 ..< 4]`.
AVX2 INLINE void window_row_avx2(__m256 x[4], const float *row) {
    const __m256 l0 = _mm256_loadu_ps(row), l1 = _mm256_loadu_ps(row + 8);
    const __m256 l2 = _mm256_loadu_ps(row + 2), l3 = _mm256_loadu_ps(row + 10);
    x[0] = conv3x3_deinterleave_avx2(l0, l1, 0), x[1] = conv3x3_deinterleave_avx2(l0, l1, 1);
    x[2] = conv3x3_deinterleave_avx2(l2, l3, 0), x[3] = conv3x3_deinterleave_avx2(l2, l3, 1);
}

/// The four points `4 i .. 4 i + 3` of eight tiles from the row combination `w` (columns 2t .. 2t + 3 of tile t):
/// `w0 - w2, w1 + w2, w2 - w1, w1 - w3`, whole vectors (see `input_transform_avx2_body`).
AVX2 INLINE void store_points_avx2(float *o, size_t pointStride, const __m256 w[4]) {
    _mm256_storeu_ps(o, _mm256_sub_ps(w[0], w[2]));
    _mm256_storeu_ps(o + pointStride, _mm256_add_ps(w[1], w[2]));
    _mm256_storeu_ps(o + 2 * pointStride, _mm256_sub_ps(w[2], w[1]));
    _mm256_storeu_ps(o + 3 * pointStride, _mm256_sub_ps(w[1], w[3]));
}

/// `input_transform_avx512_body` with AVX2, the same operations in the same order (so the same values), channel by
/// channel. Each window row is first staged in `staged` (four rows, `staged_pitch` floats each, reused in turn: a
/// tile row shares two window rows with the next), padding and mask applied there, so that the transform reads
/// whole vectors with no masks and no branches: per eight tiles of a tile row, four loads per window row, the even
/// and odd columns split by a shuffle and a permute. The window rows stream in: the rows' combinations `r0 - r2`,
/// `r1 + r2`, `r2 - r1` are formed and stored as soon as row 2 is in, `r1 - r3` after row 3, so that at most three
/// rows are held (the 16 ymm registers do not hold four and more). Lanes past a row's last tile are stored as in
/// the AVX-512 body (the next tiles', written after, or the row's spare floats; zeros past the image).
AVX2 INLINE void input_transform_avx2_body(float *v, const float *input, const float *mask, float *staged, int channels,
                                           int height, int width, int padding, int y0, band b, int masked) {
    const size_t channelStride = (size_t)b.stride, pointStride = b.vPoint, plane = (size_t)height * width;
    const int pitch = staged_pitch(b.column, b.tilesX, width, padding), top = y0 - padding;
    // the rows of the image that the band reads, asked for in L1 a channel ahead
    const int firstRow = top > 0 ? top : 0, endRow = top + b.paddedRows < height ? top + b.paddedRows : height;
    const size_t bandStart = (size_t)firstRow * width, bandCount = endRow > firstRow ? (size_t)(endRow - firstRow) * width : 0;
    for (int c = 0; c < channels; c++) {
        const float *image = input + c * plane, *relu = masked ? mask + c * plane : 0;
        if (c + 1 < channels) {
            for (size_t i = 0; i < bandCount; i += 16) {
                _mm_prefetch((const char *)(image + plane + bandStart + i), _MM_HINT_T0);
                if (masked) _mm_prefetch((const char *)(relu + plane + bandStart + i), _MM_HINT_T0);
            }
        }
        stage_row_avx2(staged, image, relu, top, height, width, padding, pitch);
        stage_row_avx2(staged + pitch, image, relu, top + 1, height, width, padding, pitch);
        for (int ty = 0; ty < b.tileRows; ty++) {
            // window rows 2 ty + r in the staged rows (2 ty + r) mod 4
            const float *row[4];
            UNROLL for (int r = 0; r < 4; r++) row[r] = staged + (size_t)((2 * ty + r) & 3) * pitch;
            stage_row_avx2((float *)row[2], image, relu, top + 2 * ty + 2, height, width, padding, pitch);
            stage_row_avx2((float *)row[3], image, relu, top + 2 * ty + 3, height, width, padding, pitch);
            float *out = v + c * channelStride + b.first + (size_t)ty * b.tilesX;
            for (int tx = 0; tx < b.tilesX; tx += 8) {
                const int at = 2 * (b.column + tx);
                __m256 x0[4], x1[4], x2[4], w[4];
                window_row_avx2(x0, row[0] + at);
                window_row_avx2(x1, row[1] + at);
                window_row_avx2(x2, row[2] + at);
                UNROLL for (int j = 0; j < 4; j++) w[j] = _mm256_sub_ps(x0[j], x2[j]);  // r0 - r2
                store_points_avx2(out + tx, pointStride, w);
                UNROLL for (int j = 0; j < 4; j++) w[j] = _mm256_add_ps(x1[j], x2[j]);  // r1 + r2
                store_points_avx2(out + tx + 4 * pointStride, pointStride, w);
                UNROLL for (int j = 0; j < 4; j++) w[j] = _mm256_sub_ps(x2[j], x1[j]);  // r2 - r1
                store_points_avx2(out + tx + 8 * pointStride, pointStride, w);
                window_row_avx2(x2, row[3] + at);
                UNROLL for (int j = 0; j < 4; j++) w[j] = _mm256_sub_ps(x1[j], x2[j]);  // r1 - r3
                store_points_avx2(out + tx + 12 * pointStride, pointStride, w);
            }
        }
    }
}

/// `input_transform_avx2_body`; `staged` the scratch memory's row space (`row_space`).
// `no_builtin("memset")`: the compiler would otherwise turn stage_row_avx2's zero stores (a vector or two of padding, a
// row of zeros) into calls of memset, 24 call sites, 1.8 % of inference at batch 1 in memset for a few bytes each.
AVX2 __attribute__((no_builtin("memset"))) static void input_transform_avx2(float *v, const float *input, const float *mask,
                                                                          float *staged, int channels, int height, int width,
                                                                          int padding, int y0, band b) {
    if (mask) {
        input_transform_avx2_body(v, input, mask, staged, channels, height, width, padding, y0, b, 1);
    } else {
        input_transform_avx2_body(v, input, 0, staged, channels, height, width, padding, y0, b, 0);
    }
}
AVX512 static void output_transform_avx512(float *rows, const float *m, int blocks, band b, int outputWidth, int bandRows,
                                           size_t rowPitch, size_t blockPitch) {
    output_transform(rows, m, blocks, b, outputWidth, bandRows, rowPitch, blockPitch);
}
AVX2 static void output_transform_avx2(float *rows, const float *m, int blocks, band b, int outputWidth, int bandRows,
                                       size_t rowPitch, size_t blockPitch) {
    output_transform(rows, m, blocks, b, outputWidth, bandRows, rowPitch, blockPitch);
}

/// The band `b` of output rows `[y0, y1)` (`y0` even, at most `band_rows` of them) in one pass of each step over all its
/// tiles: whole rows, or (a column band) the output columns of its tiles, row by row.
static void winograd_band(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int y0, int y1, band b, float *scratch, int isa) {
    const int oh = height + 2 * padding - 2, ow = width + 2 * padding - 2, blocks = conv3x3_blocks(outChannels);
    if (y0 >= y1) return;
    const band largest = largest_band(channels, oh, ow);  // the layout of the scratch memory
    float *zeros = scratch, *v = zeros + row_space(largest, width, padding), *m = v + POINTS * largest.vPoint;
    float *rows = m + (size_t)blocks * POINTS * largest.mPoint;
    // a column band's outputs: columns [x0, x0 + columns) of each row, rows [row, blocks, columns, 16]
    const int x0 = 2 * b.column, columns = 2 * b.tilesX < ow - x0 ? 2 * b.tilesX : ow - x0;
    const int whole = columns == ow, positions = (y1 - y0) * ow;
    const size_t rowPitch = whole ? (size_t)ow : (size_t)blocks * columns;
    const size_t blockPitch = whole ? (size_t)positions * BLOCK : (size_t)columns * BLOCK;
    if (isa == CONV3X3_ISA_AVX512) {
        input_transform_avx512(v, input, mask, zeros, channels, height, width, padding, y0, b);
        winograd_products_avx512(m, packed, v, channels, blocks, products_layout(b));
        output_transform_avx512(rows, m, blocks, b, ow, y1 - y0, rowPitch, blockPitch);
    } else {
        input_transform_avx2(v, input, mask, zeros, channels, height, width, padding, y0, b);
        winograd_products_avx2(m, packed, v, channels, blocks, products_layout(b));
        output_transform_avx2(rows, m, blocks, b, ow, y1 - y0, rowPitch, blockPitch);
    }
    // whole rows: one store of all the band's positions; a column band: one per output row
    const int stores = whole ? 1 : y1 - y0, count = whole ? positions : columns;
    for (int i = 0; i < stores; i++) {
        float *out = output + (size_t)(y0 + i) * ow + x0;
        const float *source = rows + (size_t)i * rowPitch * BLOCK;
        if (isa == CONV3X3_ISA_AVX512) {
            conv3x3_store_avx512(out, source, bias, relu, outChannels, count, (size_t)oh * ow);
        } else {
            conv3x3_store_avx2(out, source, bias, relu, outChannels, count, blocks, (size_t)oh * ow);
        }
    }
}

/// Asks for the input rows (and mask rows) that the output rows `[ya, yb)` read in the L2 cache, every channel.
static void prefetch_band(const float *input, const float *mask, int channels, int height, int width,
                                 int padding, int ya, int yb) {
    const int r0 = ya - padding > 0 ? ya - padding : 0, r1 = yb + 2 - padding < height ? yb + 2 - padding : height;
    if (r0 >= r1) return;
    for (int c = 0; c < channels; c++) {
        const size_t first = ((size_t)c * height + r0) * width, count = (size_t)(r1 - r0) * width;
        for (size_t i = 0; i < count; i += 16) {
            _mm_prefetch((const char *)(input + first + i), _MM_HINT_T1);
            if (mask) _mm_prefetch((const char *)(mask + first + i), _MM_HINT_T1);
        }
    }
}

void conv3x3_winograd_image_rows(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int y0, int y1, float *scratch, int isa,
    int prefetchNext) {
    // bands of about CONV3X3_WINOGRAD_TILES tiles, whose transformed windows and products stay in the L1 and L2
    // caches between the steps (an output does not depend on the bands); while one band is computed, the next
    // band's input rows (after the last, the next image's first band's, with `prefetchNext`) are asked for
    const int oh = height + 2 * padding - 2, rows = band_rows(width + 2 * padding - 2);
    const size_t image = (size_t)channels * height * width;
    for (int ya = y0; ya < y1; ya += rows) {
        const int yb = ya + rows < y1 ? ya + rows : y1;
        if (yb < y1) {
            prefetch_band(input, mask, channels, height, width, padding, yb, yb + rows < y1 ? yb + rows : y1);
        } else if (prefetchNext) {
            prefetch_band(input + image, mask ? mask + image : 0, channels, height, width, padding, 0, rows < oh ? rows : oh);
        }
        winograd_band(output, input, mask, packed, bias, relu, channels, height, width, outChannels, padding, ya, yb,
                      make_band(channels, width + 2 * padding - 2, ya, yb), scratch, isa);
    }
}
/// Tile columns `[tx0, tx1)` of tile row `ty` (see `conv3x3_winograd_image_tiles`).
static void winograd_column_band(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int ty, int tx0, int tx1, float *scratch, int isa) {
    const int oh = height + 2 * padding - 2, y0 = 2 * ty, y1 = y0 + 2 < oh ? y0 + 2 : oh;
    winograd_band(output, input, mask, packed, bias, relu, channels, height, width, outChannels, padding, y0, y1,
                  make_column_band(channels, y0, y1, tx0, tx1), scratch, isa);
}

void conv3x3_winograd_image_tiles(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int tile0, int tile1, float *scratch, int isa) {
    const int oh = height + 2 * padding - 2, ow = width + 2 * padding - 2, tilesX = (ow + 1) / 2;
    const int tiles = (oh + 1) / 2 * tilesX;
    if (tile0 < 0) tile0 = 0;
    if (tile1 > tiles) tile1 = tiles;
    int t = tile0;
    if (t < tile1 && t % tilesX != 0) {  // the end of a tile row
        const int ty = t / tilesX, end = tile1 < (ty + 1) * tilesX ? tile1 : (ty + 1) * tilesX;
        winograd_column_band(output, input, mask, packed, bias, relu, channels, height, width, outChannels, padding, ty,
                             t - ty * tilesX, end - ty * tilesX, scratch, isa);
        t = end;
    }
    if (t < tile1 && tile1 / tilesX > t / tilesX) {  // whole tile rows
        const int y1 = 2 * (tile1 / tilesX) < oh ? 2 * (tile1 / tilesX) : oh;
        conv3x3_winograd_image_rows(output, input, mask, packed, bias, relu, channels, height, width, outChannels, padding,
                                    2 * (t / tilesX), y1, scratch, isa, 0);
        t = tile1 / tilesX * tilesX;
    }
    if (t < tile1) {  // the start of a tile row
        winograd_column_band(output, input, mask, packed, bias, relu, channels, height, width, outChannels, padding,
                             t / tilesX, 0, tile1 - t, scratch, isa);
    }
}

/// One AVX-512 tile of the weight gradient's products: `blockCount` (1 or 2) blocks of 16 output channels x `size`
/// (12, 8 or 4) input channels, of which the first `count` are real (the others repeat the last one's column and
/// are neither loaded nor stored): `sums + b * sumsStride + j * 16 +=` the products of the transformed gradient
/// (`g`, a tile's 16 channels at `t * 16`, the next block `gStride` on) and the transformed windows (`column[j][t]`)
/// over the band's tiles in order.
AVX512 INLINE void weight_products_tile_avx512(float *sums, size_t sumsStride, const float *g, size_t gStride,
                                               const float *const *column, int tiles, int blockCount, int size,
                                               int count, int fresh) {
    __m512 sum[2][GROUP];
    UNROLL for (int b = 0; b < blockCount; b++) {
        UNROLL for (int j = 0; j < size; j++) {
            sum[b][j] = j < count && !fresh ? _mm512_loadu_ps(sums + b * sumsStride + (size_t)j * BLOCK) : _mm512_setzero_ps();
        }
    }
    const float *q[GROUP];
    UNROLL for (int j = 0; j < size; j++) q[j] = column[j];
    for (int t = 0; t < tiles; t++) {
        __m512 gradient[2];
        UNROLL for (int b = 0; b < blockCount; b++) gradient[b] = _mm512_loadu_ps(g + b * gStride + (size_t)t * BLOCK);
        UNROLL for (int j = 0; j < size; j++) {
            const __m512 x = _mm512_set1_ps(q[j][t]);
            UNROLL for (int b = 0; b < blockCount; b++) sum[b][j] = _mm512_fmadd_ps(gradient[b], x, sum[b][j]);
        }
    }
    UNROLL for (int b = 0; b < blockCount; b++) {
        UNROLL for (int j = 0; j < size; j++) {
            if (j < count) _mm512_storeu_ps(sums + b * sumsStride + (size_t)j * BLOCK, sum[b][j]);
        }
    }
}

#define WEIGHT_PRODUCTS_TILE_AVX512(blockCount, size) \
    weight_products_tile_avx512(out, sumsStride, g, gStride, column, b.tiles, blockCount, size, count, fresh)

/// `sums [16, blocks, C, 16] +=` `U [blocks, 16, stride, 16]` (the transformed gradient) x `V [16, C, stride]`
/// (the transformed windows) over the band's tiles, with AVX-512.
AVX512 static void weight_products_avx512(float *sums, const float *u, const float *v, int channels, int blocks, band b,
                                          int fresh) {
    const size_t sumsStride = (size_t)channels * BLOCK, gStride = POINTS * b.mPoint;
    for (int k = 0; k < POINTS; k++) {
        const float *vk = v + k * b.vPoint;
        for (int blockIndex = 0; blockIndex < blocks; blockIndex += 2) {
            const float *g = u + ((size_t)blockIndex * POINTS + k) * b.mPoint;
            for (int c0 = 0; c0 < channels; c0 += GROUP) {
                const int count = channels - c0 < GROUP ? channels - c0 : GROUP;
                const float *column[GROUP];
                for (int j = 0; j < GROUP; j++) column[j] = vk + (size_t)(c0 + (j < count ? j : count - 1)) * b.stride;
                float *out = sums + ((size_t)k * blocks + blockIndex) * sumsStride + (size_t)c0 * BLOCK;
                if (blocks - blockIndex >= 2) {
                    if (count > 8) WEIGHT_PRODUCTS_TILE_AVX512(2, GROUP); else if (count > 4) WEIGHT_PRODUCTS_TILE_AVX512(2, 8); else WEIGHT_PRODUCTS_TILE_AVX512(2, 4);
                } else {
                    if (count > 8) WEIGHT_PRODUCTS_TILE_AVX512(1, GROUP); else if (count > 4) WEIGHT_PRODUCTS_TILE_AVX512(1, 8); else WEIGHT_PRODUCTS_TILE_AVX512(1, 4);
                }
            }
        }
    }
}

/// `weight_products_avx512` with AVX2: tiles of 16 output channels x 6 input channels in 12 ymm registers (the
/// same FMAs in the same order).
AVX2 static void weight_products_avx2(float *sums, const float *u, const float *v, int channels, int blocks, band b,
                                      int fresh) {
    enum { SIX = 6 };
    const size_t sumsStride = (size_t)channels * BLOCK;
    for (int k = 0; k < POINTS; k++) {
        const float *vk = v + k * b.vPoint;
        for (int blockIndex = 0; blockIndex < blocks; blockIndex++) {
            const float *g = u + ((size_t)blockIndex * POINTS + k) * b.mPoint;
            for (int c0 = 0; c0 < channels; c0 += SIX) {
                const int count = channels - c0 < SIX ? channels - c0 : SIX;
                const float *q[SIX];
                for (int j = 0; j < SIX; j++) q[j] = vk + (size_t)(c0 + (j < count ? j : count - 1)) * b.stride;
                float *out = sums + ((size_t)k * blocks + blockIndex) * sumsStride + (size_t)c0 * BLOCK;
                __m256 sum[SIX][2];
                UNROLL for (int j = 0; j < SIX; j++) {
                    sum[j][0] = j < count && !fresh ? _mm256_loadu_ps(out + (size_t)j * BLOCK) : _mm256_setzero_ps();
                    sum[j][1] = j < count && !fresh ? _mm256_loadu_ps(out + (size_t)j * BLOCK + 8) : _mm256_setzero_ps();
                }
                for (int t = 0; t < b.tiles; t++) {
                    const __m256 g0 = _mm256_loadu_ps(g + (size_t)t * BLOCK), g1 = _mm256_loadu_ps(g + (size_t)t * BLOCK + 8);
                    UNROLL for (int j = 0; j < SIX; j++) {
                        const __m256 x = _mm256_broadcast_ss(q[j] + t);
                        sum[j][0] = _mm256_fmadd_ps(g0, x, sum[j][0]);
                        sum[j][1] = _mm256_fmadd_ps(g1, x, sum[j][1]);
                    }
                }
                UNROLL for (int j = 0; j < SIX; j++) {
                    if (j < count) {
                        _mm256_storeu_ps(out + (size_t)j * BLOCK, sum[j][0]);
                        _mm256_storeu_ps(out + (size_t)j * BLOCK + 8, sum[j][1]);
                    }
                }
            }
        }
    }
}

/// `weight_transform` with AVX-512 (the same operations, so the same values): per block of 16 output channels and
/// group of 16 input channels, the kernels' values as rows `(c, ky, kx)` of the block's 16 output channels, turned
/// by 16 x 16 transposes into each output channel's run of `9 x 16` consecutive floats of `weightGradient`.
AVX512 static void weight_transform_avx512(float *weightGradient, const float *sums, int channels, int outChannels,
                                           int overwrite) {
    const int blocks = conv3x3_blocks(outChannels);
    const size_t point = (size_t)blocks * channels * BLOCK;
    const __m512 half = _mm512_set1_ps(0.5f);
    float kernels[9 * 16 * BLOCK] __attribute__((aligned(64)));  // [(c, ky, kx), output channel in the block]
    for (int blockIndex = 0; blockIndex < blocks; blockIndex++) {
        for (int c0 = 0; c0 < channels; c0 += 16) {
            const int count = channels - c0 < 16 ? channels - c0 : 16, floats = 9 * count;
            for (int j = 0; j < count; j++) {
                const float *x = sums + ((size_t)blockIndex * channels + c0 + j) * BLOCK;
                __m512 t[3][4];  // G^T X
                UNROLL for (int i = 0; i < 4; i++) {
                    const __m512 x0 = _mm512_loadu_ps(x + i * point), x1 = _mm512_loadu_ps(x + (4 + i) * point);
                    const __m512 x2 = _mm512_loadu_ps(x + (8 + i) * point), x3 = _mm512_loadu_ps(x + (12 + i) * point);
                    const __m512 h = _mm512_mul_ps(_mm512_add_ps(x1, x2), half);
                    t[0][i] = _mm512_add_ps(x0, h), t[1][i] = _mm512_mul_ps(_mm512_sub_ps(x1, x2), half);
                    t[2][i] = _mm512_add_ps(h, x3);
                }
                float *row = kernels + (size_t)j * 9 * BLOCK;
                UNROLL for (int i = 0; i < 3; i++) {
                    const __m512 h = _mm512_mul_ps(_mm512_add_ps(t[i][1], t[i][2]), half);
                    _mm512_store_ps(row + (3 * i) * BLOCK, _mm512_add_ps(t[i][0], h));
                    _mm512_store_ps(row + (3 * i + 1) * BLOCK, _mm512_mul_ps(_mm512_sub_ps(t[i][1], t[i][2]), half));
                    _mm512_store_ps(row + (3 * i + 2) * BLOCK, _mm512_add_ps(h, t[i][3]));
                }
            }
            for (int q = 0; q < floats; q += 16) {
                const int here = floats - q < 16 ? floats - q : 16;
                __m512 r[16];  // rows q .. q + 15, then each output channel's floats q .. q + 15 of its run
                UNROLL for (int k = 0; k < 16; k++) r[k] = k < here ? _mm512_load_ps(kernels + (size_t)(q + k) * BLOCK) : _mm512_setzero_ps();
                conv3x3_transpose16_avx512(r);
                for (int l = 0; l < BLOCK && blockIndex * BLOCK + l < outChannels; l++) {
                    float *dst = weightGradient + ((size_t)(blockIndex * BLOCK + l) * channels + c0) * 9 + q;
                    if (here == 16) {
                        const __m512 old = overwrite ? _mm512_setzero_ps() : _mm512_loadu_ps(dst);
                        _mm512_storeu_ps(dst, _mm512_add_ps(old, r[l]));
                    } else {
                        const __mmask16 lanes = (__mmask16)((1u << here) - 1);
                        const __m512 old = overwrite ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(lanes, dst);
                        _mm512_mask_storeu_ps(dst, lanes, _mm512_add_ps(old, r[l]));
                    }
                }
            }
        }
    }
}

/// `gradient_transform` with AVX-512, a tile's 16 channels of a block in one vector (the same values).
AVX512 static void gradient_transform_avx512(float *u, const float *rows, int blocks, band b, int outputHeight,
                                             int outputWidth, int y0) {
    const size_t pointStride = b.mPoint, positions = (size_t)outputHeight * outputWidth;
    const __m512 zero = _mm512_setzero_ps();
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
#define NEGATE(v) _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), sign))  // -v, as the scalar negation
    for (int blockIndex = 0; blockIndex < blocks; blockIndex++) {
        const float *source = rows + blockIndex * positions * BLOCK;
        float *out = u + (size_t)blockIndex * POINTS * pointStride + (size_t)b.first * BLOCK;
        for (int ty = 0; ty < b.tileRows; ty++) {
            const int y = y0 + 2 * ty, lower = y + 1 < outputHeight;
            for (int tx = 0; tx < b.tilesX; tx++, out += BLOCK) {
                const int x = 2 * tx, right = x + 1 < outputWidth;
                const float *at = source + ((size_t)y * outputWidth + x) * BLOCK;
                const __m512 d00 = _mm512_loadu_ps(at), d01 = right ? _mm512_loadu_ps(at + BLOCK) : zero;
                const __m512 d10 = lower ? _mm512_loadu_ps(at + (size_t)outputWidth * BLOCK) : zero;
                const __m512 d11 = right && lower ? _mm512_loadu_ps(at + (size_t)(outputWidth + 1) * BLOCK) : zero;
                const __m512 r[4][2] = {{d00, d01},
                                        {_mm512_add_ps(d00, d10), _mm512_add_ps(d01, d11)},
                                        {_mm512_sub_ps(d00, d10), _mm512_sub_ps(d01, d11)},
                                        {NEGATE(d10), NEGATE(d11)}};
                UNROLL for (int i = 0; i < 4; i++) {
                    float *o = out + 4 * i * pointStride;
                    _mm512_storeu_ps(o, r[i][0]);
                    _mm512_storeu_ps(o + pointStride, _mm512_add_ps(r[i][0], r[i][1]));
                    _mm512_storeu_ps(o + 2 * pointStride, _mm512_sub_ps(r[i][0], r[i][1]));
                    _mm512_storeu_ps(o + 3 * pointStride, NEGATE(r[i][1]));
                }
            }
        }
    }
#undef NEGATE
}
AVX2 static void gradient_transform_avx2(float *u, const float *rows, int blocks, band b, int outputHeight,
                                         int outputWidth, int y0) {
    gradient_transform(u, rows, blocks, b, outputHeight, outputWidth, y0);
}

void conv3x3_winograd_weight_gradient(
    float *weightGradient, float *biasGradient, int biasOfInput, const float *input, const float *inputMask,
    const float *outputGradient, const float *outputMask, int images, int channels, int height, int width,
    int outChannels, int padding, float *scratch, int isa, int overwrite) {
    const int oh = height + 2 * padding - 2, ow = width + 2 * padding - 2, blocks = conv3x3_blocks(outChannels);
    const int bandRows = band_rows(ow), avx512 = isa == CONV3X3_ISA_AVX512, group = images_per_band(oh, ow);
    const band largest = weight_band(channels, oh, ow);  // the layout of the scratch memory
    const size_t imageSize = (size_t)channels * height * width, outputSize = (size_t)outChannels * oh * ow;
    float *sums = scratch, *rows = sums + (size_t)POINTS * blocks * BLOCK * channels, *v = rows + (size_t)blocks * BLOCK * oh * ow;
    float *u = v + POINTS * largest.vPoint, *zeros = u + (size_t)blocks * POINTS * largest.mPoint;
    if (images <= 0) {
        if (overwrite) memset(weightGradient, 0, sizeof(float) * (size_t)outChannels * channels * 9);
        return;
    }
    int fresh = 1;  // the first products start the sums from +0 (the same bits as adding to zeros)
    for (int n = 0; n < images; n++) {
        const float *x = input + n * imageSize, *xm = inputMask ? inputMask + n * imageSize : 0;
        const float *dy = outputGradient + n * outputSize, *dym = outputMask ? outputMask + n * outputSize : 0;
        float *outputSums = biasOfInput ? 0 : biasGradient, *inputSums = biasOfInput ? biasGradient : 0;
        if (avx512) {
            conv3x3_rows_avx512(rows, dy, dym, outChannels, oh * ow, outputSums);
            if (inputSums) conv3x3_rows_avx512(0, x, xm, channels, height * width, inputSums);
            if (n + 1 < images) {
                conv3x3_prefetch_avx512(x, xm, imageSize);
                conv3x3_prefetch_avx512(dy, dym, outputSize);
            } else if (!overwrite) {
                // the gradient that the sums are added to at the end, asked for in the L2 cache meanwhile
                for (size_t i = 0; i < (size_t)outChannels * channels * 9; i += 16) {
                    _mm_prefetch((const char *)(weightGradient + i), _MM_HINT_T1);
                }
            }
        } else {
            conv3x3_rows_avx2(rows, dy, dym, outChannels, oh * ow, outputSums);
            if (inputSums) conv3x3_rows_avx2(0, x, xm, channels, height * width, inputSums);
        }
        // Bands of rows, or (small images) several whole images in one band, their tiles one after the other: the
        // products run when the band is complete. The sums run over the tiles in the same order either way.
        const int last = group == 1 || n + 1 == images || (n + 1) % group == 0;
        for (int ya = 0; ya < oh; ya += bandRows) {
            band b = make_band(channels, ow, ya, ya + bandRows < oh ? ya + bandRows : oh);
            if (group > 1) b = largest, b.first = n % group * b.tiles;
            if (avx512) {
                input_transform_avx512(v, x, xm, zeros, channels, height, width, padding, ya, b);
                gradient_transform_avx512(u, rows, blocks, b, oh, ow, ya);
            } else {
                input_transform_avx2(v, x, xm, zeros, channels, height, width, padding, ya, b);
                gradient_transform_avx2(u, rows, blocks, b, oh, ow, ya);
            }
            if (!last) continue;
            b.tiles += b.first, b.first = 0;  // the band's tiles, all of its images'
            if (avx512) {
                weight_products_avx512(sums, u, v, channels, blocks, b, fresh);
            } else {
                weight_products_avx2(sums, u, v, channels, blocks, b, fresh);
            }
            fresh = 0;
        }
    }
    if (avx512) {
        weight_transform_avx512(weightGradient, sums, channels, outChannels, overwrite);
    } else {
        weight_transform(weightGradient, sums, channels, outChannels, overwrite);
    }
}
#else
void conv3x3_winograd_image_rows(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int y0, int y1, float *scratch, int isa,
    int prefetchNext) {
    (void)prefetchNext; (void)output; (void)input; (void)mask; (void)packed; (void)bias; (void)relu; (void)channels; (void)height;
    (void)width; (void)outChannels; (void)padding; (void)y0; (void)y1; (void)scratch; (void)isa;
    (void)output_transform; (void)gradient_transform; (void)weight_transform;
}

void conv3x3_winograd_image_tiles(
    float *output, const float *input, const float *mask, const float *packed, const float *bias, int relu,
    int channels, int height, int width, int outChannels, int padding, int tile0, int tile1, float *scratch, int isa) {
    (void)output; (void)input; (void)mask; (void)packed; (void)bias; (void)relu; (void)channels; (void)height;
    (void)width; (void)outChannels; (void)padding; (void)tile0; (void)tile1; (void)scratch; (void)isa;
    (void)make_column_band;
}

void conv3x3_winograd_weight_gradient(
    float *weightGradient, float *biasGradient, int biasOfInput, const float *input, const float *inputMask,
    const float *outputGradient, const float *outputMask, int images, int channels, int height, int width,
    int outChannels, int padding, float *scratch, int isa, int overwrite) {
    (void)weightGradient; (void)biasGradient; (void)biasOfInput; (void)input; (void)inputMask; (void)outputGradient;
    (void)outputMask; (void)images; (void)channels; (void)height; (void)width; (void)outChannels; (void)padding;
    (void)scratch; (void)isa; (void)overwrite;
}
#endif
