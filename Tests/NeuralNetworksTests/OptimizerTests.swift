import Autodiff
import Foundation
@testable import NeuralNetworks
import Tensors
import XCTest

/// SGD and Adam steps against values computed by hand (in Double), and their validation.
final class OptimizerTests: XCTestCase {
    let start: [Double] = [1, -2]
    let firstGradient: [Double] = [0.5, 0.25]
    let secondGradient: [Double] = [-1, 2]

    /// Gradients in which `parameter` has exactly `gradient`: d/dp sum(p * g) = g.
    func gradients(_ gradient: [Double], for parameter: Parameter) -> Gradients {
        let tape = Tape()
        let p = parameter.variable(on: tape)
        return tape.gradients(of: (p * Variable(Tensor(shape: [gradient.count], storage: gradient.map { Float($0) }))).sum())
    }

    /// Runs two steps from `start` with the two gradients and returns the parameter after each.
    func twoSteps(_ optimizer: Optimizer) -> [[Float]] {
        let parameter = Parameter(Tensor(shape: [2], storage: start.map { Float($0) }))
        optimizer.step([("w", parameter)], gradients: gradients(firstGradient, for: parameter))
        let first = parameter.value.storage
        optimizer.step([("w", parameter)], gradients: gradients(secondGradient, for: parameter))
        return [first, parameter.value.storage]
    }

    func assertSteps(_ actual: [[Float]], _ expected: [[Double]], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        for step in 0..<2 {
            for i in 0..<2 {
                XCTAssertEqual(
                    Double(actual[step][i]), expected[step][i], accuracy: 1e-6,
                    "\(what): step \(step + 1), element \(i) (tolerance 1e-6)", file: file, line: line)
            }
        }
    }

    func testPlainSGD() throws {
        let lr = 0.1
        let p1 = zip(start, firstGradient).map { $0 - lr * $1 }
        let p2 = zip(p1, secondGradient).map { $0 - lr * $1 }
        XCTAssertEqual(p1, [0.95, -2.025])
        assertSteps(twoSteps(try SGD(learningRate: 0.1)), [p1, p2], "plain SGD")
    }

    func testMomentumSGD() throws {
        let (lr, mu) = (0.1, 0.9)
        let b1 = firstGradient  // b = mu * 0 + g
        let p1 = zip(start, b1).map { $0 - lr * $1 }
        let b2 = zip(b1, secondGradient).map { mu * $0 + $1 }  // b = mu * b + g
        let p2 = zip(p1, b2).map { $0 - lr * $1 }
        assertSteps(twoSteps(try SGD(learningRate: 0.1, momentum: 0.9)), [p1, p2], "SGD with momentum")
    }

    func testNesterovSGD() throws {
        let (lr, mu) = (0.1, 0.9)
        let b1 = firstGradient
        let p1 = (0..<2).map { start[$0] - lr * (firstGradient[$0] + mu * b1[$0]) }
        let b2 = (0..<2).map { mu * b1[$0] + secondGradient[$0] }
        let p2 = (0..<2).map { p1[$0] - lr * (secondGradient[$0] + mu * b2[$0]) }
        assertSteps(twoSteps(try SGD(learningRate: 0.1, momentum: 0.9, nesterov: true)), [p1, p2], "Nesterov SGD")
    }

    func testSGDWeightDecay() throws {
        let (lr, mu, wd) = (0.1, 0.9, 0.01)
        let d1 = (0..<2).map { firstGradient[$0] + wd * start[$0] }
        let p1 = (0..<2).map { start[$0] - lr * d1[$0] }
        let d2 = (0..<2).map { secondGradient[$0] + wd * p1[$0] }
        let b2 = (0..<2).map { mu * d1[$0] + d2[$0] }
        let p2 = (0..<2).map { p1[$0] - lr * b2[$0] }
        assertSteps(twoSteps(try SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)), [p1, p2], "SGD with weight decay")
    }

    /// Adam's first two steps with bias correction:
    /// `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`, `p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`.
    func adamExpected(lr: Double, beta1: Double, beta2: Double, eps: Double, weightDecay: Double = 0) -> [[Double]] {
        var p = start, m = [0.0, 0.0], v = [0.0, 0.0], result: [[Double]] = []
        for (t, gradient) in [firstGradient, secondGradient].enumerated() {
            for i in 0..<2 {
                let g = gradient[i] + weightDecay * p[i]
                m[i] = beta1 * m[i] + (1 - beta1) * g
                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                let mHat = m[i] / (1 - Foundation.pow(beta1, Double(t + 1)))
                let vHat = v[i] / (1 - Foundation.pow(beta2, Double(t + 1)))
                p[i] -= lr * mHat / (vHat.squareRoot() + eps)
            }
            result.append(p)
        }
        return result
    }

    func testAdamFirstTwoSteps() throws {
        let expected = adamExpected(lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8)
        // The first bias-corrected step moves each element by lr * sign(g).
        XCTAssertEqual(expected[0][0], 0.99, accuracy: 1e-7)
        XCTAssertEqual(expected[0][1], -2.01, accuracy: 1e-7)
        let adam = try Adam(learningRate: 0.01)
        assertSteps(twoSteps(adam), expected, "Adam")
        XCTAssertEqual(adam.stepCount, 2)
        let other = adamExpected(lr: 0.05, beta1: 0.5, beta2: 0.9, eps: 0.1, weightDecay: 0.2)
        assertSteps(
            twoSteps(try Adam(learningRate: 0.05, beta1: 0.5, beta2: 0.9, epsilon: 0.1, weightDecay: 0.2)), other,
            "Adam with other betas, a large epsilon and weight decay")
    }

    /// As in PyTorch, a parameter counts its own steps: one that first gets a gradient in the
    /// second call takes a first (fully bias-corrected) step of lr * sign(g).
    func testAdamCountsStepsPerParameter() throws {
        let early = Parameter(Tensor(shape: [2], storage: [0, 0])), late = Parameter(Tensor(shape: [2], storage: [1, -2]))
        let adam = try Adam(learningRate: 0.01)
        adam.step([("early", early), ("late", late)], gradients: gradients([1, 1], for: early))
        XCTAssertEqual(late.value.storage, [1, -2], "no gradient, no update")
        let tape = Tape()
        let loss = (early.variable(on: tape) + late.variable(on: tape) * Variable(Tensor(shape: [2], storage: [0.5, 0.25]))).sum()
        adam.step([("early", early), ("late", late)], gradients: tape.gradients(of: loss))
        XCTAssertEqual(Double(late.value.storage[0]), 0.99, accuracy: 1e-6, "first step of 'late' moves by lr")
        XCTAssertEqual(Double(late.value.storage[1]), -2.01, accuracy: 1e-6, "first step of 'late' moves by lr")
        XCTAssertEqual(adam.state["t.late"]?.scalar, 1)
        XCTAssertEqual(adam.state["t.early"]?.scalar, 2)
        XCTAssertEqual(adam.stepCount, 2)
    }

    func testAdamRejectsBadState() throws {
        let adam = try Adam()
        let m = Tensor.zeros([2])
        for (bad, why) in [
            ([String: Tensor](), "no step"), (["step": Tensor(.infinity)], "infinite step"),
            (["step": Tensor(1.5)], "fractional step"), (["step": Tensor(-1)], "negative step"),
            (["step": Tensor(2), "m.w": m], "first moment without second"),
            (["step": Tensor(2), "m.w": m, "v.w": Tensor.zeros([3])], "moments of different shapes"),
            (["step": Tensor(2), "v.w": m], "second moment without first"),
            (["step": Tensor(2), "m.w": m, "v.w": m, "t.w": Tensor(.nan)], "NaN parameter step")
        ] {
            XCTAssertThrowsError(try adam.restore(bad), "restore must reject a state with \(why)")
        }
        XCTAssertNoThrow(try adam.restore(["step": Tensor(2), "m.w": m, "v.w": m]))
        XCTAssertEqual(adam.state["t.w"]?.scalar, 2, "a parameter without its own count takes the global step")
    }

    /// Restoring the saved state continues exactly as the original optimizer would.
    func testStateRoundTrip() throws {
        for make in [{ try Adam(learningRate: 0.01) as Optimizer }, { try SGD(learningRate: 0.1, momentum: 0.9) as Optimizer }] {
            let original = try make(), restored = try make()
            _ = twoSteps(original)
            try restored.restore(original.state)
            let a = Parameter(Tensor(shape: [2], storage: [3, 4])), b = Parameter(Tensor(shape: [2], storage: [3, 4]))
            original.step([("w", a)], gradients: gradients([0.3, -0.7], for: a))
            restored.step([("w", b)], gradients: gradients([0.3, -0.7], for: b))
            XCTAssertEqual(a.value.storage, b.value.storage, "\(type(of: original)) after restoring its state")
            XCTAssertNotEqual(original.state.count, 0)
        }
        XCTAssertThrowsError(try Adam().restore([:]))
    }

    func testParametersWithoutGradientAreLeftAlone() throws {
        let used = Parameter(Tensor(shape: [2], storage: [1, 1])), unused = Parameter(Tensor(shape: [2], storage: [5, 5]))
        let grads = gradients([1, 1], for: used)
        for optimizer in [try SGD(learningRate: 0.1, momentum: 0.5) as Optimizer, try Adam() as Optimizer] {
            optimizer.step([("used", used), ("unused", unused)], gradients: grads)
            XCTAssertEqual(unused.value.storage, [5, 5])
        }
        XCTAssertLessThan(used.value.storage[0], 1)
    }

    func assertThrows(
        _ expression: @autoclosure () throws -> Optimizer, mentioning words: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try expression(), file: file, line: line) { error in
            let message = (error as? OptimizerConfigurationError)?.description ?? ""
            XCTAssertTrue(message.contains(words), "message '\(message)' should mention '\(words)'", file: file, line: line)
        }
    }

    func testInvalidHyperParametersThrow() {
        assertThrows(try SGD(learningRate: 0), mentioning: "learning rate")
        assertThrows(try SGD(learningRate: -1), mentioning: "learning rate")
        assertThrows(try SGD(learningRate: .nan), mentioning: "learning rate")
        assertThrows(try SGD(learningRate: .infinity), mentioning: "learning rate")
        assertThrows(try SGD(learningRate: 0.1, momentum: 1), mentioning: "momentum")
        assertThrows(try SGD(learningRate: 0.1, momentum: -0.1), mentioning: "momentum")
        assertThrows(try SGD(learningRate: 0.1, nesterov: true), mentioning: "Nesterov")
        assertThrows(try SGD(learningRate: 0.1, weightDecay: -1), mentioning: "weight decay")
        assertThrows(try Adam(learningRate: 0), mentioning: "learning rate")
        assertThrows(try Adam(beta1: 1), mentioning: "betas")
        assertThrows(try Adam(beta2: -0.5), mentioning: "betas")
        assertThrows(try Adam(epsilon: 0), mentioning: "epsilon")
        assertThrows(try Adam(weightDecay: -0.1), mentioning: "weight decay")
        assertThrows(try Adam(weightDecay: .infinity), mentioning: "weight decay")
        assertThrows(try SGD(learningRate: 0.1, weightDecay: .nan), mentioning: "weight decay")
        assertThrows(try Adam(epsilon: .nan), mentioning: "epsilon")
        XCTAssertNoThrow(try SGD(learningRate: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4))
        XCTAssertNoThrow(try Adam())
    }
}
