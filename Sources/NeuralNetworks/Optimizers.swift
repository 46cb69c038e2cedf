import Autodiff
import Tensors
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
    public let learningRate: Float
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
        guard weightDecay >= 0 else {
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
public final class Adam: Optimizer {
    public let learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    /// Number of steps taken.
    public private(set) var stepCount = 0
    var firstMoment: [String: Tensor] = [:]
    var secondMoment: [String: Tensor] = [:]

    /// Creates the optimizer; throws when a hyper-parameter is out of range.
    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0) throws {
        guard learningRate > 0, learningRate.isFinite else {
            throw OptimizerConfigurationError(description: "Adam learning rate must be a positive number, got \(learningRate)")
        }
        guard (0..<1).contains(beta1), (0..<1).contains(beta2) else {
            throw OptimizerConfigurationError(description: "Adam betas must be in [0, 1), got \(beta1) and \(beta2)")
        }
        guard epsilon > 0 else { throw OptimizerConfigurationError(description: "Adam epsilon must be > 0, got \(epsilon)") }
        guard weightDecay >= 0 else {
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
        let correction1 = 1 - powf(beta1, Float(stepCount))
        let correction2 = 1 - powf(beta2, Float(stepCount))
        let stepSize = learningRate / correction1
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        for (name, parameter) in parameters {
            guard var g = gradients[object: parameter] else { continue }
            if weightDecay != 0 { g.add(parameter.value, scaledBy: weightDecay) }
            var m = firstMoment[name] ?? Tensor.zeros(g.shape)
            var v = secondMoment[name] ?? Tensor.zeros(g.shape)
            firstMoment[name] = nil
            secondMoment[name] = nil
            let n = g.count
            m.withUnsafeMutableBufferPointer { pm in
                v.withUnsafeMutableBufferPointer { pv in
                    parameter.value.withUnsafeMutableBufferPointer { pp in
                        g.withUnsafeBufferPointer { pg in
                            let (mm, vv, p, gg) = (pm.baseAddress!, pv.baseAddress!, pp.baseAddress!, pg.baseAddress!)
                            Parallel.forEachChunk(n, minimumPerChunk: 16384) { range in
                                for i in range {
                                    mm[i] = b1 * mm[i] + (1 - b1) * gg[i]
                                    vv[i] = b2 * vv[i] + (1 - b2) * gg[i] * gg[i]
                                    p[i] -= stepSize * mm[i] / ((vv[i] / correction2).squareRoot() + eps)
                                }
                            }
                        }
                    }
                }
            }
            firstMoment[name] = m
            secondMoment[name] = v
        }
    }

    public var state: [String: Tensor] {
        var result: [String: Tensor] = ["step": Tensor(Float(stepCount))]
        for (k, v) in firstMoment { result["m.\(k)"] = v }
        for (k, v) in secondMoment { result["v.\(k)"] = v }
        return result
    }

    public func restore(_ state: [String: Tensor]) throws {
        guard let step = state["step"], step.count == 1, step.storage[0] >= 0 else {
            throw OptimizerConfigurationError(description: "Adam state has no valid step count")
        }
        stepCount = Int(step.storage[0])
        firstMoment = [:]
        secondMoment = [:]
        for (key, value) in state {
            if key.hasPrefix("m.") { firstMoment[String(key.dropFirst(2))] = value }
            if key.hasPrefix("v.") { secondMoment[String(key.dropFirst(2))] = value }
        }
    }
}
