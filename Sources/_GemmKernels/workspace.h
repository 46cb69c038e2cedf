#ifndef GEMM_WORKSPACE_H
#define GEMM_WORKSPACE_H

#include <stddef.h>

/// This thread's packing buffer of the GEMM kernels (64-byte aligned) of at least `count` floats, grown on
/// demand and kept while the thread lives; a thread-specific key frees it when the thread exits (Dispatch
/// retires idle workers and starts new ones). Null when it could not be allocated. One kernel runs at a time
/// on a thread, so the kernels share it.
float *gemm_thread_workspace(size_t count);

#endif
