import Tensors
import XCTest

/// Tensor basics and the BLAS wrappers.
final class TensorTests: XCTestCase {
    func testReshapeKeepsElements() {
        let t = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t.reshaped([3, 2]).storage, t.storage)
        XCTAssertEqual(t.reshaped([3, 2]).shape, [3, 2])
        XCTAssertEqual(t.itemCount, 3)
        XCTAssertEqual(t.batchSize, 2)
        XCTAssertEqual(Tensor(5).shape, [])
        XCTAssertEqual(Tensor(5).scalar, 5)
        XCTAssertEqual(Tensor.zeros([0, 4]).itemCount, 4)
    }

    func testSliceGatherConcatenate() {
        let t = Tensor(shape: [4, 2], storage: (0..<8).map(Float.init))
        XCTAssertEqual(t.slice(1..<3), Tensor(shape: [2, 2], storage: [2, 3, 4, 5]))
        XCTAssertEqual(t.gather([3, 0, 3]), Tensor(shape: [3, 2], storage: [6, 7, 0, 1, 6, 7]))
        XCTAssertEqual(Tensor.concatenate([t.slice(0..<1), t.slice(1..<4)]), t)
    }

    func testMatmulMatchesHandComputation() {
        let a = Tensor(shape: [2, 2], storage: [1, 2, 3, 4])
        let b = Tensor(shape: [2, 2], storage: [5, 6, 7, 8])
        XCTAssertEqual(a.matmul(b).storage, [19, 22, 43, 50])
        XCTAssertEqual(a.matmul(b, transposeOther: true).storage, [17, 23, 39, 53])
        XCTAssertEqual(a.matmul(b, transposeSelf: true).storage, [26, 30, 38, 44])
    }

    func testMatmulMatchesLoopsOnRectangularShapes() {
        let a = randomTensor([5, 3], seed: 1), b = randomTensor([3, 4], seed: 2)
        var expected = [Float](repeating: 0, count: 20)
        for i in 0..<5 { for j in 0..<4 { for k in 0..<3 { expected[i * 4 + j] += a.storage[i * 3 + k] * b.storage[k * 4 + j] } } }
        assertClose(a.matmul(b), Tensor(shape: [5, 4], storage: expected), tolerance: 1e-6, "A B")
        // The transposed variants read the same matrices stored transposed.
        let at = transpose(a), bt = transpose(b)
        assertClose(at.matmul(b, transposeSelf: true), a.matmul(b), tolerance: 1e-6, "(A^T)^T B")
        assertClose(a.matmul(bt, transposeOther: true), a.matmul(b), tolerance: 1e-6, "A (B^T)^T")
        assertClose(at.matmul(bt, transposeSelf: true, transposeOther: true), a.matmul(b), tolerance: 1e-6, "(A^T)^T (B^T)^T")
    }

    func testGemmAccumulatesWithBeta() {
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [1, 0, 0, 1]
        var c: [Float] = [10, 20, 30, 40]
        c.withUnsafeMutableBufferPointer { BLAS.gemm($0.baseAddress!, a, b, m: 2, n: 2, k: 2, alpha: 2, beta: 1) }
        XCTAssertEqual(c, [12, 24, 36, 48])
        var y: [Float] = [1, 1]
        y.withUnsafeMutableBufferPointer { BLAS.gemv($0.baseAddress!, a, [1, 1], rows: 2, columns: 2, transposeA: true, beta: 1) }
        XCTAssertEqual(y, [5, 7], "A^T [1, 1] + y")
        var empty: [Float] = [3, 3]
        empty.withUnsafeMutableBufferPointer { BLAS.gemm($0.baseAddress!, a, b, m: 1, n: 2, k: 0) }
        XCTAssertEqual(empty, [0, 0], "k = 0 gives beta * C = 0")
    }

    func transpose(_ t: Tensor) -> Tensor {
        let (r, c) = (t.shape[0], t.shape[1])
        return Tensor(shape: [c, r], storage: (0..<(r * c)).map { t.storage[($0 % r) * c + $0 / r] })
    }
}
