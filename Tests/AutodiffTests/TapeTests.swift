@testable import Autodiff
import Foundation
import Tensors
import XCTest

/// The tape itself: reuse, seeds, accumulation, constants, recording rules.
final class TapeTests: XCTestCase {
    /// One tape, several gradient calls (different outputs, repeated calls) give independent answers.
    func testTapeReusedForSeveralGradients() {
        let tape = Tape()
        let x = tape.watch(Tensor(shape: [3], storage: [1, -2, 3]))
        let squares = x.square().sum()
        let tripled = (x * 3).sum()
        let first = tape.gradients(of: squares)
        XCTAssertEqual(first[x]?.storage, [2, -4, 6])
        XCTAssertEqual(tape.gradients(of: tripled)[x]?.storage, [3, 3, 3])
        XCTAssertEqual(tape.gradients(of: squares)[x]?.storage, [2, -4, 6], "a second call does not see the first's gradients")
        let nodes = tape.nodeCount
        _ = tape.gradients(of: tripled)
        XCTAssertEqual(tape.nodeCount, nodes, "computing gradients records nothing")
    }

    /// A one-hot seed gives one row of the Jacobian: for y = x W, row j is column j of W.
    func testSeededGradientsAreJacobianRows() {
        let w = randomTensor([4, 3], seed: 1)
        let tape = Tape()
        let x = tape.watch(randomTensor([1, 4], seed: 2))
        let y = x.matmul(Variable(w)).tanh()
        for j in 0..<3 {
            var seed = Tensor.zeros([1, 3])
            seed.storage[j] = 1
            let row = tape.gradients(of: y, seed: seed)[x]!
            // Finite differences of output j alone.
            for i in 0..<4 {
                func yj(_ delta: Float) -> Double {
                    var shifted = x.value
                    shifted.storage[i] += delta
                    return Double(shifted.matmul(w).map { Foundation.tanh($0) }.storage[j])
                }
                let numeric = Float((yj(1e-2) - yj(-1e-2)) / 2e-2)
                XCTAssertEqual(row.storage[i], numeric, accuracy: 1e-3, "Jacobian row \(j), column \(i) (central differences, step 1e-2)")
            }
        }
        // A non-unit seed scales linearly.
        let twice = tape.gradients(of: y, seed: Tensor(shape: [1, 3], repeating: 2))[x]!
        let once = tape.gradients(of: y)[x]!
        for i in 0..<4 { XCTAssertEqual(twice.storage[i], 2 * once.storage[i], accuracy: 1e-6) }
    }

    /// A parameter watched twice shares one node: its uses accumulate.
    func testParameterUsedTwiceAccumulates() {
        final class Box {}
        let parameter = Box(), value = randomTensor([2, 3], seed: 3)
        let a = randomTensor([2, 3], seed: 4), b = randomTensor([2, 3], seed: 5)
        let tape = Tape()
        let first = tape.watch(parameter, value: value), second = tape.watch(parameter, value: value)
        XCTAssertEqual(first.index, second.index)
        let loss = (first * Variable(a)).sum() + (second * Variable(b)).sum()
        let grads = tape.gradients(of: loss)
        XCTAssertEqual(grads[object: parameter]?.storage, (a + b).storage, "gradient = a + b from both uses")
        XCTAssertNil(grads[object: Box()], "an unwatched object has no gradient")
    }

    func testVariableUsedTwiceInOneOp() {
        let tape = Tape()
        let x = tape.watch(Tensor(shape: [2], storage: [3, -1]))
        XCTAssertEqual(tape.gradients(of: (x * x).sum())[x]?.storage, [6, -2])
        XCTAssertEqual(tape.gradients(of: (x + x + x).sum())[x]?.storage, [3, 3])
        assertGradientsMatch("x * x + x / (x * x + 1)", inputs: [randomTensor([5], seed: 6)]) { v in
            weightedSum(v[0] * v[0] + v[0] / (v[0] * v[0] + 1))
        }
    }

    func testConstantsAndDetachedValuesGetNoGradient() {
        let tape = Tape()
        let x = tape.watch(Tensor(shape: [2], storage: [1, 2]))
        let c = tape.constant(Tensor(shape: [2], storage: [5, 7]))
        let loss = (x * c).sum() + (x.detached() * 100).sum()
        let grads = tape.gradients(of: loss)
        XCTAssertEqual(grads[x]?.storage, [5, 7], "the detached branch contributes nothing")
        XCTAssertNil(grads[c])
        XCTAssertFalse(c.requiresGradient)
        let constantOnly = (c * 2).sum()
        XCTAssertFalse(constantOnly.requiresGradient, "ops on constants only are not recorded")
        XCTAssertTrue(constantOnly.tape === tape)
    }

    /// A constant first operand still records the op on the second operand's tape.
    func testConstantFirstOperand() {
        let tape = Tape()
        let x = tape.watch(Tensor(shape: [2], storage: [1, 2]))
        let y = (Variable(Tensor(shape: [2], storage: [10, 10])) - x) * Variable(Tensor(shape: [2], storage: [3, 4]))
        XCTAssertTrue(y.tape === tape)
        XCTAssertEqual(tape.gradients(of: y.sum())[x]?.storage, [-3, -4])
    }

    func testOpsWithoutTapeRecordNothing() {
        let x = Variable(randomTensor([2, 2, 4, 4], seed: 7)), w = Variable(randomTensor([3, 2, 3, 3], seed: 8))
        let y = conv2d(x, weight: w, bias: nil).relu().maxPool2d().flattened().sum()
        XCTAssertNil(y.tape)
        XCTAssertFalse(y.requiresGradient)
    }

    /// The output not depending on a watched value gives nil for it; unused nodes cost nothing.
    func testUnrelatedInputHasNoGradient() {
        let tape = Tape()
        let x = tape.watch(Tensor(shape: [2], repeating: 1)), unused = tape.watch(Tensor(shape: [2], repeating: 1))
        _ = unused.exp()
        let grads = tape.gradients(of: x.sum())
        XCTAssertNil(grads[unused])
        XCTAssertNotNil(grads[x])
    }

    /// Backward walks nodes iteratively: a 20 000-op chain does not overflow the stack.
    func testLongChain() {
        let tape = Tape()
        let x = tape.watch(Tensor(shape: [1], storage: [0]))
        var y = x
        for _ in 0..<20_000 { y = y + 1 }
        XCTAssertEqual(y.value.storage, [20_000])
        XCTAssertEqual(tape.gradients(of: y.sum())[x]?.storage, [1])
    }

    /// `GradientCheck.maximumError` agrees with a correct op and catches a wrong backward.
    func testGradientCheckDetectsWrongBackward() {
        let x = randomTensor([3, 4], seed: 9)
        let good = GradientCheck.maximumError(inputs: [x]) { weightedSum($0[0].tanh()) }
        XCTAssertLessThan(good, FiniteDifference.tolerance, "tanh passes the check (tolerance 1e-2)")
        // An op whose value is 2x but whose backward claims the derivative is 1.
        let wrong = GradientCheck.maximumError(inputs: [x]) { v in
            weightedSum(Variable.result(v[0].value * 2, [v[0]], op: "wrong double") { g in [g] })
        }
        XCTAssertGreaterThan(wrong, 0.1, "a backward that is off by a factor 2 must fail the check")
    }
}

/// Tape nodes carry the name of the op that made them.
final class TapeNodeNameTests: XCTestCase {
    func testNodesNameTheirOps() {
        let tape = Tape()
        let x = tape.watch(Tensor(shape: [1, 1, 4, 4], repeating: 0.5))
        let w = tape.watch(Tensor(shape: [2, 1, 3, 3], repeating: 0.1))
        let y = (conv2d(x, weight: w, bias: nil).relu() * 2).sum()
        XCTAssertEqual(tape.recordedOps, [nil, nil, "conv2d", "elementwise", "* scalar", "sum"])
        tape.checksFiniteGradients = true
        let grads = tape.gradients(of: y)
        XCTAssertEqual(grads[x]?.shape, [1, 1, 4, 4], "checked gradients still flow")
    }
}
