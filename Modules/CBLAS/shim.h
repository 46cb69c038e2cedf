// System-library shim: OpenBLAS's CBLAS interface and LAPACKE.
// Debian's OpenBLAS is built without LAPACKE, so lapacke is linked separately.
#include <cblas.h>
#include <lapacke.h>
