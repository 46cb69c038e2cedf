// 2x nearest upsampling of rows of planes; see include/upsample.h.
#include "upsample.h"

#include <stddef.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/// One output row of `width` input values: each written twice.
static void upsample_row(float *restrict row, const float *restrict source, int width) {
    int x = 0;
#if defined(__x86_64__)
    // SSE (every x86-64 CPU): four values into eight, a, a, b, b and c, c, d, d
    for (; x + 4 <= width; x += 4) {
        const __m128 v = _mm_loadu_ps(source + x);
        _mm_storeu_ps(row + 2 * x, _mm_unpacklo_ps(v, v));
        _mm_storeu_ps(row + 2 * x + 4, _mm_unpackhi_ps(v, v));
    }
#endif
    for (; x < width; x++) row[2 * x] = row[2 * x + 1] = source[x];
}

void upsample_2x_rows(float *output, const float *input, int channels, int height, int width, int y0, int y1) {
    const size_t plane = (size_t)height * width, outputPlane = 4 * plane, outputWidth = 2 * (size_t)width;
    for (int c = 0; c < channels; c++) {
        for (int y = y0; y < y1; y++) {
            upsample_row(output + c * outputPlane + y * outputWidth, input + c * plane + (size_t)(y / 2) * width, width);
        }
    }
}
