import Autodiff
import Tensors

/// Projected gradient descent (Madry et al. 2018; cleverhans v3
/// `ProjectedGradientDescent`) on the cross-entropy of the logits.
///
/// Start (random start on): `x_0 = clip(x + eta, 0, 1)`, `eta` uniform in the eps
/// box (L-inf) or the eps ball (L2). Then `steps` times
///
///     x_{k+1} = clip(x + P_eps(x_k + a * d(grad_x L(x_k)) - x), 0, 1)
///
/// with `L = CE(Z, y)` (untargeted, maximised) or `L = -CE(Z, t)` (targeted),
/// `d = sign` (L-inf) or `g / ||g||_2` (L2) and `P_eps` the projection onto the
/// eps ball. With `restarts > 1` each image keeps its best run: a successful one if
/// any, else the one with the highest loss.
///
/// Defaults (cleverhans v3): L-inf `eps = 0.3`, step `0.05`, 10 steps, random
/// start; L2 `eps = 2`, step `0.25`, 10 steps. For L-inf the step must not
/// exceed eps.
public struct ProjectedGradientDescent: Attack {
    /// The norm of the budget and the steps.
    public let norm: PerturbationNorm
    /// The radius of the ball the perturbation stays in.
    public let epsilon: Float
    /// The length of one step (`eps_iter`).
    public let stepSize: Float
    /// Number of steps per run.
    public let steps: Int
    /// Whether each run starts at a uniform random point of the eps ball.
    public let randomStart: Bool
    /// Number of runs; each image keeps its best.
    public let restarts: Int

    /// Creates the attack; throws when a hyper-parameter is out of range (including
    /// an L-inf step larger than eps).
    public init(
        norm: PerturbationNorm, epsilon: Float, stepSize: Float, steps: Int, randomStart: Bool = true,
        restarts: Int = 1
    ) throws {
        (self.norm, self.epsilon, self.stepSize, self.steps) = (norm, epsilon, stepSize, steps)
        (self.randomStart, self.restarts) = (randomStart, restarts)
        try ascent.validate(attack: "PGD")
    }

    /// PGD in the L-inf norm with cleverhans v3 defaults (eps 0.3, step 0.05, 10 steps).
    public static func lInfinity(
        epsilon: Float = 0.3, stepSize: Float = 0.05, steps: Int = 10, randomStart: Bool = true,
        restarts: Int = 1
    ) throws -> ProjectedGradientDescent {
        try ProjectedGradientDescent(
            norm: .lInfinity, epsilon: epsilon, stepSize: stepSize, steps: steps,
            randomStart: randomStart, restarts: restarts)
    }

    /// PGD in the L2 norm (defaults eps 2, step 0.25, 10 steps).
    public static func l2(
        epsilon: Float = 2, stepSize: Float = 0.25, steps: Int = 10, randomStart: Bool = true,
        restarts: Int = 1
    ) throws -> ProjectedGradientDescent {
        try ProjectedGradientDescent(
            norm: .l2, epsilon: epsilon, stepSize: stepSize, steps: steps,
            randomStart: randomStart, restarts: restarts)
    }

    var ascent: ProjectedAscent {
        ProjectedAscent(
            norm: norm, epsilon: epsilon, stepSize: stepSize, steps: steps, randomStart: randomStart,
            restarts: restarts)
    }

    public var name: String { norm == .lInfinity ? "PGD-Linf" : "PGD-L2" }

    public var settings: [String: String] { ascent.settings }

    public func perturb(
        _ images: Tensor, labels: [Int], goal: AttackGoal, model: DifferentiableClassifier,
        randomness: ImageRandomness
    ) -> Tensor {
        ascent.runOnCrossEntropy(images, labels: labels, goal: goal, model: model, randomness: randomness)
    }
}

/// The basic iterative method (Kurakin et al. 2017; cleverhans v3): PGD in the
/// L-inf norm without a random start. Defaults eps 0.3, step 0.05, 10 steps.
public struct BasicIterativeMethod: Attack {
    /// The underlying PGD (random start off, one run).
    public let pgd: ProjectedGradientDescent

    /// Creates the attack; throws when a hyper-parameter is out of range.
    public init(epsilon: Float = 0.3, stepSize: Float = 0.05, steps: Int = 10) throws {
        pgd = try ProjectedGradientDescent(
            norm: .lInfinity, epsilon: epsilon, stepSize: stepSize, steps: steps,
            randomStart: false, restarts: 1)
    }

    public var name: String { "BIM" }

    public var settings: [String: String] { pgd.settings }

    public func perturb(
        _ images: Tensor, labels: [Int], goal: AttackGoal, model: DifferentiableClassifier,
        randomness: ImageRandomness
    ) -> Tensor {
        pgd.perturb(images, labels: labels, goal: goal, model: model, randomness: randomness)
    }
}
