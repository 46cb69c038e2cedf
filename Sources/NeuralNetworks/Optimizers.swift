import Autodiff
import Tensors
import _VectorKernels
#if canImport(Glibc)
    import Glibc
#endif

/// A hyper-parameter that is out of range, with a message for the user.
public struct OptimizerConfigurationError: Error, CustomStringConvertible {
    public let description: String
}

/// Updates parameters from their gradients. State (momentum, moments) is keyed by
/// parameter name so that it can be saved in a checkpoint and restored.
public protocol Optimizer: AnyObject {
    /// The step size; a schedule may change it between steps.
    var learningRate: Float { get set }
    /// Applies one update to every parameter that has a gradient.
    func step(_ parameters: [NamedParameter], gradients: Gradients)
    /// The optimizer state as named tensors (for checkpoints).
    var state: [String: Tensor] { get }
    /// Restores state saved by `state`.
    func restore(_ state: [String: Tensor]) throws
}

/// Stochastic gradient descent with optional momentum (PyTorch's formulation:
/// `b = momentum * b + g`, then `p -= lr * (nesterov ? g + momentum * b : b)`).
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    var velocity: [String: Tensor] = [:]

    /// Creates the optimizer; throws when a hyper-parameter is out of range.
    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) throws {
        guard learningRate > 0, learningRate.isFinite else {
            throw OptimizerConfigurationError(description: "SGD learning rate must be a positive number, got \(learningRate)")
        }
        guard momentum >= 0, momentum < 1 else {
            throw OptimizerConfigurationError(description: "SGD momentum must be in [0, 1), got \(momentum)")
        }
        guard !nesterov || momentum > 0 else {
            throw OptimizerConfigurationError(description: "Nesterov momentum needs a momentum above 0")
        }
        guard weightDecay >= 0, weightDecay.isFinite else {
            throw OptimizerConfigurationError(description: "SGD weight decay must be >= 0, got \(weightDecay)")
        }
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    public func step(_ parameters: [NamedParameter], gradients: Gradients) {
        for (name, parameter) in parameters {
            guard var g = gradients[object: parameter] else { continue }
            if weightDecay != 0 { g.add(parameter.value, scaledBy: weightDecay) }
            if momentum != 0 {
                var b = velocity[name] ?? Tensor.zeros(g.shape)
                b = b.zipMap(g) { momentum * $0 + $1 }
                velocity[name] = b
                if nesterov { g.add(b, scaledBy: momentum) } else { g = b }
            }
            parameter.value.add(g, scaledBy: -learningRate)
        }
    }

    public var state: [String: Tensor] { velocity.reduce(into: [:]) { $0["velocity.\($1.key)"] = $1.value } }

    public func restore(_ state: [String: Tensor]) throws {
        velocity = [:]
        for (key, value) in state where key.hasPrefix("velocity.") { velocity[String(key.dropFirst(9))] = value }
    }
}

/// Adam with bias correction (Kingma and Ba; PyTorch's defaults: betas 0.9, 0.999, eps 1e-8).
///
/// As in PyTorch, each parameter counts its own steps `t` (the steps in which it had
/// a gradient), so a parameter that joins training late gets the full bias correction:
/// `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
/// `p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`.
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    /// Number of `step` calls.
    public private(set) var stepCount = 0
    var firstMoment: [String: Tensor] = [:]
    var secondMoment: [String: Tensor] = [:]
    /// Steps taken by each parameter (`t` of the bias correction).
    var parameterSteps: [String: Int] = [:]

    /// Creates the optimizer; throws when a hyper-parameter is out of range.
    public init(
        learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
        weightDecay: Float = 0
    ) throws {
        guard learningRate > 0, learningRate.isFinite else {
            throw OptimizerConfigurationError(description: "Adam learning rate must be a positive number, got \(learningRate)")
        }
        guard (0..<1).contains(beta1), (0..<1).contains(beta2) else {
            throw OptimizerConfigurationError(description: "Adam betas must be in [0, 1), got \(beta1) and \(beta2)")
        }
        guard epsilon > 0, epsilon.isFinite else {
            throw OptimizerConfigurationError(description: "Adam epsilon must be a positive number, got \(epsilon)")
        }
        guard weightDecay >= 0, weightDecay.isFinite else {
            throw OptimizerConfigurationError(description: "Adam weight decay must be >= 0, got \(weightDecay)")
        }
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    public func step(_ parameters: [NamedParameter], gradients: Gradients) {
        stepCount += 1
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        for (name, parameter) in parameters {
            guard var g = gradients[object: parameter] else { continue }
            if weightDecay != 0 { g.add(parameter.value, scaledBy: weightDecay) }
            var m = firstMoment[name] ?? Tensor.zeros(g.shape)
            var v = secondMoment[name] ?? Tensor.zeros(g.shape)
            precondition(
                m.shape == g.shape && v.shape == g.shape,
                "Adam state for '\(name)' has shapes \(m.shape) and \(v.shape) but the parameter has shape \(g.shape)")
            let t = (parameterSteps[name] ?? 0) + 1
            parameterSteps[name] = t
            let correction1 = 1 - powf(beta1, Float(t))
            let correction2 = 1 - powf(beta2, Float(t))
            let stepSize = learningRate / correction1
            firstMoment[name] = nil  // unique references: update in place
            secondMoment[name] = nil
            let n = g.count
            m.withUnsafeMutableBufferPointer { pm in
                v.withUnsafeMutableBufferPointer { pv in
                    parameter.value.withUnsafeMutableBufferPointer { pp in
                        g.withUnsafeBufferPointer { pg in
                            let (mm, vv, p, gg) = (pm.baseAddress!, pv.baseAddress!, pp.baseAddress!, pg.baseAddress!)
                            Parallel.forEachChunk(n, minimumPerChunk: 1 << 16) { range in
                                // m, v and p of the range in one pass (_VectorKernels: AVX-512 when the CPU has it;
                                // the compiler leaves the Swift loop scalar, and its square roots and divisions
                                // then took a quarter of a detector training step)
                                let at = range.lowerBound
                                adam_update(
                                    mm + at, vv + at, p + at, gg + at, range.count, b1, b2, eps, stepSize, correction2)
                            }
                        }
                    }
                }
            }
            firstMoment[name] = m
            secondMoment[name] = v
        }
    }

    /// `step` (number of calls), and per parameter `t.name` (its steps), `m.name`, `v.name`.
    public var state: [String: Tensor] {
        var result: [String: Tensor] = ["step": Tensor(Float(stepCount))]
        for (k, t) in parameterSteps { result["t.\(k)"] = Tensor(Float(t)) }
        for (k, v) in firstMoment { result["m.\(k)"] = v }
        for (k, v) in secondMoment { result["v.\(k)"] = v }
        return result
    }

    /// Restores state saved by `state`; a parameter without `t.name` takes the global `step`.
    public func restore(_ state: [String: Tensor]) throws {
        func count(_ key: String) throws -> Int {
            guard let t = state[key], t.count == 1, t.storage[0] >= 0, t.storage[0] < 16_777_216,
                t.storage[0].rounded() == t.storage[0]
            else {
                throw OptimizerConfigurationError(
                    description:
                        "Adam state has no valid step count in '\(key)' (a whole number from 0 to 2^24), got \(state[key].map { "\($0.storage)" } ?? "none")"
                )
            }
            return Int(t.storage[0])
        }
        let globalStep = try count("step")
        var first: [String: Tensor] = [:], second: [String: Tensor] = [:], steps: [String: Int] = [:]
        for (key, value) in state {
            if key.hasPrefix("m.") { first[String(key.dropFirst(2))] = value }
            if key.hasPrefix("v.") { second[String(key.dropFirst(2))] = value }
        }
        for (name, m) in first {
            guard let v = second[name], v.shape == m.shape else {
                throw OptimizerConfigurationError(
                    description:
                        "Adam state for '\(name)' has a first moment of shape \(m.shape) but a second moment of shape \(second[name].map { "\($0.shape)" } ?? "none")"
                )
            }
            steps[name] = state["t.\(name)"] == nil ? globalStep : try count("t.\(name)")
        }
        for name in second.keys where first[name] == nil {
            throw OptimizerConfigurationError(description: "Adam state for '\(name)' has a second moment but no first moment")
        }
        stepCount = globalStep
        firstMoment = first
        secondMoment = second
        parameterSteps = steps
    }
}
