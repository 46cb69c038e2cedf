import Autodiff
import Tensors

/// What an attack achieved on a batch: predictions before and after, per-image
/// success and perturbation sizes.
///
/// Success: `prediction(x') != label` (untargeted) or `== target` (targeted); with
/// a detector, additionally `score(x') <= threshold` (the adaptive-attack criterion:
/// the classifier is fooled AND the detector does not flag the image).
public struct AttackOutcome {
    /// The adversarial images `[N, C, H, W]`.
    public let xAdversarial: Tensor
    /// The classifier's predictions on the clean images.
    public let predictedClean: [Int]
    /// The classifier's predictions on the adversarial images.
    public let predictedAdversarial: [Int]
    /// Whether the attack succeeded on each image.
    public let success: [Bool]
    /// `||x' - x||_2` per image.
    public let l2Distances: [Float]
    /// `max |x' - x|` per image.
    public let lInfinityDistances: [Float]
    /// The detector's scores of the adversarial images, when computed with a detector.
    public let detectorScores: [Float]?

    /// Evaluates `adversarial` against `original` with `classifier` (and `detector`, if given).
    public init(
        original: Tensor, adversarial: Tensor, labels: [Int], goal: AttackGoal,
        classifier: DifferentiableClassifier, detector: DifferentiableDetector? = nil
    ) {
        precondition(
            original.shape == adversarial.shape,
            "attack outcome: clean shape \(original.shape) does not match adversarial shape \(adversarial.shape)")
        precondition(labels.count == original.batchSize, "attack outcome: \(labels.count) labels for \(original.batchSize) images")
        xAdversarial = adversarial
        predictedClean = original.batchSize > 0 ? classifier.predictions(original) : []
        predictedAdversarial = original.batchSize > 0 ? classifier.predictions(adversarial) : []
        var success: [Bool]
        switch goal {
        case .untargeted:
            success = zip(predictedAdversarial, labels).map { $0 != $1 }
        case .targeted(let targets):
            precondition(targets.count == labels.count, "attack outcome: \(targets.count) targets for \(labels.count) images")
            success = zip(predictedAdversarial, targets).map { $0 == $1 }
        }
        if let detector, original.batchSize > 0 {
            let scores = detector.scores(adversarial)
            success = zip(success, scores).map { $0 && $1 <= detector.threshold }
            detectorScores = scores
        } else {
            detectorScores = nil
        }
        self.success = success
        let perturbation = adversarial - original
        l2Distances = perturbation.l2NormsPerSample()
        lInfinityDistances = perturbation.lInfinityNormsPerSample()
    }

    /// The fraction of images on which the attack succeeded (0 for an empty batch).
    public var successRate: Float {
        success.isEmpty ? 0 : Float(success.lazy.filter { $0 }.count) / Float(success.count)
    }

    /// Mean `||x' - x||_2` over the successful images; nil when none succeeded.
    public var meanL2OfSuccessful: Float? { meanOfSuccessful(l2Distances) }

    /// Mean `max |x' - x|` over the successful images; nil when none succeeded.
    public var meanLInfinityOfSuccessful: Float? { meanOfSuccessful(lInfinityDistances) }

    func meanOfSuccessful(_ values: [Float]) -> Float? {
        let chosen = zip(values, success).filter(\.1).map(\.0)
        return chosen.isEmpty ? nil : chosen.reduce(0, +) / Float(chosen.count)
    }
}
