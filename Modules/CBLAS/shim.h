// System-library shim: OpenBLAS's CBLAS interface and LAPACKE.
// Debian's OpenBLAS is built without LAPACKE, so lapacke is linked separately.
#include <cblas.h>
#include <lapacke.h>
// glibc's mallopt, with which Tensors keeps freed tensor memory in the heap (Parallel.swift).
#if defined(__GLIBC__)
#include <malloc.h>
#endif
