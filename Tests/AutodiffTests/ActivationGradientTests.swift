import Autodiff
import Foundation
import Tensors
import XCTest

/// Element-wise nonlinearities: forward values and gradient checks (tolerance: `FiniteDifference`).
final class ActivationGradientTests: XCTestCase {
    /// `function` applied to `input` must equal `reference` element by element.
    func assertForward(
        _ name: String, _ input: Tensor, _ function: (Variable) -> Variable, _ reference: (Double) -> Double,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let output = function(Variable(input)).value
        XCTAssertEqual(output.shape, input.shape, "\(name) keeps the shape", file: file, line: line)
        for i in 0..<input.count {
            let expected = reference(Double(input.storage[i]))
            XCTAssertEqual(
                Double(output.storage[i]), expected, accuracy: 1e-6 * max(1, abs(expected)),
                "\(name)(\(input.storage[i]))", file: file, line: line)
        }
    }

    func testReLU() {
        let x = awayFromZero([3, 5], seed: 1)
        assertForward("relu", x, { $0.relu() }) { max(0, $0) }
        assertGradientsMatch("relu (inputs |x| >= 0.1)", inputs: [x]) { weightedSum($0[0].relu()) }
    }

    func testAbs() {
        let x = awayFromZero([3, 5], seed: 2)
        assertForward("abs", x, { $0.abs() }) { Swift.abs($0) }
        assertGradientsMatch("abs (inputs |x| >= 0.1)", inputs: [x]) { weightedSum($0[0].abs()) }
    }

    func testSigmoid() {
        let x = randomTensor([3, 5], seed: 3, low: -4, high: 4)
        assertForward("sigmoid", x, { $0.sigmoid() }) { 1 / (1 + Foundation.exp(-$0)) }
        assertForward("sigmoid (large)", Tensor(shape: [4], storage: [-100, -30, 30, 100]), { $0.sigmoid() }) {
            1 / (1 + Foundation.exp(-$0))
        }
        assertGradientsMatch("sigmoid", inputs: [x]) { weightedSum($0[0].sigmoid()) }
    }

    func testTanh() {
        let x = randomTensor([3, 5], seed: 4, low: -2, high: 2)
        assertForward("tanh", x, { $0.tanh() }) { Foundation.tanh($0) }
        assertGradientsMatch("tanh", inputs: [x]) { weightedSum($0[0].tanh()) }
    }

    func testSquare() {
        let x = randomTensor([3, 5], seed: 5, low: -2, high: 2)
        assertForward("square", x, { $0.square() }) { $0 * $0 }
        assertGradientsMatch("square", inputs: [x]) { weightedSum($0[0].square()) }
    }

    func testSqrt() {
        let x = randomTensor([3, 5], seed: 6, low: 0.5, high: 3)
        assertForward("sqrt", x, { $0.sqrt() }) { $0.squareRoot() }
        assertGradientsMatch("sqrt (inputs >= 0.5)", inputs: [x]) { weightedSum($0[0].sqrt()) }
    }

    func testExp() {
        let x = randomTensor([3, 5], seed: 7, low: -2, high: 2)
        assertForward("exp", x, { $0.exp() }) { Foundation.exp($0) }
        assertGradientsMatch("exp", inputs: [x]) { weightedSum($0[0].exp()) }
    }

    func testLog() {
        let x = randomTensor([3, 5], seed: 8, low: 0.5, high: 3)
        assertForward("log", x, { $0.log() }) { Foundation.log($0) }
        assertGradientsMatch("log (inputs >= 0.5)", inputs: [x]) { weightedSum($0[0].log()) }
    }

    func testClamped() {
        // Values at least 0.05 away from the bounds -0.5 and 0.5, on both sides of them.
        let x = Tensor(shape: [2, 5], storage: [-0.9, -0.55, -0.45, -0.1, 0.2, 0.45, 0.55, 0.8, 0.0, -0.3])
        assertForward("clamped", x, { $0.clamped(-0.5, 0.5) }) { min(max($0, -0.5), 0.5) }
        assertGradientsMatch("clamped(-0.5, 0.5) (inputs >= 0.05 from the bounds)", inputs: [x]) { weightedSum($0[0].clamped(-0.5, 0.5)) }
        let tape = Tape()
        let v = tape.watch(x)
        let g = tape.gradients(of: v.clamped(-0.5, 0.5).sum())[v]!
        XCTAssertEqual(g.storage, [0, 0, 1, 1, 1, 1, 0, 0, 1, 1], "the gradient passes only inside the bounds")
    }

    /// The conventions at the kinks are documented: relu'(0) = abs'(0) = 0, sqrt'(0) = 0.
    func testDerivativesAtZero() {
        let tape = Tape()
        let x = tape.watch(Tensor(shape: [1], storage: [0]))
        XCTAssertEqual(tape.gradients(of: x.relu().sum())[x]?.storage, [0])
        XCTAssertEqual(tape.gradients(of: x.abs().sum())[x]?.storage, [0])
        XCTAssertEqual(tape.gradients(of: x.sqrt().sum())[x]?.storage, [0])
    }
}
