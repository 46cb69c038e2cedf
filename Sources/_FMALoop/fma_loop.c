// The machine's FP32 peak, measured: twelve independent accumulators hide the FMA latency
// (4-5 cycles on the two FMA pipes of a Zen or Skylake core), so the loop runs at the core's
// FMA throughput. The package builds for baseline x86-64; only `fma_loop_avx2` and
// `fma_loop_avx512` use AVX2/FMA3 and AVX-512, each only after the CPU said it has them.
// Elsewhere a portable multiply-add loop runs instead.
#include "fma_loop.h"

static double portable_loop(int64_t rounds) {
    float a[16];
    for (int j = 0; j < 16; j++) a[j] = 1.0f + (float)j;
    const float m = 0.999999f, c = 1e-7f;
    for (int64_t i = 0; i < rounds; i++) {
        for (int j = 0; j < 16; j++) a[j] = a[j] * m + c;
    }
    volatile float sink = a[0] + a[15];
    (void)sink;
    return (double)rounds * 16.0 * 2.0;
}

#if defined(__x86_64__)
#include <immintrin.h>

int fma_loop_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

__attribute__((target("avx2,fma")))
static double fma_loop_avx2(int64_t rounds) {
    __m256 a0 = _mm256_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    __m256 a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int64_t i = 0; i < rounds; i++) {
        a0 = _mm256_fmadd_ps(a0, m, c);  a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c);  a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c);  a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c);  a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c);  a9 = _mm256_fmadd_ps(a9, m, c);
        a10 = _mm256_fmadd_ps(a10, m, c); a11 = _mm256_fmadd_ps(a11, m, c);
    }
    // Keep the results alive so that the compiler cannot drop the loop.
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    volatile float sink = lanes[0] + lanes[7];
    (void)sink;
    return (double)rounds * 12.0 * 8.0 * 2.0;
}

// The same loop on 16-float AVX-512 registers: on a core whose FMA pipes are 512 bits wide (Zen 5,
// Intel server cores) this is twice the AVX2 figure; where AVX-512 is split into two 256-bit halves
// (Zen 4) it is the same. The 12 FMAs per round stay independent.
__attribute__((target("avx512f")))
static double fma_loop_avx512(int64_t rounds) {
    __m512 a0 = _mm512_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    __m512 a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int64_t i = 0; i < rounds; i++) {
        a0 = _mm512_fmadd_ps(a0, m, c);  a1 = _mm512_fmadd_ps(a1, m, c);
        a2 = _mm512_fmadd_ps(a2, m, c);  a3 = _mm512_fmadd_ps(a3, m, c);
        a4 = _mm512_fmadd_ps(a4, m, c);  a5 = _mm512_fmadd_ps(a5, m, c);
        a6 = _mm512_fmadd_ps(a6, m, c);  a7 = _mm512_fmadd_ps(a7, m, c);
        a8 = _mm512_fmadd_ps(a8, m, c);  a9 = _mm512_fmadd_ps(a9, m, c);
        a10 = _mm512_fmadd_ps(a10, m, c); a11 = _mm512_fmadd_ps(a11, m, c);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return (double)rounds * 12.0 * 16.0 * 2.0;
}

int fma_loop_width(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 512;
    return fma_loop_supported() ? 256 : 0;
}

double fma_loop_run(int64_t rounds) {
    switch (fma_loop_width()) {
    case 512: return fma_loop_avx512(rounds);
    case 256: return fma_loop_avx2(rounds);
    default: return portable_loop(rounds);
    }
}

double fma_loop_run_avx2(int64_t rounds) {
    return fma_loop_supported() ? fma_loop_avx2(rounds) : portable_loop(rounds);
}
#else
int fma_loop_supported(void) { return 0; }
int fma_loop_width(void) { return 0; }
double fma_loop_run(int64_t rounds) { return portable_loop(rounds); }
double fma_loop_run_avx2(int64_t rounds) { return portable_loop(rounds); }
#endif
