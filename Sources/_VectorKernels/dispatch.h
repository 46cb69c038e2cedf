// The run-time choice between the AVX-512 bodies and the portable loops (dispatch.c).
#ifndef VECTOR_KERNELS_DISPATCH_H
#define VECTOR_KERNELS_DISPATCH_H

#include "vector_kernels.h"

/// Nonzero when the AVX-512 bodies are to run: the CPU has AVX-512F and DQ and tests did not ask
/// for the portable loops.
int vk_avx512_active(void);

#endif
