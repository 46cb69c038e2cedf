#ifndef FMA_LOOP_H
#define FMA_LOOP_H

#include <stdint.h>

/// Runs `rounds` rounds of twelve independent fused multiply-adds on the widest vectors the CPU
/// has (`fma_loop_width`: 16-float AVX-512, 384 operations per round, or 8-float AVX2 + FMA3, 192)
/// on the calling thread and returns the floating-point operations done (2 per lane per FMA).
/// Without AVX2/FMA3 a portable loop of 16 multiply-adds per round runs instead (32 per round).
double fma_loop_run(int64_t rounds);

/// The same loop on AVX2 + FMA3 even where AVX-512 exists (the peak of AVX2 code such as
/// OpenBLAS's Haswell kernels); the portable loop without AVX2/FMA3.
double fma_loop_run_avx2(int64_t rounds);

/// 1 when the CPU has AVX2 and FMA3, else 0.
int fma_loop_supported(void);

/// The vector width in bits `fma_loop_run` uses: 512 (AVX-512F), 256 (AVX2 + FMA3) or 0 (portable).
int fma_loop_width(void);

#endif
