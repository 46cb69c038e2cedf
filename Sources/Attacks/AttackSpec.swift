import Tensors

/// The attacks `dafar-attack` and `dafar-eval` can run, by command-line name.
public enum AttackKind: String, CaseIterable, Sendable {
    case fgsm, fgmL2 = "fgm-l2", bim, pgd, pgdL2 = "pgd-l2", cw2, jsma, deepfool
    case adaptivePGD = "adaptive-pgd", adaptiveCW = "adaptive-cw"

    /// True for attacks that need the detector (they attack the whole DAFAR system).
    public var needsDetector: Bool { self == .adaptivePGD || self == .adaptiveCW }
}

/// An attack and its hyper-parameters as a user gives them; nil means the reference default.
public struct AttackSpec: Sendable {
    public var kind: AttackKind
    /// L-inf (or L2 for the L2 attacks) budget. Default 0.3 (L-inf), 2.0 (L2).
    public var epsilon: Float?
    /// Iterations of BIM/PGD (default 40), of CW per binary-search step (default 1000), of DeepFool (50).
    public var steps: Int?
    /// Step size of PGD (default 0.01 L-inf, eps/8 L2), BIM (eps/10), or the Adam learning rate of CW (5e-3).
    public var stepSize: Float?
    /// Random restarts of PGD.
    public var restarts = 1
    /// PGD random start (on by default, as cleverhans).
    public var randomStart = true
    /// CW confidence kappa.
    public var confidence: Float = 0
    /// CW binary-search steps and initial constant.
    public var binarySearchSteps: Int?
    public var initialConstant: Float?
    /// Use Carlini's original CW settings (lr 1e-2, 9 x 10000, c 1e-3).
    public var carliniOriginal = false
    /// JSMA theta and gamma.
    public var theta: Float = 1
    public var gamma: Float = 0.1
    /// Adaptive attack: lambda, the weight of max(0, score - alpha).
    public var lambda: Float = 1

    public init(kind: AttackKind) { self.kind = kind }

    /// Builds the attack; `detector` is required for the adaptive attacks.
    public func make(detector: DifferentiableDetector? = nil) throws -> any Attack {
        switch kind {
        case .fgsm:
            return try FastGradientMethod(norm: .lInfinity, epsilon: epsilon ?? 0.3)
        case .fgmL2:
            return try FastGradientMethod(norm: .l2, epsilon: epsilon ?? 2)
        case .bim:
            let eps = epsilon ?? 0.3
            return try BasicIterativeMethod(epsilon: eps, stepSize: stepSize ?? eps / 10, steps: steps ?? 40)
        case .pgd:
            let eps = epsilon ?? 0.3
            return try ProjectedGradientDescent(
                norm: .lInfinity, epsilon: eps, stepSize: stepSize ?? 0.01,
                steps: steps ?? 40, randomStart: randomStart, restarts: restarts)
        case .pgdL2:
            let eps = epsilon ?? 2
            return try ProjectedGradientDescent(
                norm: .l2, epsilon: eps, stepSize: stepSize ?? eps / 8,
                steps: steps ?? 40, randomStart: randomStart, restarts: restarts)
        case .cw2:
            return try carliniWagner()
        case .jsma:
            return try JacobianSaliencyMapAttack(theta: theta, gamma: gamma)
        case .deepfool:
            return try DeepFool(maxIterations: steps ?? 50)
        case .adaptivePGD:
            guard let detector else { throw AttackConfigurationError("the adaptive attack needs a detector") }
            let eps = epsilon ?? 0.3
            return try AdaptiveAttack.projectedGradient(
                detector: detector, detectorWeight: lambda, epsilon: eps,
                stepSize: stepSize ?? 0.01, steps: steps ?? 100,
                randomStart: randomStart, restarts: restarts)
        case .adaptiveCW:
            guard let detector else { throw AttackConfigurationError("the adaptive attack needs a detector") }
            return try AdaptiveAttack(method: .carliniWagnerL2(try carliniWagner()), detector: detector, detectorWeight: lambda)
        }
    }

    func carliniWagner() throws -> CarliniWagnerL2 {
        if carliniOriginal {
            let base = try CarliniWagnerL2.carliniOriginal(confidence: confidence)
            return try CarliniWagnerL2(
                learningRate: stepSize ?? base.learningRate,
                binarySearchSteps: binarySearchSteps ?? base.binarySearchSteps,
                maxIterations: steps ?? base.maxIterations,
                initialConstant: initialConstant ?? base.initialConstant, confidence: confidence)
        }
        return try CarliniWagnerL2(
            learningRate: stepSize ?? 5e-3, binarySearchSteps: binarySearchSteps ?? 5,
            maxIterations: steps ?? 1000, initialConstant: initialConstant ?? 1e-2,
            confidence: confidence)
    }
}
