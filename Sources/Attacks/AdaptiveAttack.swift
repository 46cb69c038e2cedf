import Autodiff
import Tensors

/// The detector term an adaptive attack adds to its loss: `lambda * max(0, score(x') - alpha)`
/// per image, with gradients flowing through the detector's score.
struct DetectorPenalty {
    let detector: DifferentiableDetector
    /// `lambda`.
    let weight: Float
    /// `alpha`, the score below which the term vanishes.
    let margin: Float

    /// The term `[N]` and the scores `[N]` of `x`, both on `x`'s tape.
    func evaluate(_ x: Variable) -> (term: Variable, scores: Variable) {
        let scores = detector.score(x)
        precondition(
            scores.shape == [x.shape[0]],
            "detector score must have shape [\(x.shape[0])], got \(scores.shape)")
        return ((scores - margin).relu() * weight, scores)
    }
}

/// An attack that knows the detector (Carlini and Wagner 2017, "Adversarial
/// examples are not easily detected"; Tramer et al. 2020): it fools the classifier
/// AND keeps the anomaly score low, differentiating through the detector.
///
/// - `.projectedGradient`: PGD (same steps, projection and restarts as
///   `ProjectedGradientDescent`) maximising, per image,
///   `objective(Z) - lambda * max(0, score(x') - alpha)`, where `objective` is
///   `CE(Z, y)` / `-CE(Z, t)` or minus Carlini and Wagner's margin term.
/// - `.carliniWagnerL2`: the CW-L2 attack whose per-image loss gains
///   `+ lambda * max(0, score(x') - alpha)`; an iterate counts as a success (for the
///   binary search and the smallest-L2 choice) only if `score <= threshold`.
///
/// Success = misclassified (or at the target) AND `score <= threshold`; compute it
/// with `AttackOutcome(..., detector:)`. `alpha` defaults to the detector threshold.
public struct AdaptiveAttack: Attack {
    /// The optimiser the detector term is added to.
    public enum Method {
        /// PGD with the given budget, steps and restarts, on the given classification loss.
        case projectedGradient(ProjectedGradientDescent, loss: ClassificationLoss)
        /// Carlini-Wagner L2 with the given settings.
        case carliniWagnerL2(CarliniWagnerL2)
    }

    /// The detector attacked.
    public let detector: DifferentiableDetector
    /// `lambda`, the weight of the detector term.
    public let detectorWeight: Float
    /// `alpha`, the score below which the detector term vanishes.
    public let scoreMargin: Float
    /// The optimiser.
    public let method: Method

    /// Creates the attack; throws when `lambda` is negative or `alpha` is not finite.
    /// `scoreMargin` defaults to `detector.threshold`.
    public init(method: Method, detector: DifferentiableDetector, detectorWeight: Float = 1, scoreMargin: Float? = nil) throws {
        guard detectorWeight >= 0, detectorWeight.isFinite else {
            throw AttackConfigurationError("adaptive attack: lambda must be >= 0, got \(detectorWeight)")
        }
        let margin = scoreMargin ?? detector.threshold
        guard margin.isFinite else { throw AttackConfigurationError("adaptive attack: alpha must be finite, got \(margin)") }
        (self.method, self.detector, self.detectorWeight, self.scoreMargin) = (method, detector, detectorWeight, margin)
    }

    /// Adaptive PGD: `PGD(norm, epsilon, stepSize, steps, randomStart, restarts)` on
    /// `loss` plus the detector term (defaults: L-inf, eps 0.3, step 0.01, 100 steps,
    /// cross-entropy, lambda 1).
    public static func projectedGradient(
        detector: DifferentiableDetector, detectorWeight: Float = 1,
        scoreMargin: Float? = nil, norm: PerturbationNorm = .lInfinity,
        epsilon: Float = 0.3, stepSize: Float = 0.01, steps: Int = 100,
        randomStart: Bool = true, restarts: Int = 1,
        loss: ClassificationLoss = .crossEntropy
    ) throws -> AdaptiveAttack {
        let pgd = try ProjectedGradientDescent(
            norm: norm, epsilon: epsilon, stepSize: stepSize, steps: steps,
            randomStart: randomStart, restarts: restarts)
        return try AdaptiveAttack(
            method: .projectedGradient(pgd, loss: loss), detector: detector,
            detectorWeight: detectorWeight, scoreMargin: scoreMargin)
    }

    public var name: String {
        switch method {
        case .projectedGradient(let pgd, _): return "Adaptive-" + pgd.name
        case .carliniWagnerL2: return "Adaptive-CW-L2"
        }
    }

    public var settings: [String: String] {
        var result: [String: String]
        switch method {
        case .projectedGradient(let pgd, let loss):
            result = pgd.settings
            result["loss"] = loss.settingsValue
        case .carliniWagnerL2(let cw):
            result = cw.settings
        }
        result["method"] = name
        result["lambda"] = describe(detectorWeight)
        result["alpha"] = describe(scoreMargin)
        result["detector_threshold"] = describe(detector.threshold)
        return result
    }

    public func perturb(
        _ images: Tensor, labels: [Int], goal: AttackGoal, model: DifferentiableClassifier,
        randomness: ImageRandomness
    ) -> Tensor {
        guard images.batchSize > 0 else { return images }
        let penalty = DetectorPenalty(detector: detector, weight: detectorWeight, margin: scoreMargin)
        switch method {
        case .carliniWagnerL2(let cw):
            return cw.run(images, labels: labels, goal: goal, model: model, penalty: penalty)
        case .projectedGradient(let pgd, let loss):
            let classes = goal.referenceClasses(
                labels: labels, count: images.batchSize,
                classCount: model.classCount(images))
            return pgd.ascent.run(
                images, randomness: randomness,
                objective: { x, rows in
                    loss.objective(logits: model.logits(x), classes: Array(classes[rows]), targeted: goal.isTargeted)
                        - penalty.evaluate(x).term
                },
                isSuccessful: { candidate in
                    let evaded = detector.scores(candidate).map { $0 <= detector.threshold }
                    return zip(model.successes(candidate, labels: labels, goal: goal), evaded).map { $0 && $1 }
                })
        }
    }
}
