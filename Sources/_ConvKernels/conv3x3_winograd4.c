// Winograd F(4x4, 3x3) for the 3x3 stride-1 convolution without a mask (see conv3x3_winograd4.h). Every transform is
// a fixed sequence of additions, subtractions and scalings by powers of two (exact), so any instruction set, fused or
// not, gives the same values: the weights' in portable C (once per weight tensor, in double), the input's with AVX-512
// masked loads and permutes or AVX2 staged rows and in-lane transposes, the output's on the 16 output channels of a
// block in the vector lanes. The 36 matrix products take F(2x2, 3x3)'s register tiles (`winograd_products.h`) and the
// transposing store pass is the direct kernel's (`conv3x3_kernels.h`).
#include "conv3x3_winograd4.h"
#include "conv3x3_kernels.h"
#include "winograd_products.h"

#include <string.h>

enum { BLOCK = CONV3X3_CHANNEL_BLOCK, POINTS = 36, GROUP = WINOGRAD_GROUP, LANES = 8 };

#ifndef CONV3X3_WINOGRAD4_TILES
#define CONV3X3_WINOGRAD4_TILES 36
#endif

size_t conv3x3_winograd4_packed_count(int outChannels, int inChannels) {
    return (size_t)POINTS * conv3x3_blocks(outChannels) * BLOCK * (size_t)inChannels;
}

/// `G x` for one column `x` of a kernel, with `G = [[1/4, 0, 0], [-1/6, -1/6, -1/6], [-1/6, 1/6, -1/6],
/// [1/24, 1/12, 1/6], [1/24, -1/12, 1/6], [0, 0, 1]]`, in double (rounded to float once, at the end).
static void kernel_column(double t[6], double a, double b, double c) {
    t[0] = a / 4, t[1] = -(a + b + c) / 6, t[2] = -(a - b + c) / 6;
    t[3] = a / 24 + b / 12 + c / 6, t[4] = a / 24 - b / 12 + c / 6, t[5] = c;
}

/// `u [6][6] = G g G^T` for one 3 x 3 kernel `g` (row-major, `g[3 * ky + kx]`): `u[6 i + j]`, `i` the point along the
/// rows, `j` along the columns.
static void transform_kernel(float u[POINTS], const float g[9]) {
    double t[6][3];  // G g: t[i][x]
    for (int x = 0; x < 3; x++) {
        double column[6];
        kernel_column(column, g[x], g[3 + x], g[6 + x]);
        for (int i = 0; i < 6; i++) t[i][x] = column[i];
    }
    for (int i = 0; i < 6; i++) {
        double row[6];
        kernel_column(row, t[i][0], t[i][1], t[i][2]);
        for (int j = 0; j < 6; j++) u[6 * i + j] = (float)row[j];
    }
}

void conv3x3_winograd4_pack(float *packed, const float *weight, int outChannels, int inChannels, int rotated) {
    winograd_pack(packed, weight, outChannels, inChannels, rotated, POINTS, transform_kernel);
}

/// An image's tiles, and the layout of the scratch memory for bands of up to `bandRows` tile rows.
typedef struct {
    int outputHeight, outputWidth, tilesX, tilesY, bandRows;
    int pitch;            // floats per staged input row (the padded row, zeros around, room for whole vectors)
    int stride;           // floats from one channel's transformed tiles to the next in V (whole groups, and 16 more)
    size_t vPoint;        // floats from one of the 36 points to the next in V
    size_t mPoint;        // floats from one point to the next in M (a block's)
    size_t stagedCount;   // floats of the staged rows and of the AVX2 transform's row combinations
} geometry;

static geometry make_geometry(int channels, int height, int width, int padding) {
    geometry g;
    g.outputHeight = height + 2 * padding - 2, g.outputWidth = width + 2 * padding - 2;
    g.tilesX = (g.outputWidth + 3) / 4, g.tilesY = (g.outputHeight + 3) / 4;
    g.bandRows = CONV3X3_WINOGRAD4_TILES / g.tilesX > 1 ? CONV3X3_WINOGRAD4_TILES / g.tilesX : 1;
    if (g.bandRows > g.tilesY) g.bandRows = g.tilesY;
    // a group of 8 tiles from tile column tx reads padded columns 4 tx ..< 4 tx + 40 (AVX2: five whole vectors)
    g.pitch = (4 * g.tilesX + 40 + 15) / 16 * 16;
    const int tiles = g.bandRows * g.tilesX;
    g.stride = (tiles + GROUP - 1) / GROUP * GROUP + 16;
    // the points' rows a little more than a multiple of 4 KB apart (see conv3x3_winograd.c's `set_layout`)
    g.vPoint = ((size_t)channels * g.stride + 1023) / 1024 * 1024 + 80, g.mPoint = (size_t)g.stride * BLOCK + 16;
    g.stagedCount = (size_t)(4 * (g.bandRows + 1) + 2) * g.pitch + 6 * 48;
    return g;
}

size_t conv3x3_winograd4_scratch_count(int channels, int height, int width, int outChannels, int padding) {
    const geometry g = make_geometry(channels, height, width, padding);
    const size_t blocks = (size_t)conv3x3_blocks(outChannels);
    return g.stagedCount                                                   // staged rows, row combinations
           + (size_t)POINTS * g.vPoint                                      // V [36, C, stride]
           + blocks * POINTS * g.mPoint                                     // M [blocks, 36, stride, 16]
           + blocks * BLOCK * (size_t)(4 * (g.bandRows + 1)) * g.outputWidth;  // the band's outputs, channels innermost
}

/// A band: the tiles `[t0, t1)`, in the tile rows `[firstRow, firstRow + rows)` (whole rows, or parts of the first and
/// the last).
typedef struct {
    int t0, t1, firstRow, rows;
} band;

#define INLINE static inline __attribute__((always_inline))

/// The padded rows `[4 firstRow, 4 firstRow + 4 rows + 2)` of channel plane `image` in `staged` (`pitch` floats a
/// row): the image's row from column `padding` on, zeros around it and for rows of the padding.
INLINE void stage_rows(float *staged, const float *image, int height, int width, int padding, int pitch, band b) {
    for (int r = 0; r < 4 * b.rows + 2; r++) {
        float *row = staged + (size_t)r * pitch;
        const int y = 4 * b.firstRow + r - padding;
        if (y < 0 || y >= height) {
            memset(row, 0, (size_t)pitch * sizeof(float));
            continue;
        }
        memset(row, 0, (size_t)padding * sizeof(float));
        memcpy(row + padding, image + (size_t)y * width, (size_t)width * sizeof(float));
        memset(row + padding + width, 0, (size_t)(pitch - padding - width) * sizeof(float));
    }
}

/// The output rows of `b`'s tile rows inside the image: `[4 b.firstRow, band_end(g, b))`.
static int band_end(const geometry *g, band b) {
    return 4 * (b.firstRow + b.rows) < g->outputHeight ? 4 * (b.firstRow + b.rows) : g->outputHeight;
}

/// The output positions of `b`'s tile rows inside the image (whole output rows).
static int band_positions(const geometry *g, band b) { return (band_end(g, b) - 4 * b.firstRow) * g->outputWidth; }

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,fma")))
#define AVX2 __attribute__((target("avx2,fma")))
#define UNROLL _Pragma("clang loop unroll(full)")

/// `B^T d` for six vectors (rows or columns of windows), with `B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0],
/// [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]` as sums and differences
/// and scalings by 2 and 4 (exact): `4 (d0 - d2) + (d4 - d2)`, `(d3 + d4) - 4 (d1 + d2)`, `(d4 - d3) + 4 (d1 - d2)`,
/// `(d4 - d2) + 2 (d3 - d1)`, `(d4 - d2) - 2 (d3 - d1)`, `4 (d1 - d3) + (d5 - d3)`.
#define INPUT_TRANSFORM(T, ADD, SUB, MUL, SET1, t, d)                                                 \
    do {                                                                                         \
        const T four_ = SET1(4.0f), two_ = SET1(2.0f);                                           \
        const T e_ = SUB((d)[4], (d)[2]), f_ = MUL(two_, SUB((d)[3], (d)[1]));                   \
        (t)[0] = ADD(MUL(four_, SUB((d)[0], (d)[2])), e_);                                       \
        (t)[1] = SUB(ADD((d)[3], (d)[4]), MUL(four_, ADD((d)[1], (d)[2])));                      \
        (t)[2] = ADD(SUB((d)[4], (d)[3]), MUL(four_, SUB((d)[1], (d)[2])));                      \
        (t)[3] = ADD(e_, f_), (t)[4] = SUB(e_, f_);                                              \
        (t)[5] = ADD(MUL(four_, SUB((d)[1], (d)[3])), SUB((d)[5], (d)[3]));                      \
    } while (0)

#define INPUT_TRANSFORM_512(t, d) \
    INPUT_TRANSFORM(__m512, _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps, _mm512_set1_ps, t, d)
#define INPUT_TRANSFORM_256(t, d) \
    INPUT_TRANSFORM(__m256, _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps, _mm256_set1_ps, t, d)

/// `V [36, C, stride]` = `B^T d B` of every tile's 6 x 6 window `d` of the padded input, with AVX-512: per tile row,
/// eight tiles at a time, `B^T` over the window's six rows on whole vectors of columns (the columns of eight tiles
/// and those four further on, masked loads from the image: zeros outside it, the padding), then each of the six
/// results' columns `4 t + j` of tile t picked out by a permute of two vectors, and `B^T` over them.
AVX512 static void input_transform_avx512(float *v, const float *input, int channels, int height, int width,
                                          int padding, const geometry *g, band b) {
    const size_t plane = (size_t)height * width;
    __m512i pick[4];
    UNROLL for (int j = 0; j < 4; j++) {
        pick[j] = _mm512_setr_epi32(j, 4 + j, 8 + j, 12 + j, 16 + j, 20 + j, 24 + j, 28 + j, j, j, j, j, j, j, j, j);
    }
    for (int r = 0; r < b.rows; r++) {
        const int ty = b.firstRow + r;
        const int first = b.t0 > ty * g->tilesX ? b.t0 - ty * g->tilesX : 0;
        const int end = b.t1 < (ty + 1) * g->tilesX ? b.t1 - ty * g->tilesX : g->tilesX;
        int offset[6];  // per window row: its offset in a channel's plane, or -1 outside the image
        for (int i = 0; i < 6; i++) {
            const int y = 4 * ty + i - padding;
            offset[i] = y >= 0 && y < height ? y * width : -1;
        }
        for (int tx = first; tx < end; tx += LANES) {
            // per load k (padded columns 4 tx + 0, 16, 4, 20): its first image column and its lanes inside the image
            int column[4];
            __mmask16 lanes[4];
            UNROLL for (int k = 0; k < 4; k++) {
                column[k] = 4 * tx - padding + (k & 1) * 16 + (k >> 1) * 4;
                const int lo = column[k] < 0 ? -column[k] : 0, hi = width - column[k] < 16 ? width - column[k] : 16;
                lanes[k] = hi <= lo ? 0 : (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
            }
            for (int c = 0; c < channels; c++) {
                const float *image = input + c * plane;
                __m512 x[4][6];  // [load k][window row i], then B^T over the rows
                UNROLL for (int k = 0; k < 4; k++) {
                    __m512 d[6];
                    UNROLL for (int i = 0; i < 6; i++) {
                        d[i] = offset[i] < 0 ? _mm512_setzero_ps()
                                             : _mm512_maskz_loadu_ps(lanes[k], image + offset[i] + column[k]);
                    }
                    INPUT_TRANSFORM_512(x[k], d);
                }
                float *out = v + (size_t)c * g->stride + (ty * g->tilesX + tx - b.t0);
                UNROLL for (int i = 0; i < 6; i++) {
                    __m512 columns[6], t[6];
                    UNROLL for (int j = 0; j < 4; j++) columns[j] = _mm512_permutex2var_ps(x[0][i], pick[j], x[1][i]);
                    columns[4] = _mm512_permutex2var_ps(x[2][i], pick[0], x[3][i]);
                    columns[5] = _mm512_permutex2var_ps(x[2][i], pick[1], x[3][i]);
                    INPUT_TRANSFORM_512(t, columns);
                    UNROLL for (int j = 0; j < 6; j++) {
                        _mm256_storeu_ps(out + (size_t)(6 * i + j) * g->vPoint, _mm512_castps512_ps256(t[j]));
                    }
                }
            }
        }
    }
}

/// The columns `4 t + j` (`j < 4`, tile t in lane t) of eight tiles of a row of `B^T` combinations `row`: a 4 x 4
/// transpose within each 128-bit half of four vectors of eight columns (lanes `t0, t2, t4, t6 | t1, t3, t5, t7`), then
/// the lanes put in order.
AVX2 INLINE void tile_columns_avx2(__m256 column[4], const float *row) {
    const __m256 a0 = _mm256_loadu_ps(row), a1 = _mm256_loadu_ps(row + 8);
    const __m256 a2 = _mm256_loadu_ps(row + 16), a3 = _mm256_loadu_ps(row + 24);
    const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
    const __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    column[0] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t0, t2, 0x44), order);
    column[1] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t0, t2, 0xEE), order);
    column[2] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t1, t3, 0x44), order);
    column[3] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t1, t3, 0xEE), order);
}

/// `input_transform_avx512` with AVX2, the same operations in the same order (so the same values): `B^T` over the
/// window's rows on five whole vectors of columns, stored, then each result's columns `4 t + j` picked out by
/// `tile_columns_avx2` (those of `j = 4, 5` as the columns `j = 0, 1` of the row four columns on).
AVX2 static void input_transform_avx2(float *v, const float *input, float *staged, int channels, int height,
                                      int width, int padding, const geometry *g, band b) {
    const size_t plane = (size_t)height * width;
    float *combined = staged + (size_t)(4 * b.rows + 2) * g->pitch;  // [6][48]
    for (int c = 0; c < channels; c++) {
        stage_rows(staged, input + c * plane, height, width, padding, g->pitch, b);
        for (int r = 0; r < b.rows; r++) {
            const int ty = b.firstRow + r;
            const int first = b.t0 > ty * g->tilesX ? b.t0 - ty * g->tilesX : 0;
            const int end = b.t1 < (ty + 1) * g->tilesX ? b.t1 - ty * g->tilesX : g->tilesX;
            for (int tx = first; tx < end; tx += LANES) {
                const float *window = staged + (size_t)(4 * r) * g->pitch + 4 * tx;
                for (int k = 0; k < 5; k++) {
                    __m256 d[6], t[6];
                    UNROLL for (int i = 0; i < 6; i++) d[i] = _mm256_loadu_ps(window + (size_t)i * g->pitch + 8 * k);
                    INPUT_TRANSFORM_256(t, d);
                    UNROLL for (int i = 0; i < 6; i++) _mm256_storeu_ps(combined + 48 * i + 8 * k, t[i]);
                }
                float *out = v + (size_t)c * g->stride + (ty * g->tilesX + tx - b.t0);
                for (int i = 0; i < 6; i++) {
                    __m256 column[8], t[6];
                    tile_columns_avx2(column, combined + 48 * i);
                    tile_columns_avx2(column + 4, combined + 48 * i + 4);
                    INPUT_TRANSFORM_256(t, column);
                    UNROLL for (int j = 0; j < 6; j++) _mm256_storeu_ps(out + (size_t)(6 * i + j) * g->vPoint, t[j]);
                }
            }
        }
    }
}

/// `A^T m` for six vectors, with `A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8,
/// -8, 1]]` as sums and differences and scalings by 2, 4 and 8 (exact): with `a = m1 + m2`, `b = m1 - m2`, `c = m3 +
/// m4`, `d = m3 - m4`: `(m0 + a) + c`, `b + 2 d`, `a + 4 c`, `(b + 8 d) + m5`.
#define OUTPUT_TRANSFORM(T, ADD, SUB, MUL, SET1, o, m)                                                           \
    do {                                                                                                      \
        const T a_ = ADD((m)[1], (m)[2]), b_ = SUB((m)[1], (m)[2]), c_ = ADD((m)[3], (m)[4]), d_ = SUB((m)[3], (m)[4]); \
        (o)[0] = ADD(ADD((m)[0], a_), c_), (o)[1] = ADD(b_, MUL(SET1(2.0f), d_));                             \
        (o)[2] = ADD(a_, MUL(SET1(4.0f), c_)), (o)[3] = ADD(ADD(b_, MUL(SET1(8.0f), d_)), (m)[5]);            \
    } while (0)

/// `M [blocks, 36, stride, 16]` `->` the outputs: `Y = A^T m A` of every tile of the band (`A^T` over the points along
/// the rows, then along the columns), its 16 output channels in the vector lanes (AVX2: two halves, the same
/// operations), to `rows [blocks, band_positions, 16]` (position `(y - 4 b.firstRow) * OW + x`); outputs past the
/// image's last row or column are left out.
#define OUTPUT_TRANSFORM_BODY(T, LOAD, STORE, ADD, SUB, MUL, SET1, lane)                                          \
    do {                                                                                                      \
        const size_t pointStride = g->mPoint, blockPitch = (size_t)band_positions(g, b) * BLOCK;              \
        for (int blockIndex = 0; blockIndex < blocks; blockIndex++) {                                         \
            const float *mb = m + (size_t)blockIndex * POINTS * pointStride + (lane);                         \
            float *out = rows + blockIndex * blockPitch + (lane);                                             \
            for (int t = 0; t < b.t1 - b.t0; t++) {                                                           \
                const int tile = b.t0 + t, y0 = 4 * (tile / g->tilesX), x0 = 4 * (tile % g->tilesX);          \
                const int rowsHere = g->outputHeight - y0 < 4 ? g->outputHeight - y0 : 4;                    \
                const int columnsHere = g->outputWidth - x0 < 4 ? g->outputWidth - x0 : 4;                    \
                const float *p = mb + (size_t)t * BLOCK;                                                      \
                T s[4][6];                                                                                    \
                UNROLL for (int j = 0; j < 6; j++) {                                                          \
                    T column[6], o[4];                                                                        \
                    UNROLL for (int i = 0; i < 6; i++) column[i] = LOAD(p + (size_t)(6 * i + j) * pointStride); \
                    OUTPUT_TRANSFORM(T, ADD, SUB, MUL, SET1, o, column);                                      \
                    UNROLL for (int r = 0; r < 4; r++) s[r][j] = o[r];                                        \
                }                                                                                             \
                for (int r = 0; r < rowsHere; r++) {                                                          \
                    T o[4];                                                                                   \
                    OUTPUT_TRANSFORM(T, ADD, SUB, MUL, SET1, o, s[r]);                                        \
                    float *at = out + ((size_t)(y0 + r - 4 * b.firstRow) * g->outputWidth + x0) * BLOCK;      \
                    for (int q = 0; q < columnsHere; q++) STORE(at + (size_t)q * BLOCK, o[q]);                \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    } while (0)

AVX512 static void output_transform_avx512(float *rows, const float *m, int blocks, const geometry *g, band b) {
    OUTPUT_TRANSFORM_BODY(__m512, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps,
                          _mm512_set1_ps, 0);
}
AVX2 static void output_transform_avx2(float *rows, const float *m, int blocks, const geometry *g, band b) {
    for (int half = 0; half < 2; half++) {
        OUTPUT_TRANSFORM_BODY(__m256, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps,
                              _mm256_set1_ps, 8 * half);
    }
}

/// One band: the input transform, the 36 products, the output transform, and the stores (one for whole tile rows;
/// else one per output row and block, the band's columns).
static void winograd4_band(float *output, const float *input, const float *packed, const float *bias, int relu,
                           int channels, int height, int width, int outChannels, int padding, const geometry *g,
                           band b, float *scratch, int isa) {
    const int blocks = conv3x3_blocks(outChannels), tiles = b.t1 - b.t0;
    float *staged = scratch, *v = staged + g->stagedCount, *m = v + POINTS * g->vPoint;
    float *rows = m + (size_t)blocks * POINTS * g->mPoint;
    const winograd_products_layout layout = {POINTS, tiles, (size_t)g->stride, g->vPoint, g->mPoint};
    if (isa == CONV3X3_ISA_AVX512) {
        input_transform_avx512(v, input, channels, height, width, padding, g, b);
        winograd_products_avx512(m, packed, v, channels, blocks, layout);
        output_transform_avx512(rows, m, blocks, g, b);
    } else {
        input_transform_avx2(v, input, staged, channels, height, width, padding, g, b);
        winograd_products_avx2(m, packed, v, channels, blocks, layout);
        output_transform_avx2(rows, m, blocks, g, b);
    }
    const int ow = g->outputWidth, y0 = 4 * b.firstRow, positions = band_positions(g, b);
    const size_t outputStride = (size_t)g->outputHeight * ow;
    if (b.t0 == b.firstRow * g->tilesX && b.t1 == (b.firstRow + b.rows) * g->tilesX) {  // whole tile rows: one store
        if (isa == CONV3X3_ISA_AVX512) {
            conv3x3_store_avx512(output + (size_t)y0 * ow, rows, bias, relu, outChannels, positions, outputStride);
        } else {
            conv3x3_store_avx2(output + (size_t)y0 * ow, rows, bias, relu, outChannels, positions, blocks, outputStride);
        }
        return;
    }
    // else per block (16 output channels): each tile row's columns in the band, its output rows at once when whole
    for (int blockIndex = 0; blockIndex < blocks; blockIndex++) {
        const int o0 = blockIndex * BLOCK, here = outChannels - o0 < BLOCK ? outChannels - o0 : BLOCK;
        const float *biasHere = bias ? bias + o0 : 0, *block = rows + (size_t)blockIndex * positions * BLOCK;
        for (int ty = b.firstRow; ty < b.firstRow + b.rows; ty++) {
            const int rowStart = ty * g->tilesX, first = b.t0 > rowStart ? b.t0 - rowStart : 0;
            const int end = b.t1 < rowStart + g->tilesX ? b.t1 - rowStart : g->tilesX;
            const int x0 = 4 * first, x1 = 4 * end < ow ? 4 * end : ow;
            const int ya = 4 * ty, yb = 4 * ty + 4 < g->outputHeight ? 4 * ty + 4 : g->outputHeight;
            const int whole = x0 == 0 && x1 == ow;  // the tile row's output rows as one run of positions
            for (int y = ya; y < yb; y += whole ? yb - ya : 1) {
                const int count = whole ? (yb - ya) * ow : x1 - x0;
                const float *source = block + ((size_t)(y - y0) * ow + x0) * BLOCK;
                float *out = output + (size_t)o0 * outputStride + (size_t)y * ow + x0;
                if (isa == CONV3X3_ISA_AVX512) {
                    conv3x3_store_avx512(out, source, biasHere, relu, here, count, outputStride);
                } else {
                    conv3x3_store_avx2(out, source, biasHere, relu, here, count, 1, outputStride);
                }
            }
        }
    }
}

void conv3x3_winograd4_image_tiles(
    float *output, const float *input, const float *packed, const float *bias, int relu, int channels, int height,
    int width, int outChannels, int padding, int tile0, int tile1, float *scratch, int isa) {
    const geometry g = make_geometry(channels, height, width, padding);
    const int tiles = g.tilesX * g.tilesY;
    if (tile0 < 0) tile0 = 0;
    if (tile1 > tiles) tile1 = tiles;
    // bands of up to bandRows tile rows' worth of tiles, from wherever the range starts
    const int bandTiles = g.bandRows * g.tilesX;
    for (int t = tile0; t < tile1; t += bandTiles) {
        const int end = tile1 - t < bandTiles ? tile1 : t + bandTiles;
        const band b = {t, end, t / g.tilesX, (end - 1) / g.tilesX - t / g.tilesX + 1};
        winograd4_band(output, input, packed, bias, relu, channels, height, width, outChannels, padding, &g, b, scratch, isa);
    }
}

#else
void conv3x3_winograd4_image_tiles(
    float *output, const float *input, const float *packed, const float *bias, int relu, int channels, int height,
    int width, int outChannels, int padding, int tile0, int tile1, float *scratch, int isa) {
    (void)output, (void)input, (void)packed, (void)bias, (void)relu, (void)channels, (void)height, (void)width;
    (void)outChannels, (void)padding, (void)tile0, (void)tile1, (void)scratch, (void)isa;
}
#endif
