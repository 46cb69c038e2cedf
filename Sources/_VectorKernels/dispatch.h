// The run-time choice between the AVX-512 bodies, the AVX2 bodies and the portable loops (dispatch.c).
#ifndef VECTOR_KERNELS_DISPATCH_H
#define VECTOR_KERNELS_DISPATCH_H

#include "vector_kernels.h"

/// Nonzero when the AVX-512 bodies are to run: the CPU has AVX-512F and DQ and tests did not limit
/// the kernels to a lower level.
int vk_avx512_active(void);

/// Nonzero when the AVX2 bodies may run (where no AVX-512 body does): the CPU has AVX2 and FMA3 and
/// tests did not ask for the portable loops.
int vk_avx2_active(void);

#endif
