import _GemmKernels
@testable import Tensors
import XCTest

/// `BLAS.gemm` and `BLAS.gemmSerial` against a naive triple loop (summed in Double) on each path a
/// product can take: the AVX-512 kernel of `_GemmKernels` (when the CPU has AVX-512F), the AVX2 kernels (when
/// it has AVX2 but not AVX-512F) and OpenBLAS.
/// Shapes with every remainder of its 14 x 32 register tile (m, n, k in 1 ... 67), the dense layers
/// of the networks, all four transpose combinations, alpha and beta, leading dimensions wider than
/// the matrices; the split across threads must give the same bits as one thread.
final class GemmKernelTests: XCTestCase {
    /// Each path this CPU runs: `usesKernel` true (the kernel, when supported) and false (OpenBLAS).
    /// On a CPU without AVX-512F both settings take OpenBLAS, so the comparisons still run.
    let paths = [true, false]

    /// A label for the path `usesKernel` selects for a product of depth `k` (and these transposes).
    func pathName(k: Int, transposeA: Bool = false, transposeB: Bool = false) -> String {
        if BLAS.kernelApplies(k: k) { return "AVX-512 kernel" }
        return BLAS.kernelApplies(k: k, transposeA: transposeA, transposeB: transposeB) ? "AVX2 kernel" : "OpenBLAS"
    }

    override func tearDown() {
        BLAS.usesKernel = BLAS.defaultUsesKernel()
        Parallel.setThreadCount(Parallel.availableCores)
    }

    /// One product: `op(A) [m, k]`, `op(B) [k, n]`, stored transposed or not with `extra` unused
    /// columns beyond each matrix's row; `C [m, n]` with leading dimension `n + extra`.
    struct Product: CustomStringConvertible {
        var m, n, k: Int
        var transposeA = false, transposeB = false
        var alpha: Float = 1, beta: Float = 0
        var extra = 0

        var lda: Int { (transposeA ? m : k) + extra }
        var ldb: Int { (transposeB ? k : n) + extra }
        var ldc: Int { n + extra }
        var description: String {
            "\(m)x\(n)x\(k)\(transposeA ? " A^T" : "")\(transposeB ? " B^T" : ""), alpha \(alpha), beta \(beta), "
                + "leading dimensions +\(extra)"
        }

        /// Seeded operands in their stored layouts: A, B and the old C (NaN when beta is 0: it must not be read).
        func operands(seed: UInt64) -> (a: [Float], b: [Float], c: [Float]) {
            var generator = SeededGenerator(seed: seed)
            let a = (0..<(transposeA ? k : m) * lda).map { _ in Float.random(in: -1..<1, using: &generator) }
            let b = (0..<(transposeB ? n : k) * ldb).map { _ in Float.random(in: -1..<1, using: &generator) }
            let c = (0..<m * ldc).map { _ in beta == 0 ? Float.nan : Float.random(in: -1..<1, using: &generator) }
            return (a, b, c)
        }

        /// `C` after the product, each element summed in Double, and the bound of its rounding error:
        /// a tolerance times `|alpha| sum_p |a_ip b_pj| + |beta c_ij|`.
        func naive(_ a: [Float], _ b: [Float], _ c: [Float]) -> (c: [Double], scale: [Double]) {
            var result = c.map(Double.init), scale = [Double](repeating: 0, count: c.count)
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0, magnitude = 0.0
                    for p in 0..<k {
                        let x = Double(transposeA ? a[p * lda + i] : a[i * lda + p])  // op(A)[i, p]
                        let y = Double(transposeB ? b[j * ldb + p] : b[p * ldb + j])  // op(B)[p, j]
                        sum += x * y
                        magnitude += abs(x * y)
                    }
                    let old = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                    result[i * ldc + j] = Double(alpha) * sum + old
                    scale[i * ldc + j] = abs(Double(alpha)) * magnitude + abs(old)
                }
            }
            return (result, scale)
        }

        /// Runs `BLAS.gemm` (or `gemmSerial`) on copies of the operands and returns C.
        func run(_ a: [Float], _ b: [Float], _ c: [Float], serial: Bool = false) -> [Float] {
            var c = c
            c.withUnsafeMutableBufferPointer { cp in
                if serial {
                    BLAS.gemmSerial(
                        cp.baseAddress!, a, b, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
                        alpha: alpha, beta: beta, lda: lda, ldb: ldb, ldc: ldc)
                } else {
                    BLAS.gemm(
                        cp.baseAddress!, a, b, m: m, n: n, k: k, transposeA: transposeA, transposeB: transposeB,
                        alpha: alpha, beta: beta, lda: lda, ldb: ldb, ldc: ldc)
                }
            }
            return c
        }
    }

    /// `run` against `naive` on `product`: every element within `tolerance` of its error bound, the
    /// columns between `n` and `ldc` unchanged.
    func check(_ product: Product, seed: UInt64, serial: Bool = false, file: StaticString = #filePath, line: UInt = #line) {
        let (a, b, c) = product.operands(seed: seed)
        let result = product.run(a, b, c, serial: serial)
        let (expected, scale) = product.naive(a, b, c)
        let tolerance = 1e-5
        var worst = 0.0, worstIndex = 0
        for i in 0..<product.m {
            for j in 0..<product.ldc {
                let index = i * product.ldc + j
                if j >= product.n {
                    XCTAssertEqual(
                        result[index].bitPattern, c[index].bitPattern,
                        "\(product) on \(pathName(k: product.k, transposeA: product.transposeA, transposeB: product.transposeB)): column \(j) beyond n changed",
                        file: file, line: line)
                    continue
                }
                let error = abs(Double(result[index]) - expected[index]) / max(scale[index], .leastNormalMagnitude)
                if !(error <= worst) { worst = error; worstIndex = index }
            }
        }
        XCTAssertLessThanOrEqual(
            worst, tolerance,
            "\(product) on \(pathName(k: product.k, transposeA: product.transposeA, transposeB: product.transposeB)): element \(worstIndex) is \(result[worstIndex]), expected "
                + "\(expected[worstIndex]) (relative error \(worst))", file: file, line: line)
    }

    /// Small shapes with every remainder of the 14 x 32 tile, all transposes, alpha, beta and leading dimensions.
    func testSmallShapesMatchNaiveLoops() {
        var generator = SeededGenerator(seed: 7)
        let alphas: [Float] = [1, 0.5, -2], betas: [Float] = [0, 1, 0.75]
        for usesKernel in paths {
            BLAS.usesKernel = usesKernel
            for trial in 0..<160 {
                var product = Product(
                    m: Int.random(in: 1...67, using: &generator), n: Int.random(in: 1...67, using: &generator),
                    k: Int.random(in: 1...67, using: &generator))
                product.transposeA = trial & 1 == 1
                product.transposeB = trial & 2 == 2
                product.alpha = alphas[trial % 3]
                product.beta = betas[(trial / 3) % 3]
                product.extra = trial % 5 == 0 ? 3 : 0
                check(product, seed: UInt64(trial), serial: trial % 2 == 0)
            }
            // the edges themselves: one row, one column, depth one, exactly one tile, one tile and one more
            for (m, n, k) in [(1, 1, 1), (14, 32, 1), (15, 33, 2), (13, 31, 17), (28, 64, 16), (1, 67, 67), (67, 1, 67)] {
                for t in 0..<4 {
                    check(Product(m: m, n: n, k: k, transposeA: t & 1 == 1, transposeB: t & 2 == 2, beta: 1, extra: 1), seed: 99)
                }
            }
        }
    }

    /// The dense layers' products (detector 784-256-128-64, classifier 1024-200-10 at batch 128 and 1):
    /// forward `X W^T`, input gradient `G W`, weight gradient `G^T X`; one product deeper than the kernel takes.
    func testLayerShapesMatchNaiveLoops() {
        let layers = [(784, 256), (256, 128), (128, 64), (1024, 200), (200, 10)]
        for usesKernel in paths {
            BLAS.usesKernel = usesKernel
            for (index, (inputs, outputs)) in layers.enumerated() {
                let batch = index == 3 ? 1 : 128
                check(Product(m: batch, n: outputs, k: inputs, transposeB: true), seed: 1)  // Y = X W^T
                check(Product(m: batch, n: inputs, k: outputs), seed: 2)  // dX = G W
                check(Product(m: outputs, n: inputs, k: batch, transposeA: true, beta: 1), seed: 3)  // dW += G^T X
            }
            let deep = Product(m: 5, n: 19, k: BLAS.maximumKernelDepth + 37, transposeB: true)
            XCTAssertFalse(BLAS.kernelApplies(k: deep.k), "a product deeper than the kernel's limit must go to OpenBLAS")
            check(deep, seed: 4)
        }
    }

    /// `BLAS.gemm` splits C over rows or columns, never over k. On the kernel 2 threads give the bits
    /// of 1; OpenBLAS's edge kernels round some elements differently at the blocks' borders (measured:
    /// up to 7 % of the elements of these products), so there the two agree within the tolerance.
    func testSplitAcrossThreadsIsBitIdenticalOnTheKernel() {
        let products = [
            Product(m: 128, n: 256, k: 784, transposeB: true), Product(m: 128, n: 784, k: 256),
            Product(m: 784, n: 256, k: 128, transposeA: true), Product(m: 301, n: 150, k: 70, transposeA: true, transposeB: true),
            Product(m: 200, n: 1024, k: 32, transposeA: true, alpha: -2, beta: 1, extra: 3),
            Product(m: 150, n: 301, k: 70, alpha: 0.5, beta: 0.75, extra: 5)
        ]
        for usesKernel in paths {
            BLAS.usesKernel = usesKernel
            for (index, product) in products.enumerated() {
                XCTAssertGreaterThan(
                    2 * Double(product.m * product.n * product.k), BLAS.parallelThreshold, "\(product) must be large enough to split")
                let (a, b, c) = product.operands(seed: UInt64(index))
                Parallel.setThreadCount(1)
                let one = product.run(a, b, c)
                Parallel.setThreadCount(2)
                let two = product.run(a, b, c)
                if BLAS.kernelApplies(k: product.k, transposeA: product.transposeA, transposeB: product.transposeB) {
                    let differing = zip(one, two).filter { $0.bitPattern != $1.bitPattern }.count
                    XCTAssertEqual(differing, 0, "\(product) on a kernel: 2 threads change \(differing) of \(one.count) elements")
                } else {
                    assertClose(
                        Tensor(shape: [one.count], storage: two), Tensor(shape: [one.count], storage: one), tolerance: 1e-5,
                        "\(product) on OpenBLAS, 2 threads against 1")
                }
            }
        }
    }

    /// One row times a matrix stored `[n, k]` (a dense layer on one image, `sgemv.h` where the CPU has AVX-512):
    /// every count of rows around its groups of 4, every depth around its 16-float vectors (the masked tail),
    /// alpha, beta (NaN in C when 0: not read), a strided row of A and leading dimensions wider than the matrix.
    func testOneRowMatchesNaiveLoops() {
        for usesKernel in paths {
            BLAS.usesKernel = usesKernel
            var trial: UInt64 = 0
            for n in [1, 3, 4, 5, 8, 9, 17] {
                for k in [1, 7, 15, 16, 17, 32, 33, 200, 784] {
                    trial += 1
                    let (alpha, beta): (Float, Float) = [(1, 0), (0.5, 1), (-2, 0.75)][Int(trial % 3)]
                    let product = Product(
                        m: 1, n: n, k: k, transposeA: trial % 4 == 0, transposeB: true, alpha: alpha, beta: beta,
                        extra: trial % 2 == 0 ? 3 : 0)
                    check(product, seed: trial, serial: true)
                }
            }
        }
    }

    /// `sgemv.h`'s AVX2 kernel (what one-row products take on CPUs without AVX-512) called directly, bit for bit
    /// against its rule written out: 16 partial sums per row, lane `l` the fused multiply-adds of `p = l, l + 16,
    /// ...` in order from +0, added as halves, quarters, then pairs; then alpha and beta. Every x86-64 CPU with
    /// AVX2 runs it, whatever path `BLAS` picks on this one.
    func testAVX2MatrixVectorKernelFollowsItsRule() {
        guard BLAS.vectorKernelIsSupported else {
            XCTAssertFalse(BLAS.kernelIsSupported, "a CPU with AVX-512F has AVX2 and FMA3")
            return
        }
        var trial: UInt64 = 0
        for n in [1, 3, 4, 5, 9] {
            for k in [1, 7, 8, 9, 15, 16, 17, 33, 200, 784] {
                trial += 1
                let (alpha, beta): (Float, Float) = [(1, 0), (0.5, 1), (-2, 0.75)][Int(trial % 3)]
                let ldb = k + Int(trial % 2) * 3
                var generator = SeededGenerator(seed: 90 + trial)
                let a = (0..<k).map { _ in Float.random(in: -1..<1, using: &generator) }
                let b = (0..<n * ldb).map { _ in Float.random(in: -1..<1, using: &generator) }
                let old = (0..<n).map { _ in beta == 0 ? Float.nan : Float.random(in: -1..<1, using: &generator) }
                var c = old
                sgemv_rows_avx2(Int32(n), Int32(k), alpha, b, Int32(ldb), a, beta, &c)
                for j in 0..<n {
                    var lanes = [Float](repeating: 0, count: 16)
                    for p in 0..<k { lanes[p % 16].addProduct(b[j * ldb + p], a[p]) }
                    let eight = (0..<8).map { lanes[$0] + lanes[$0 + 8] }, four = (0..<4).map { eight[$0] + eight[$0 + 4] }
                    let two = (0..<2).map { four[$0] + four[$0 + 2] }
                    var expected = two[0] + two[1]
                    if alpha != 1 { expected *= alpha }
                    if beta == 1 { expected += old[j] } else if beta != 0 { expected += beta * old[j] }
                    XCTAssertEqual(c[j].bitPattern, expected.bitPattern, "n \(n), k \(k), row \(j): \(c[j]) against \(expected)")
                }
            }
        }
    }

    /// The AVX2 kernels (what products take on CPUs without AVX-512: `sgemm_avx2`, every transpose, and `sgemm_at_avx2`
    /// for `A^T B`) called directly, bit for bit against the AVX-512 kernel's rule written out: one accumulator per
    /// element, fused multiply-adds for p = 0, 1, ... from +0, then alpha and beta. Every remainder of the 6 x 16 tile,
    /// its 16-column strips and the 8 x 8 blocks of a transposed B's packing, depths 1 to the limits, leading
    /// dimensions wider than the matrices (the columns beyond n untouched), NaN in C when beta is 0 (it must not be
    /// read). Every x86-64 CPU with AVX2 runs them, whatever path `BLAS` picks on this one.
    func testAVX2KernelsFollowTheirRule() {
        guard BLAS.transposedKernelIsSupported else {
            XCTAssertFalse(BLAS.kernelIsSupported, "a CPU with AVX-512F has AVX2 and FMA3")
            return
        }
        var shapes = [
            (1, 1, 1), (6, 16, 32), (7, 17, 3), (5, 15, 128), (13, 33, 64), (256, 784, 32), (10, 200, 32), (32, 256, 784),
            (9, 23, BLAS.maximumKernelDepth)
        ]
        var generator = SeededGenerator(seed: 61)
        for _ in 0..<40 {
            shapes.append(
                (
                    Int.random(in: 1...40, using: &generator), Int.random(in: 1...70, using: &generator),
                    Int.random(in: 1...300, using: &generator)
                ))
        }
        for (trial, (m, n, k)) in shapes.enumerated() {
            let (alpha, beta): (Float, Float) = [(1, 0), (0.5, 1), (-2, 0.75), (1, 1)][trial % 4]
            let (transposeA, transposeB) = (trial % 2 == 1, trial / 2 % 2 == 1)
            let extra = trial % 3 == 0 ? 5 : 0
            let (lda, ldb, ldc) = ((transposeA ? m : k) + extra, (transposeB ? k : n) + 2 * extra, n + extra)
            let a = (0..<(transposeA ? k : m) * lda).map { _ in Float.random(in: -1..<1, using: &generator) }
            let b = (0..<(transposeB ? n : k) * ldb).map { _ in Float.random(in: -1..<1, using: &generator) }
            let old = (0..<m * ldc).map { _ in beta == 0 ? Float.nan : Float.random(in: -1..<1, using: &generator) }
            var results: [(String, [Float])] = []
            var c = old
            XCTAssertEqual(
                sgemm_avx2(
                    transposeA ? 1 : 0, transposeB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta,
                    &c, Int32(ldc)), 0)
            results.append(("sgemm_avx2", c))
            if transposeA && !transposeB && k <= BLAS.maximumTransposedKernelDepth {
                c = old
                XCTAssertEqual(
                    sgemm_at_avx2(Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, &c, Int32(ldc)), 0)
                results.append(("sgemm_at_avx2", c))
            }
            for (kernel, c) in results {
                var mismatches = 0
                for i in 0..<m {
                    for j in 0..<ldc {
                        let index = i * ldc + j
                        guard j < n else {
                            if c[index].bitPattern != old[index].bitPattern { mismatches += 1 }
                            continue
                        }
                        var sum: Float = 0
                        for p in 0..<k {
                            sum.addProduct(transposeA ? a[p * lda + i] : a[i * lda + p], transposeB ? b[j * ldb + p] : b[p * ldb + j])
                        }
                        var expected = alpha == 1 ? sum : alpha * sum
                        if beta == 1 { expected += old[index] } else if beta != 0 { expected = expected.addingProduct(beta, old[index]) }
                        if c[index].bitPattern != expected.bitPattern { mismatches += 1 }
                    }
                }
                XCTAssertEqual(
                    mismatches, 0,
                    "\(kernel): \(m)x\(n)x\(k) A^T \(transposeA) B^T \(transposeB), alpha \(alpha), beta \(beta), +\(extra): "
                        + "\(mismatches) elements off the rule")
            }
        }
    }

    /// One row times a matrix stored `[n, k]` (a dense layer on one image) splits its rows of B across the
    /// threads: every element is the same dot product, so 2 and 3 threads give the bits of 1.
    func testOneRowSplitAcrossThreadsIsBitIdentical() {
        let products = [
            Product(m: 1, n: 200, k: 1024, transposeB: true), Product(m: 1, n: 256, k: 784, transposeB: true),
            Product(m: 1, n: 784, k: 256, transposeB: true), Product(m: 1, n: 301, k: 700, transposeB: true, alpha: 0.5, beta: 0.75),
            Product(m: 1, n: 250, k: 900, transposeA: true, transposeB: true, extra: 3)
        ]
        for usesKernel in paths {
            BLAS.usesKernel = usesKernel
            for (index, product) in products.enumerated() {
                XCTAssertGreaterThan(
                    2 * Double(product.n * product.k), BLAS.rowParallelThreshold, "\(product) must be large enough to split")
                let (a, b, c) = product.operands(seed: UInt64(40 + index))
                Parallel.setThreadCount(1)
                let one = product.run(a, b, c)
                for threads in [2, 3] {
                    Parallel.setThreadCount(threads)
                    let split = product.run(a, b, c)
                    XCTAssertEqual(
                        split.map(\.bitPattern), one.map(\.bitPattern), "\(product) (kernel \(usesKernel)), \(threads) threads against 1")
                }
            }
        }
    }

    /// Which path a product takes: the AVX-512 kernel exactly when the CPU supports it, it is on and `k` fits;
    /// on a CPU without it the AVX2 kernels, every transpose, when `k` fits; `DAFAR_GEMM=openblas` turns both off.
    func testPathChoice() {
        BLAS.usesKernel = true
        XCTAssertEqual(BLAS.kernelApplies(k: 1), BLAS.kernelIsSupported)
        XCTAssertEqual(BLAS.kernelApplies(k: BLAS.maximumKernelDepth), BLAS.kernelIsSupported)
        XCTAssertFalse(BLAS.kernelApplies(k: BLAS.maximumKernelDepth + 1))
        let onKernels = BLAS.kernelIsSupported || BLAS.transposedKernelIsSupported
        for (transposeA, transposeB) in [(false, false), (false, true), (true, false), (true, true)] {
            XCTAssertEqual(BLAS.kernelApplies(k: 32, transposeA: transposeA, transposeB: transposeB), onKernels)
            XCTAssertEqual(
                BLAS.kernelApplies(k: BLAS.maximumKernelDepth, transposeA: transposeA, transposeB: transposeB), onKernels)
            XCTAssertFalse(BLAS.kernelApplies(k: BLAS.maximumKernelDepth + 1, transposeA: transposeA, transposeB: transposeB))
        }
        BLAS.usesKernel = false
        XCTAssertFalse(BLAS.kernelApplies(k: 1))
        XCTAssertFalse(BLAS.kernelApplies(k: 32, transposeA: true, transposeB: false))
        XCTAssertFalse(BLAS.defaultUsesKernel(environment: ["DAFAR_GEMM": "openblas"]))
        XCTAssertTrue(BLAS.defaultUsesKernel(environment: [:]))
    }
}
