import Autodiff
import Tensors

/// The fast gradient (sign) method (Goodfellow et al. 2015; cleverhans v3 `fgm`).
///
/// One step of size `epsilon` along the steepest-ascent direction of the
/// cross-entropy of the logits `Z = f(x)`:
///
///     untargeted:  x' = clip(x + eps * d(grad_x CE(Z, y)), 0, 1)
///     targeted:    x' = clip(x - eps * d(grad_x CE(Z, t)), 0, 1)
///
/// with `d(g) = sign(g)` for L-inf (FGSM) and `d(g) = g / sqrt(max(1e-12, sum g^2))`
/// per sample for L2. Default: L-inf, `eps = 0.3`.
public struct FastGradientMethod: Attack {
    /// The norm of the step.
    public let norm: PerturbationNorm
    /// The step length (L-inf: per-pixel change; L2: per-image norm).
    public let epsilon: Float

    /// Creates the attack; throws when `epsilon` is not a positive number.
    public init(norm: PerturbationNorm = .lInfinity, epsilon: Float = 0.3) throws {
        self.norm = norm
        self.epsilon = epsilon
        try ascent.validate(attack: "FGSM")
    }

    var ascent: ProjectedAscent {
        ProjectedAscent(norm: norm, epsilon: epsilon, stepSize: epsilon, steps: 1, randomStart: false, restarts: 1)
    }

    public var name: String { norm == .lInfinity ? "FGSM" : "FGM-L2" }

    public var settings: [String: String] { ["norm": norm.rawValue, "epsilon": describe(epsilon)] }

    public func perturb(
        _ images: Tensor, labels: [Int], goal: AttackGoal, model: DifferentiableClassifier,
        randomness: ImageRandomness
    ) -> Tensor {
        ascent.runOnCrossEntropy(images, labels: labels, goal: goal, model: model, randomness: randomness)
    }
}
