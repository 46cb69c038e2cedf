import Foundation
import Tensors
import XCTest

/// Sums, row-wise softmax / log-softmax / log-sum-exp, argmax.
final class ReductionTests: XCTestCase {
    func testSums() {
        let t = Tensor(shape: [2, 3, 2], storage: (1...12).map(Float.init))
        XCTAssertEqual(t.sum(), 78)
        XCTAssertEqual(t.mean(), 6.5)
        XCTAssertEqual(t.sum(alongAxis: 0).storage, [8, 10, 12, 14, 16, 18])
        XCTAssertEqual(t.sum(alongAxis: 1).shape, [2, 2])
        XCTAssertEqual(t.sum(alongAxis: 1).storage, [9, 12, 27, 30])
        XCTAssertEqual(t.sum(alongAxis: 2).storage, [3, 7, 11, 15, 19, 23])
        // Long sums stay accurate (blocked accumulation): 100000 x 0.1.
        XCTAssertEqual(Tensor(shape: [100_000], repeating: 0.1).sum(), 10_000, accuracy: 0.01)
    }

    func testSoftmaxRowsSumToOne() {
        let logits = randomTensor([5, 7], seed: 1, low: -5, high: 5)
        let p = logits.softmaxRows()
        for r in 0..<5 {
            let row = p.storage[(r * 7)..<(r * 7 + 7)]
            XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-6, "row \(r) sums to 1")
            XCTAssertTrue(row.allSatisfy { $0 > 0 && $0 < 1 })
            var z: Double = 0
            for j in 0..<7 { z += Foundation.exp(Double(logits.storage[r * 7 + j])) }
            for j in 0..<7 {
                XCTAssertEqual(Double(p.storage[r * 7 + j]), Foundation.exp(Double(logits.storage[r * 7 + j])) / z, accuracy: 1e-6)
            }
        }
    }

    func testSoftmaxIsStableForLargeLogits() {
        let logits = Tensor(shape: [2, 3], storage: [1000, 1001, 999, -1000, -1001, -999])
        let p = logits.softmaxRows(), logp = logits.logSoftmaxRows(), lse = logits.logSumExpRows()
        XCTAssertTrue(p.isFinite && logp.isFinite && lse.isFinite, "no overflow for logits of 1000")
        let reference = Tensor(shape: [1, 3], storage: [1, 2, 0]).softmaxRows()
        assertClose(p.slice(0..<1), reference, tolerance: 1e-6, "softmax is shift-invariant (+999)")
        assertClose(
            logp.slice(0..<1), Tensor(shape: [1, 3], storage: [1, 2, 0]).logSoftmaxRows(), tolerance: 1e-6,
            "log-softmax keeps full precision for logits near 1000")
        let z = Foundation.log(Foundation.exp(1.0) + Foundation.exp(2.0) + 1)
        XCTAssertEqual(Double(lse.storage[0]), 999 + z, accuracy: 1e-3)
        XCTAssertEqual(Double(lse.storage[1]), -999 + Foundation.log(Foundation.exp(-1.0) + Foundation.exp(-2.0) + 1), accuracy: 1e-3)
        XCTAssertEqual(Double(logp.storage[1]), 2 - z, accuracy: 1e-4)
        XCTAssertEqual(lse.shape, [2])
    }

    func testArgmaxRows() {
        let t = Tensor(shape: [3, 4], storage: [0, 5, 1, 5, -3, -2, -9, -1, 7, 0, 0, 0])
        XCTAssertEqual(t.argmaxRows(), [1, 3, 0], "the first maximum wins ties")
    }

    func testElementwiseOperators() {
        let a = Tensor(shape: [3], storage: [1, -2, 3]), b = Tensor(shape: [3], storage: [4, 5, -6])
        XCTAssertEqual((a + b).storage, [5, 3, -3])
        XCTAssertEqual((a - b).storage, [-3, -7, 9])
        XCTAssertEqual((a * b).storage, [4, -10, -18])
        XCTAssertEqual((a * 2).storage, [2, -4, 6])
        XCTAssertEqual((2 * a).storage, [2, -4, 6])
        XCTAssertEqual((a + 1).storage, [2, -1, 4])
        XCTAssertEqual(a.clamped(0, 2).storage, [1, 0, 2])
        var c = a
        c.add(b, scaledBy: 0.5)
        XCTAssertEqual(c.storage, [3, 0.5, 0])
        XCTAssertFalse(Tensor(shape: [2], storage: [1, .nan]).isFinite)
        // Large tensors take the parallel path.
        let big = randomTensor([50_000], seed: 3)
        let doubled = big.map { 2 * $0 }
        XCTAssertEqual(doubled.storage, big.storage.map { 2 * $0 })
    }
}
