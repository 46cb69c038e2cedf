import Autodiff
import Tensors
import XCTest

/// Gradient checks of the broadcasting arithmetic (tolerance: `FiniteDifference`).
final class ArithmeticGradientTests: XCTestCase {
    /// Operand shape pairs: equal, a row bias, a channel bias, the bias first, a scalar, both broadcast.
    static let shapePairs: [([Int], [Int])] = [
        ([3, 4], [3, 4]),
        ([4, 3], [3]),
        ([2, 3, 2, 2], [1, 3, 1, 1]),
        ([3], [4, 3]),
        ([3, 4], []),
        ([], [2, 3]),
        ([3, 1], [1, 4])
    ]

    func testAddition() {
        for (index, (sa, sb)) in Self.shapePairs.enumerated() {
            let a = randomTensor(sa, seed: UInt64(index)), b = randomTensor(sb, seed: UInt64(index + 50))
            assertGradientsMatch("\(sa) + \(sb)", inputs: [a, b]) { weightedSum($0[0] + $0[1]) }
        }
    }

    func testSubtraction() {
        for (index, (sa, sb)) in Self.shapePairs.enumerated() {
            let a = randomTensor(sa, seed: UInt64(index)), b = randomTensor(sb, seed: UInt64(index + 50))
            assertGradientsMatch("\(sa) - \(sb)", inputs: [a, b]) { weightedSum($0[0] - $0[1]) }
        }
    }

    func testMultiplication() {
        for (index, (sa, sb)) in Self.shapePairs.enumerated() {
            let a = randomTensor(sa, seed: UInt64(index)), b = randomTensor(sb, seed: UInt64(index + 50))
            assertGradientsMatch("\(sa) * \(sb)", inputs: [a, b]) { weightedSum($0[0] * $0[1]) }
        }
    }

    func testDivision() {
        for (index, (sa, sb)) in Self.shapePairs.enumerated() {
            let a = randomTensor(sa, seed: UInt64(index)), b = randomTensor(sb, seed: UInt64(index + 50), low: 0.5, high: 2)
            assertGradientsMatch("\(sa) / \(sb)", inputs: [a, b]) { weightedSum($0[0] / $0[1]) }
        }
    }

    func testScalarOperations() {
        let x = randomTensor([2, 3], seed: 5)
        assertGradientsMatch("x + 2", inputs: [x]) { weightedSum($0[0] + 2) }
        assertGradientsMatch("x - 3", inputs: [x]) { weightedSum($0[0] - 3) }
        assertGradientsMatch("x * 1.5", inputs: [x]) { weightedSum($0[0] * 1.5) }
        assertGradientsMatch("1.5 * x", inputs: [x]) { weightedSum(1.5 * $0[0]) }
        assertGradientsMatch("x / 4", inputs: [x]) { weightedSum($0[0] / 4) }
        assertGradientsMatch("-x", inputs: [x]) { weightedSum(-$0[0]) }
    }

    func testForwardValues() {
        let a = Variable(Tensor(shape: [2, 2], storage: [1, 2, 3, 4])), b = Variable(Tensor(shape: [2], storage: [10, 20]))
        XCTAssertEqual((a + b).value.storage, [11, 22, 13, 24])
        XCTAssertEqual((a - b).value.storage, [-9, -18, -7, -16])
        XCTAssertEqual((a * b).value.storage, [10, 40, 30, 80])
        XCTAssertEqual((b / a).value.storage, [10, 10, 10 / 3, 5])
        XCTAssertEqual((a + 1).value.storage, [2, 3, 4, 5])
        XCTAssertEqual((a - 1).value.storage, [0, 1, 2, 3])
        XCTAssertEqual((a / 2).value.storage, [0.5, 1, 1.5, 2])
        XCTAssertEqual((-a).value.storage, [-1, -2, -3, -4])
    }

    /// Known gradients by hand: d(a * b)/da = b summed over the broadcast axis.
    func testBroadcastGradientByHand() {
        let tape = Tape()
        let a = tape.watch(Tensor(shape: [2, 2], storage: [1, 2, 3, 4]))
        let b = tape.watch(Tensor(shape: [2], storage: [10, 20]))
        let grads = tape.gradients(of: (a * b).sum())
        XCTAssertEqual(grads[a]?.storage, [10, 20, 10, 20])
        XCTAssertEqual(grads[b]?.storage, [4, 6])
        XCTAssertEqual(grads[b]?.shape, [2])
    }
}
