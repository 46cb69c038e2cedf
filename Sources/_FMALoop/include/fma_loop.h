#ifndef FMA_LOOP_H
#define FMA_LOOP_H

#include <stdint.h>

/// Runs `rounds` rounds of twelve independent 8-float fused multiply-adds (AVX2 + FMA3) on the
/// calling thread and returns the floating-point operations done (2 per lane per FMA: 192 per
/// round). Without AVX2/FMA3 (see `fma_loop_supported`) a portable loop of 16 multiply-adds per
/// round runs instead (32 operations per round).
double fma_loop_run(int64_t rounds);

/// 1 when the CPU has AVX2 and FMA3, else 0.
int fma_loop_supported(void);

#endif
