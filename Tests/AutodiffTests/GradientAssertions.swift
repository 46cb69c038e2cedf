@testable import Autodiff
import Tensors
import XCTest

/// The finite-difference settings of every gradient check in this target.
///
/// Central differences `(f(x + h) - f(x - h)) / 2h` in Float32 with `h = 1e-2`;
/// the error of one element is `|analytic - numeric| / max(1, |analytic|, |numeric|)`
/// (relative for gradients above 1, absolute below) and must stay within `1e-2`.
enum FiniteDifference {
    static let step: Float = 1e-2
    static let tolerance: Float = 1e-2
}

/// Uniform samples in `[low, high)` from a fixed seed.
func randomTensor(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    return Tensor.uniform(shape, low: low, high: high, using: &generator)
}

/// Values with `margin <= |x| < 1` and random signs (for kinks at 0).
func awayFromZero(_ shape: [Int], seed: UInt64, margin: Float = 0.1) -> Tensor {
    randomTensor(shape, seed: seed).map { $0 >= 0 ? margin + (1 - margin) * $0 : -margin + (1 - margin) * $0 }
}

/// Distinct values at least `gap` apart, in random order (for max and argmax).
func distinctValues(_ shape: [Int], seed: UInt64, gap: Float = 0.05) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    let count = shape.elementCount
    let order = generator.permutation(count)
    return Tensor(shape: shape, storage: order.map { (Float($0) - Float(count) / 2) * gap })
}

/// A scalar that depends on every element of `v` with a different random weight,
/// so that the upstream gradient of `v` is not a constant.
func weightedSum(_ v: Variable, seed: UInt64 = 99) -> Variable {
    (v * Variable(randomTensor(v.shape, seed: seed, low: -1.5, high: 1.5))).sum()
}

/// Checks the tape's gradient of the scalar `function` with respect to every one of
/// `inputs` against central finite differences; reports the worst element.
///
/// Also fails when an input's analytic gradient is identically zero (a check
/// against zero would prove nothing), unless `allowZero` lists that input.
func assertGradientsMatch(
    _ what: String, inputs: [Tensor], step: Float = FiniteDifference.step,
    tolerance: Float = FiniteDifference.tolerance, allowZero: Set<Int> = [],
    file: StaticString = #filePath, line: UInt = #line,
    _ function: ([Variable]) -> Variable
) {
    let tape = Tape()
    let watched = inputs.map { tape.watch($0) }
    let output = function(watched)
    XCTAssertEqual(output.value.count, 1, "\(what): the checked function must be a scalar", file: file, line: line)
    XCTAssertTrue(
        output.tape === tape && output.requiresGradient, "\(what): the output must be recorded on the tape",
        file: file, line: line)
    let grads = tape.gradients(of: output)
    for (k, input) in inputs.enumerated() {
        guard let analytic = grads[watched[k]] else {
            XCTFail("\(what): no gradient for input \(k)", file: file, line: line)
            continue
        }
        XCTAssertEqual(analytic.shape, input.shape, "\(what): gradient shape of input \(k)", file: file, line: line)
        var worst: Float = 0, worstIndex = 0, worstPair: (Float, Float) = (0, 0), largest: Float = 0
        for i in 0..<input.count {
            func probe(_ delta: Float) -> Double {
                var shifted = inputs
                shifted[k].storage[i] += delta
                return Double(function(shifted.map { Variable($0) }).value.storage[0])
            }
            let numeric = Float((probe(step) - probe(-step)) / Double(2 * step))
            let a = analytic.storage[i]
            let error = abs(a - numeric) / max(1, abs(a), abs(numeric))
            largest = max(largest, abs(a))
            if !(error <= worst) { worst = error; worstIndex = i; worstPair = (a, numeric) }
        }
        XCTAssertLessThanOrEqual(
            worst, tolerance,
            "\(what): input \(k) (shape \(input.shape)) element \(worstIndex): analytic \(worstPair.0), "
                + "numeric \(worstPair.1); error \(worst) exceeds the tolerance \(tolerance) "
                + "(central differences, step \(step), error |a - n| / max(1, |a|, |n|))",
            file: file, line: line)
        if !allowZero.contains(k) {
            XCTAssertGreaterThan(
                largest, 1e-3, "\(what): the gradient of input \(k) is identically zero; the check is vacuous",
                file: file, line: line)
        }
    }
}
