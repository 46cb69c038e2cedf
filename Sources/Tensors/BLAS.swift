import CBLAS

/// Matrix products through OpenBLAS's `cblas_sgemm` / `cblas_sgemv` (row-major).
public enum BLAS {
    /// `C = alpha * op(A) * op(B) + beta * C`, row-major.
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
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // C = beta * C; BLAS treats this case too, but be explicit.
            for i in 0..<m { let row = c + i * (ldc ?? n); for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] } }
            return
        }
        cblas_sgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha,
            a, Int32(lda ?? (transposeA ? m : k)),
            b, Int32(ldb ?? (transposeB ? k : n)),
            beta, c, Int32(ldc ?? n))
    }

    /// `y = alpha * op(A) * x + beta * y`, row-major `A` of `[rows, columns]`.
    @inlinable
    public static func gemv(
        _ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
        rows: Int, columns: Int, transposeA: Bool = false, alpha: Float = 1, beta: Float = 0
    ) {
        guard rows > 0, columns > 0 else { return }
        cblas_sgemv(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
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
                    BLAS.gemm(c, a.baseAddress!, b.baseAddress!, m: m, n: n, k: k,
                              transposeA: transposeSelf, transposeB: transposeOther)
                }
            }
        }
    }
}
