import Tensors

/// Central finite-difference gradient checking.
public enum GradientCheck {
    /// The largest relative error between the analytic gradient of `function`
    /// (a scalar) with respect to each of `inputs` and its central difference
    /// `(f(x + h) - f(x - h)) / 2h`, computed in Float and compared with
    /// `|a - n| / max(1, |a|, |n|)`.
    ///
    /// `function` receives the inputs as variables (watched on a tape, or
    /// constants when probing) and must return a scalar.
    public static func maximumError(
        inputs: [Tensor], step: Float = 1e-2, _ function: ([Variable]) -> Variable
    ) -> Float {
        let tape = Tape()
        let watched = inputs.map { tape.watch($0) }
        let output = function(watched)
        precondition(output.value.count == 1, "gradient check needs a scalar function, got shape \(output.shape)")
        let grads = tape.gradients(of: output)
        var worst: Float = 0
        for (k, input) in inputs.enumerated() {
            let analytic = grads[watched[k]] ?? Tensor.zeros(input.shape)
            for i in 0..<input.count {
                func probe(_ delta: Float) -> Double {
                    var shifted = inputs
                    shifted[k].storage[i] += delta
                    return Double(function(shifted.map { Variable($0) }).value.storage[0])
                }
                let numeric = Float((probe(step) - probe(-step)) / Double(2 * step))
                let a = analytic.storage[i]
                worst = max(worst, Swift.abs(a - numeric) / max(1, Swift.abs(a), Swift.abs(numeric)))
            }
        }
        return worst
    }
}
