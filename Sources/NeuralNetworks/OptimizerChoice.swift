import Foundation

/// Which optimizer trains a network.
public enum OptimizerKind: String, CaseIterable, Sendable {
    case adam, sgd
}

/// How the learning rate changes over a run.
public enum LearningRateSchedule: String, CaseIterable, Sendable {
    /// The same rate for every step.
    case constant
    /// Half a cosine from the base rate down to 0 at the end of the last epoch.
    case cosine

    /// The rate after `progress` (0 at the first step, 1 at the end) of the run.
    public func rate(base: Float, progress: Double) -> Float {
        switch self {
        case .constant: return base
        case .cosine: return base * Float(0.5 * (1 + cos(Double.pi * min(1, max(0, progress)))))
        }
    }
}

/// Makes the optimizer `kind` with its hyper-parameters (momentum is used by SGD only);
/// throws when a hyper-parameter is out of range.
public func makeOptimizer(_ kind: OptimizerKind, learningRate: Float, momentum: Float, weightDecay: Float = 0) throws -> Optimizer {
    switch kind {
    case .adam: return try Adam(learningRate: learningRate, weightDecay: weightDecay)
    case .sgd: return try SGD(learningRate: learningRate, momentum: momentum, weightDecay: weightDecay)
    }
}
