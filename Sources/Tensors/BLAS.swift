import CBLAS
import Foundation
import _GemmKernels

/// Matrix products (row-major): the AVX-512 kernel of `_GemmKernels` (`sgemm.h`) where the CPU has
/// AVX-512F and the depth `k` is at most `maximumKernelDepth`; on a CPU with AVX2 but not AVX-512F, the
/// AVX2 kernel of the same depths (`sgemm_avx2`, every transpose), which follows the AVX-512 kernel's rule and
/// so gives its bits; else OpenBLAS's `cblas_sgemm`. For one row times a matrix stored by rows (a dense layer on one image)
/// `sgemv.h`'s AVX-512 or AVX2 kernel, else `cblas_sgemv`.
///
/// Which of them computes a product depends only on `k`, the transposes, the CPU and `usesKernel`, never
/// on `m` or `n`: the blocks of rows or columns that `gemm` hands to its threads therefore all take the
/// same path, and each element of C is the same dot product (in k order, one accumulator in the
/// kernels, which follow the same rule and so give the same bits) whatever the thread count.
public enum BLAS {
    /// The CPU runs the AVX-512 kernel (AVX-512F).
    public static let kernelIsSupported = sgemm_avx512_supported() == 1

    /// The CPU runs `sgemv.h`'s AVX2 kernel (AVX2 and FMA3), which one-row products take when it has no AVX-512.
    public static let vectorKernelIsSupported = sgemv_avx2_supported() == 1

    /// The largest depth `k` the kernel takes (it does not block the depth); deeper products go to OpenBLAS.
    public static let maximumKernelDepth = Int(SGEMM_MAX_DEPTH)

    /// The CPU runs the AVX2 GEMM kernels (`sgemm_avx2`, and `sgemm_at_avx2` for `A^T B`; AVX2 and FMA3, as `sgemv.h`'s
    /// AVX2 kernel); products take `sgemm_avx2` only when it has no AVX-512F.
    public static let transposedKernelIsSupported = sgemv_avx2_supported() == 1

    /// The largest depth `k` `sgemm_at_avx2` takes (`sgemm_avx2` with A transposed, kept for callers of that entry point;
    /// `gemm` calls `sgemm_avx2` itself, up to `maximumKernelDepth`).
    public static let maximumTransposedKernelDepth = Int(SGEMM_AT_MAX_DEPTH)

    /// Whether products go to our kernels (the AVX-512 one, the AVX2 one) where they apply: on unless
    /// the environment sets `DAFAR_GEMM=openblas` (to measure both paths in one binary); tests switch it to
    /// exercise both.
    nonisolated(unsafe) public static var usesKernel = defaultUsesKernel()

    /// False when `environment` sets `DAFAR_GEMM=openblas`, else true.
    public static func defaultUsesKernel(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment["DAFAR_GEMM"] != "openblas"
    }

    /// Whether a product of depth `k` runs on the AVX-512 kernel (else on OpenBLAS).
    @inlinable
    public static func kernelApplies(k: Int) -> Bool { usesKernel && kernelIsSupported && k <= maximumKernelDepth }

    /// Whether a product of depth `k` with these transposes runs on one of the kernels (the AVX-512 kernel, or on
    /// a CPU without it the AVX2 ones), else on OpenBLAS.
    @inlinable
    public static func kernelApplies(k: Int, transposeA: Bool, transposeB: Bool) -> Bool {
        kernelApplies(k: k) || avx2KernelApplies(k: k)
    }

    /// Whether a product of depth `k` runs on the AVX2 kernel (`sgemm_avx2`): on a CPU with AVX2 and FMA3 but not
    /// AVX-512F, up to `maximumKernelDepth`.
    @inlinable
    static func avx2KernelApplies(k: Int) -> Bool {
        usesKernel && !kernelIsSupported && transposedKernelIsSupported && k <= maximumKernelDepth
    }

    /// `C = alpha * op(A) * op(B) + beta * C`, row-major.
    ///
    /// Large products are split into blocks of columns (or rows) of `C`, each computed by `gemmSerial`
    /// on the threads; the depth is never split. On the kernels every element of `C` is one dot
    /// product in k order wherever its block starts, so there is one block per thread. OpenBLAS's
    /// result for an element depends on the shape of the call that computes it (its edge and small-
    /// product kernels round differently: the last bits of up to 7 % of the elements of the dense
    /// layers' products; `GemmKernelTests`), so its products are cut into `openBLASBlocks` blocks
    /// whatever the thread count. Either way results are the same bits for any number of threads.
    /// Kernels that already run inside a per-thread chunk call `gemmSerial`.
    ///
    /// - Parameters:
    ///   - c: `[m, n]` with leading dimension `ldc` (default `n`).
    ///   - a: `op(A)` is `[m, k]`; stored `[m, k]` or, transposed, `[k, m]`.
    ///   - b: `op(B)` is `[k, n]`; stored `[k, n]` or, transposed, `[n, k]`.
    @inlinable
    public static func gemm(
        _ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        m: Int, n: Int, k: Int,
        transposeA: Bool = false, transposeB: Bool = false,
        alpha: Float = 1, beta: Float = 0,
        lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil
    ) {
        let lda = lda ?? (transposeA ? m : k), ldb = ldb ?? (transposeB ? k : n), ldc = ldc ?? n
        let flops = 2 * Double(m) * Double(n) * Double(k)
        if m == 1, transposeB, k > 0, flops >= rowParallelThreshold, Parallel.threadCount > 1 {
            // One row times a matrix stored `[n, k]` (a single image through a dense layer): one matrix-vector
            // product per block of `n`, each element of C the dot product of a row of B with the row of A
            // whatever block computes it (`GemmKernelTests`); large ones read B on all the threads.
            let blocks = min(Parallel.threadCount, max(1, n / 16))
            Parallel.forEach(chunks: blocks, of: blocks) { _, range in
                for block in range {
                    let start = (n * block / blocks) & ~15, end = block == blocks - 1 ? n : (n * (block + 1) / blocks) & ~15
                    guard end > start else { continue }
                    gemmSerial(
                        c + start, a, b + start * ldb, m: 1, n: end - start, k: k, transposeA: transposeA, transposeB: true,
                        alpha: alpha, beta: beta, lda: lda, ldb: ldb, ldc: ldc)
                }
            }
            return
        }
        // other single rows are one matrix-vector product (see `gemmSerial`), faster on one thread than split
        guard flops >= parallelThreshold, k > 0, m > 1 else {
            gemmSerial(
                c, a, b, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
                alpha: alpha, beta: beta, lda: lda, ldb: ldb, ldc: ldc)
            return
        }
        // Split the longer side of C into blocks that are multiples of 16 (whole micro-tiles).
        let splitColumns = n >= m
        let side = splitColumns ? n : m
        let onKernel = kernelApplies(k: k, transposeA: transposeA, transposeB: transposeB)
        let blocks = min(onKernel ? Parallel.threadCount : openBLASBlocks, max(1, side / 16))
        Parallel.forEach(chunks: blocks, of: blocks) { _, range in
            for block in range {
                let start = (side * block / blocks) & ~15, end = block == blocks - 1 ? side : (side * (block + 1) / blocks) & ~15
                guard end > start else { continue }
                if splitColumns {
                    gemmSerial(
                        c + start, a, b + (transposeB ? start * ldb : start), m: m, n: end - start, k: k,
                        transposeA: transposeA, transposeB: transposeB, alpha: alpha, beta: beta,
                        lda: lda, ldb: ldb, ldc: ldc)
                } else {
                    gemmSerial(
                        c + start * ldc, a + (transposeA ? start : start * lda), b, m: end - start, n: n, k: k,
                        transposeA: transposeA, transposeB: transposeB, alpha: alpha, beta: beta,
                        lda: lda, ldb: ldb, ldc: ldc)
                }
            }
        }
    }

    /// Blocks of a product split on OpenBLAS (a constant: see `gemm`).
    public static let openBLASBlocks = 2

    /// Products below this many flops run on the calling thread (splitting costs more than it gains).
    public static let parallelThreshold: Double = 2_000_000

    /// The same for one row times a matrix stored `[n, k]`, which reads `n * k` floats for `2 n k` flops: from
    /// about 128 x 256 on, the threads' share of the reading pays for waking them (on the AVX-512 matrix-vector
    /// kernel 200 x 200 and 128 x 256 took 2.2 us on one thread, 1.8-1.9 split across two).
    public static let rowParallelThreshold: Double = 60_000

    /// `gemm` on the calling thread: one matrix-vector product for a single row, the AVX-512 kernel when
    /// `kernelApplies(k:)`, the AVX2 kernel when `avx2KernelApplies`, else one
    /// single-threaded `cblas_sgemm` (OpenBLAS runs with one thread; see `Parallel.setThreadCount`).
    @inlinable
    public static func gemmSerial(
        _ c: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        m: Int, n: Int, k: Int,
        transposeA: Bool = false, transposeB: Bool = false,
        alpha: Float = 1, beta: Float = 0,
        lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil
    ) {
        guard m > 0, n > 0 else { return }
        _ = Parallel.runtimeConfigured
        let ldc = ldc ?? n
        if k == 0 {
            // C = beta * C; BLAS treats this case too, but be explicit.
            for i in 0..<m { let row = c + i * ldc; for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] } }
            return
        }
        let lda = lda ?? (transposeA ? m : k), ldb = ldb ?? (transposeB ? k : n)
        if m == 1 {
            // One row (a single image through a dense layer): `C = alpha * op(B)^T a + beta * C` as one
            // sgemv, which reads B once; sgemm and the kernel pack all of B first (45 against 7 us on 256 x 784).
            if transposeB, !transposeA || lda == 1, usesKernel, kernelIsSupported || vectorKernelIsSupported {
                // B's rows dotted with the row: `sgemv.h`, which streams B from the L3 cache about 1.8 times as fast
                if kernelIsSupported {
                    sgemv_rows_avx512(Int32(n), Int32(k), alpha, b, Int32(ldb), a, beta, c)
                } else {
                    sgemv_rows_avx2(Int32(n), Int32(k), alpha, b, Int32(ldb), a, beta, c)
                }
                return
            }
            if beta == 0 { c.update(repeating: 0, count: n) }  // not OpenBLAS's scaling by 0 of what C held
            cblas_sgemv(
                CblasRowMajor, transposeB ? CblasNoTrans : CblasTrans, Int32(transposeB ? n : k), Int32(transposeB ? k : n),
                alpha, b, Int32(ldb), a, Int32(transposeA ? lda : 1), beta == 0 ? 1 : beta, c, 1)
            return
        }
        if kernelApplies(k: k) {
            let status = sgemm_avx512(
                transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                beta, c, Int32(ldc))
            precondition(status == 0, "BLAS.gemm: the AVX-512 kernel could not allocate its packing buffers")
            return
        }
        if avx2KernelApplies(k: k) {
            let status = sgemm_avx2(
                transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta,
                c, Int32(ldc))
            precondition(status == 0, "BLAS.gemm: the AVX2 kernel could not allocate its packing buffer")
            return
        }
        // beta 0: zero C here and let OpenBLAS accumulate onto it (beta 1). The result is the same
        // bit for bit (0 + x = x), and a plain fill is faster than OpenBLAS's own beta pass
        // (`sgemm_beta`, 8 % of a PGD step; PGD-40 measured 7-11 % faster this way).
        var beta = beta
        if beta == 0 {
            for row in 0..<m { (c + row * ldc).update(repeating: 0, count: n) }
            beta = 1
        }
        cblas_sgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha,
            a, Int32(lda), b, Int32(ldb),
            beta, c, Int32(ldc))
    }

    /// `y = alpha * op(A) * x + beta * y`, row-major `A` of `[rows, columns]`.
    @inlinable
    public static func gemv(
        _ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
        rows: Int, columns: Int, transposeA: Bool = false, alpha: Float = 1, beta: Float = 0
    ) {
        guard rows > 0, columns > 0 else { return }
        cblas_sgemv(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
            Int32(rows), Int32(columns), alpha, a, Int32(columns), x, 1, beta, y, 1)
    }

    /// The OpenBLAS core OpenBLAS picked for this CPU (for reports).
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// The OpenBLAS build configuration string (for reports).
    public static var configuration: String {
        guard let config = openblas_get_config() else { return "unknown" }
        return String(cString: config)
    }
}

extension Tensor {
    /// Matrix product of `[m, k]` and `[k, n]` tensors (optionally transposed).
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        precondition(rank == 2 && other.rank == 2, "matmul needs rank-2 tensors, got \(shape) and \(other.shape)")
        let m = transposeSelf ? shape[1] : shape[0]
        let k = transposeSelf ? shape[0] : shape[1]
        let k2 = transposeOther ? other.shape[1] : other.shape[0]
        let n = transposeOther ? other.shape[0] : other.shape[1]
        precondition(k == k2, "matmul: inner dimensions of shape \(shape) and shape \(other.shape) differ")
        return Tensor(shape: [m, n]) { c in
            withUnsafeBufferPointer { a in
                other.withUnsafeBufferPointer { b in
                    BLAS.gemm(
                        c, a.baseAddress!, b.baseAddress!, m: m, n: n, k: k,
                        transposeA: transposeSelf, transposeB: transposeOther)
                }
            }
        }
    }
}
