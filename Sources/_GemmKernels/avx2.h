#ifndef GEMM_AVX2_H
#define GEMM_AVX2_H

// What the AVX2 kernels of this target share (sgemv_avx2.c, sgemm_at_avx2.c): their function attributes and the
// lane masks of their partial vectors. Include only where `__x86_64__` is defined.
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("clang loop unroll(full)")

/// The lanes of a ymm mask below `n` (none for `n <= 0`, all 8 from 8 on), for maskload / maskstore.
AVX2 INLINE __m256i lanes_below(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#endif
