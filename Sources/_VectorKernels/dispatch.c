// The run-time choice between the AVX-512 bodies, the AVX2 bodies and the portable loops.
#include "dispatch.h"

static int level_limit = VECTOR_KERNELS_BEST;

/// The best level this CPU runs, found once.
static int detected_level(void) {
#if defined(__x86_64__)
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") ? VECTOR_KERNELS_BEST
                 : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")     ? VECTOR_KERNELS_AVX2
                                                                                       : VECTOR_KERNELS_PORTABLE;
    }
    return cached;
#else
    return VECTOR_KERNELS_PORTABLE;
#endif
}

int vector_kernels_has_avx512(void) { return detected_level() >= VECTOR_KERNELS_BEST; }

int vector_kernels_has_avx2(void) { return detected_level() >= VECTOR_KERNELS_AVX2; }

void vector_kernels_limit(int level) { level_limit = level; }

int vk_avx512_active(void) { return vector_kernels_has_avx512() && level_limit >= VECTOR_KERNELS_BEST; }

int vk_avx2_active(void) { return vector_kernels_has_avx2() && level_limit >= VECTOR_KERNELS_AVX2; }
