import Autodiff
import Foundation
import Tensors
import XCTest

/// Reductions and losses: forward values by hand and gradient checks (tolerance: `FiniteDifference`).
final class ReductionGradientTests: XCTestCase {
    func testSumAndMean() {
        let x = randomTensor([3, 4], seed: 1)
        assertGradientsMatch("sum", inputs: [x]) { $0[0].sum() * 1.7 }
        assertGradientsMatch("mean", inputs: [x]) { $0[0].mean() * 5 }
        XCTAssertEqual(Variable(x).sum().shape, [])
        XCTAssertEqual(Variable(x).mean().value.scalar, x.sum() / 12, accuracy: 1e-6)
    }

    func testSumAlongAxis() {
        let x = randomTensor([2, 3, 4], seed: 2)
        for axis in 0..<3 {
            assertGradientsMatch("sum(alongAxis: \(axis))", inputs: [x]) { weightedSum($0[0].sum(alongAxis: axis)) }
        }
        XCTAssertEqual(Variable(x).sum(alongAxis: 1).shape, [2, 4])
    }

    func testSumPerSample() {
        let x = randomTensor([3, 2, 2, 2], seed: 3)
        assertGradientsMatch("sumPerSample", inputs: [x]) { weightedSum($0[0].sumPerSample()) }
        let y = Variable(x).sumPerSample().value
        XCTAssertEqual(y.shape, [3])
        for i in 0..<3 { XCTAssertEqual(y.storage[i], x.slice(i..<(i + 1)).sum(), accuracy: 1e-5) }
    }

    func testLogSumExp() {
        let x = randomTensor([3, 5], seed: 4, low: -3, high: 3)
        assertGradientsMatch("logSumExp", inputs: [x]) { weightedSum($0[0].logSumExp()) }
        let y = Variable(x).logSumExp().value
        for r in 0..<3 {
            let expected = Foundation.log((0..<5).reduce(0.0) { $0 + Foundation.exp(Double(x.storage[r * 5 + $1])) })
            XCTAssertEqual(Double(y.storage[r]), expected, accuracy: 1e-5)
        }
    }

    func testMaxRows() {
        let x = distinctValues([4, 5], seed: 5)
        assertGradientsMatch("maxRows (distinct values 0.05 apart)", inputs: [x]) { weightedSum($0[0].maxRows()) }
        let y = Variable(x).maxRows().value
        XCTAssertEqual(y.shape, [4])
        for r in 0..<4 { XCTAssertEqual(y.storage[r], x.storage[(r * 5)..<(r * 5 + 5)].max()!) }
    }

    func testGatherRows() {
        let x = randomTensor([4, 3], seed: 6)
        let indices = [2, 0, 0, 1]
        assertGradientsMatch("gatherRows", inputs: [x]) { weightedSum($0[0].gatherRows(indices)) }
        XCTAssertEqual(Variable(x).gatherRows(indices).value.storage, indices.enumerated().map { x.storage[$0.offset * 3 + $0.element] })
    }

    func testSoftmaxCrossEntropy() {
        let logits = randomTensor([4, 3], seed: 7, low: -2, high: 2)
        let labels = [0, 2, 1, 2]
        assertGradientsMatch("softmaxCrossEntropy (mean)", inputs: [logits]) { softmaxCrossEntropy(logits: $0[0], labels: labels) }
        assertGradientsMatch("softmaxCrossEntropyPerSample", inputs: [logits]) {
            weightedSum(softmaxCrossEntropyPerSample(logits: $0[0], labels: labels))
        }
        // By hand: -log(e^3 / (e^1 + e^2 + e^3)), and large logits stay finite.
        let hand = softmaxCrossEntropyPerSample(logits: Variable(Tensor(shape: [2, 3], storage: [1, 2, 3, 1000, 0, -1000])), labels: [2, 1])
            .value
        XCTAssertEqual(
            Double(hand.storage[0]),
            -Foundation.log(Foundation.exp(3.0) / (Foundation.exp(1.0) + Foundation.exp(2.0) + Foundation.exp(3.0))),
            accuracy: 1e-6)
        XCTAssertEqual(hand.storage[1], 1000, accuracy: 1e-3)
        let mean = softmaxCrossEntropy(logits: Variable(logits), labels: labels).value.scalar
        XCTAssertEqual(mean, softmaxCrossEntropyPerSample(logits: Variable(logits), labels: labels).value.mean(), accuracy: 1e-6)
    }

    func testMeanSquaredError() {
        let p = randomTensor([3, 4], seed: 8), t = randomTensor([3, 4], seed: 9)
        assertGradientsMatch("meanSquaredError", inputs: [p, t]) { meanSquaredError($0[0], $0[1]) * 10 }
        let value = meanSquaredError(Variable(Tensor(shape: [2], storage: [1, 2])), Variable(Tensor(shape: [2], storage: [3, -2]))).value
        XCTAssertEqual(value.scalar, (4 + 16) / 2)
    }

    func testNormsPerSample() {
        let x = awayFromZero([3, 2, 2, 2], seed: 10)
        assertGradientsMatch("l2NormPerSample", inputs: [x]) { weightedSum(l2NormPerSample($0[0])) }
        assertGradientsMatch("l1NormPerSample (inputs |x| >= 0.1)", inputs: [x]) { weightedSum(l1NormPerSample($0[0])) }
        let v = Variable(Tensor(shape: [2, 2], storage: [3, -4, 0, 0]))
        XCTAssertEqual(l2NormPerSample(v).value.storage, [5, 0])
        XCTAssertEqual(l1NormPerSample(v).value.storage, [7, 0])
        let tape = Tape()
        let zero = tape.watch(Tensor(shape: [1, 3], repeating: 0))
        XCTAssertEqual(tape.gradients(of: l2NormPerSample(zero).sum())[zero]?.storage, [0, 0, 0], "zero norm: gradient taken as 0")
    }
}
