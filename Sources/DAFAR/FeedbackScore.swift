import Autodiff
import Tensors

/// Which quantity a DAFAR detector flags on.
public enum ScoreKind: String, CaseIterable, Sendable {
    /// The paper's anomaly score `||delta - C(delta)||` of the residual `delta = x - D(E(x))` (Eq. 3-4).
    case residual
    /// Decision feedback: `JSD(softmax(F(E(x)) / T), softmax(F(E(D(E(x)))) / T))`, how much the
    /// classifier's decision moves when x is replaced by its own feedback reconstruction
    /// (MagNet's detector II, through DAFAR's jointly trained decoder instead of an extra autoencoder).
    case decision
    /// Both: `max(residual / s_r, decision / s_d)`, each score divided by its value at an equal share of
    /// the false-positive budget on clean validation images, so that one threshold flags an input
    /// when either score is high.
    case fused
}

/// The score a detector file defines: its kind, the temperature of the decision score and the two
/// scales of the fused score. All of it is fitted on clean data (see `FeedbackScore.fit`).
public struct FeedbackScore: Equatable, Sendable, CustomStringConvertible {
    /// What is scored.
    public var kind: ScoreKind
    /// `T` of the decision score's tempered softmax.
    public var temperature: Float
    /// `s_r`: the residual score is divided by it in the fused score.
    public var residualScale: Float
    /// `s_d`: the decision score is divided by it in the fused score.
    public var decisionScale: Float

    /// The temperature used unless a caller picks one: 1. Chosen on attacks made from the validation
    /// split of MNIST-5k (FGSM eps 0.05, PGD eps 0.1, short CW-L2; never test images): the fused score
    /// caught 92.4 % of them on average at 5 % false positives with T = 1, 91.9 % with 0.5, 84.5 % with 2
    /// and 64.3 % with MagNet's T = 10, which misses most CW-L2 examples (see the README).
    public static let defaultTemperature: Float = 1

    /// The paper's residual score.
    public static let residual = FeedbackScore(kind: .residual)

    /// A score of `kind`; the scales matter for `.fused` only.
    public init(
        kind: ScoreKind, temperature: Float = FeedbackScore.defaultTemperature, residualScale: Float = 1,
        decisionScale: Float = 1
    ) {
        precondition(temperature > 0 && temperature.isFinite, "the decision temperature must be positive, got \(temperature)")
        precondition(
            residualScale > 0 && decisionScale > 0 && residualScale.isFinite && decisionScale.isFinite,
            "the fused score's scales must be positive, got \(residualScale) and \(decisionScale)")
        self.kind = kind
        self.temperature = temperature
        self.residualScale = residualScale
        self.decisionScale = decisionScale
    }

    /// `residual`, `decision (T = 10)`, `fused (T = 10, s_r = ..., s_d = ...)`.
    public var description: String {
        switch kind {
        case .residual: return "residual"
        case .decision: return "decision (T = \(temperature))"
        case .fused: return "fused (T = \(temperature), s_r = \(residualScale), s_d = \(decisionScale))"
        }
    }

    /// The fused score of a kind with scales such that each component, alone, flags a fraction
    /// `share` of the clean `residualScores` / `decisionScores` (held-out validation images):
    /// `s = Threshold.atFalsePositiveRate(share, scores:)` of each, floored at the smallest positive
    /// float so that a constant score does not divide by zero.
    public static func fused(temperature: Float, share: Double, residualScores: [Float], decisionScores: [Float]) -> FeedbackScore {
        let scale = { (scores: [Float]) in max(Threshold.atFalsePositiveRate(share, scores: scores), .leastNormalMagnitude) }
        return FeedbackScore(
            kind: .fused, temperature: temperature, residualScale: scale(residualScores),
            decisionScale: scale(decisionScores))
    }

    /// The fused score from its two components (any shape, element-wise).
    public func fuse(residual: Variable, decision: Variable) -> Variable {
        maximum(residual * (1 / residualScale), decision * (1 / decisionScale))
    }

    /// The fused score of many images from their component scores: the same arithmetic as the
    /// recorded form, so that both give the same floats.
    public func fuse(residual: [Float], decision: [Float]) -> [Float] {
        precondition(residual.count == decision.count, "fusing \(residual.count) residual scores with \(decision.count) decision scores")
        let (r, d) = (1 / residualScale, 1 / decisionScale)
        return zip(residual, decision).map { Swift.max($0 * r, $1 * d) }
    }
}

/// The two component scores of a batch, each `[N]`.
public struct FeedbackScoreComponents {
    /// F(E(x)), `[N, K]`.
    public let logits: Variable
    /// `||delta - C(delta)||` (nil when no detector C was given).
    public let residual: Variable?
    /// The decision-feedback JSD.
    public let decision: Variable
}

extension JointNetwork {
    /// The decision-feedback score `JSD(softmax(F(E(x)) / T), softmax(F(E(D(E(x)))) / T))` of `x`
    /// `[N, C, H, W]` -> `[N]`, recorded on x's tape (differentiable through F, E and D).
    public func decisionScore(_ x: Variable, temperature: Float) -> Variable {
        feedbackScores(x, detector: nil, temperature: temperature).decision
    }

    /// Both component scores from one pass of E over x and one over D(E(x)): the decision score and,
    /// with `detector`, the residual score `||delta - C(delta)||`.
    public func feedbackScores(_ x: Variable, detector: AnomalyDetector?, temperature: Float) -> FeedbackScoreComponents {
        let outputs = self(x)
        let decision = jensenShannonDivergencePerSample(outputs.logits, logits(outputs.reconstruction), temperature: temperature)
        return FeedbackScoreComponents(
            logits: outputs.logits, residual: detector.map { $0.score(residual: x - outputs.reconstruction) },
            decision: decision)
    }

    /// F(E(x)) and the score `definition` of `x` `[N, C, H, W]` (`[N, K]`, `[N]`), from one pass of E
    /// over x (and one over D(E(x)) for the decision and fused kinds), recorded on x's tape. The
    /// residual and fused kinds need the detector C.
    public func logitsAndScore(_ x: Variable, _ definition: FeedbackScore, detector: AnomalyDetector?) -> (
        logits: Variable, score: Variable
    ) {
        switch definition.kind {
        case .residual:
            guard let detector else { preconditionFailure("the residual score needs the detector C") }
            let outputs = self(x)
            return (outputs.logits, detector.score(residual: x - outputs.reconstruction))
        case .decision:
            let parts = feedbackScores(x, detector: nil, temperature: definition.temperature)
            return (parts.logits, parts.decision)
        case .fused:
            guard let detector else { preconditionFailure("the fused score needs the detector C") }
            let parts = feedbackScores(x, detector: detector, temperature: definition.temperature)
            return (parts.logits, definition.fuse(residual: parts.residual!, decision: parts.decision))
        }
    }

    /// Both component scores of many images, batched, no tape: `(residual, decision)`, each `[N]`.
    public func feedbackScores(_ images: Tensor, detector: AnomalyDetector, temperature: Float) -> (residual: [Float], decision: [Float]) {
        var residual: [Float] = [], decision: [Float] = []
        for range in images.batchRanges() {
            let parts = feedbackScores(Variable(images.slice(range)), detector: detector, temperature: temperature)
            residual += parts.residual!.value.storage
            decision += parts.decision.value.storage
        }
        return (residual, decision)
    }
}
