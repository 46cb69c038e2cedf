#ifndef UPSAMPLE_H
#define UPSAMPLE_H

/// Rows `[y0, y1)` of the 2x nearest upsampling `[channels, 2 height, 2 width]` of `input` `[channels, height, width]`,
/// every channel, into the same rows of `output`: each value twice along its row, each input row into two output rows
/// (`PoolingKernels.upsample2xRows`: `upsampleNearest` by 2, and a convolution that upsamples the rows it reads in cache).
void upsample_2x_rows(float *output, const float *input, int channels, int height, int width, int y0, int y1);

#endif
