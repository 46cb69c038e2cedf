import Autodiff
import NeuralNetworks
import Tensors

/// DAFAR's detector C: an autoencoder on reconstruction residuals `delta = x - D(E(x))`
/// whose reconstruction distance `||delta - C(delta)||` is the anomaly score.
public final class AnomalyDetector: @unchecked Sendable {
    // Sendable on the contract of `Parameter`: the calibration and the score definition are set
    // while the detector is fitted, by the one task that fits it; a detector in use is only read.

    /// Elements of one residual (`C * H * W`).
    public let inputSize: Int
    /// Hidden sizes of the encoder half (`[256, 128, 64]` for 28 x 28 x 1).
    public let hiddenSizes: [Int]
    /// The norm of the score (L2 as in the paper, L1 optional).
    public let norm: ReconstructionNorm
    /// C: `detector.N.*`.
    public let network: Sequential
    /// Threshold state, set after training.
    public var calibration: Calibration?
    /// What the verdict scores: the paper's residual score (default), decision feedback or both
    /// fused; the calibration's statistics and thresholds are of this score.
    public var scoreDefinition = FeedbackScore.residual

    /// How the detector turns scores into a verdict.
    public struct Calibration: Sendable {
        /// Where `statistics` were computed (`validation` or `train`).
        public var statisticsSource: String
        /// Mean and standard deviation of clean scores.
        public var statistics: ScoreStatistics
        /// z in `alpha = mean + z * std`.
        public var z: Float
        /// Thresholds that give a fixed false-positive rate on held-out clean data, keyed by rate.
        public var thresholdsAtRate: [Double: Float]
        /// The threshold used for verdicts (`alpha` unless chosen otherwise).
        public var active: Float

        /// `mean + z * std`.
        public var alpha: Float { statistics.threshold(z: z) }

        public init(
            statisticsSource: String, statistics: ScoreStatistics, z: Float, thresholdsAtRate: [Double: Float], active: Float? = nil
        ) {
            self.statisticsSource = statisticsSource
            self.statistics = statistics
            self.z = z
            self.thresholdsAtRate = thresholdsAtRate
            self.active = active ?? statistics.threshold(z: z)
        }
    }

    /// The paper's default hidden sizes for an input of `inputSize` elements.
    public static func defaultHiddenSizes(inputSize: Int) -> [Int] {
        inputSize >= 3072 ? [512, 256, 100] : [256, 128, 64]
    }

    /// A freshly initialised detector (seeded PyTorch default initialisation).
    public init(inputSize: Int, hiddenSizes: [Int]? = nil, norm: ReconstructionNorm = .l2, seed: UInt64) {
        precondition(norm != .mse, "the anomaly score is an L2 or L1 norm")
        var generator = SeededGenerator(seed: seed)
        self.inputSize = inputSize
        self.hiddenSizes = hiddenSizes ?? Self.defaultHiddenSizes(inputSize: inputSize)
        self.norm = norm
        network = makeDetectorNetwork(inputSize: inputSize, hiddenSizes: self.hiddenSizes, using: &generator)
    }

    /// Parameters named as in the state_dict (`detector.0.weight`, ...).
    public var namedParameters: [NamedParameter] { prefixed("detector", network.namedParameters) }

    /// C(delta) for residuals `[N, ...]` -> `[N, inputSize]`.
    public func reconstruct(_ residual: Variable) -> Variable {
        network(residual.flattened())
    }

    /// Anomaly scores `||delta - C(delta)||` for residuals `[N, ...]` -> `[N]`, differentiable.
    public func score(residual: Variable) -> Variable {
        let flat = residual.flattened()
        return norm.perSample(flat, network(flat))
    }

    /// Training loss of Eq. 6: mean over the batch of `||delta - C(delta)||_2`
    /// (MSE when `mse` is chosen, which trains more smoothly).
    public func loss(residual: Variable, objective: ReconstructionNorm) -> Variable {
        let flat = residual.flattened()
        return objective.perSample(flat, network(flat)).mean()
    }
}
