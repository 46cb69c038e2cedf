// The run-time choice between the AVX-512 bodies and the portable loops.
#include "dispatch.h"

static int portable_requested = 0;

int vector_kernels_has_avx512(void) {
#if defined(__x86_64__)
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    }
    return cached;
#else
    return 0;
#endif
}

void vector_kernels_use_portable(int portable) { portable_requested = portable; }

int vk_avx512_active(void) { return vector_kernels_has_avx512() && !portable_requested; }
