/// Anomaly-score statistics and the thresholds built from them (paper Eq. 7, with
/// the standard deviation the authors' code uses instead of the printed sigma/n).
public struct ScoreStatistics: Equatable, Sendable {
    /// Mean score.
    public let mean: Float
    /// Population standard deviation (ddof = 0).
    public let standardDeviation: Float
    /// Number of scores.
    public let count: Int

    /// Statistics given directly (read back from a file).
    public init(mean: Float, standardDeviation: Float, count: Int) {
        self.mean = mean
        self.standardDeviation = standardDeviation
        self.count = count
    }

    /// Statistics of `scores` (accumulated in Double).
    public init(_ scores: [Float]) {
        precondition(!scores.isEmpty, "score statistics need at least one score")
        let n = Double(scores.count)
        let mean = scores.reduce(0.0) { $0 + Double($1) } / n
        let variance = scores.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        self.mean = Float(mean)
        self.standardDeviation = Float(variance.squareRoot())
        self.count = scores.count
    }

    /// `alpha = mean + z * std`.
    public func threshold(z: Float) -> Float { mean + z * standardDeviation }
}

/// Threshold arithmetic. An input is flagged when its score is strictly above the threshold.
///
/// This is the package's one threshold-at-a-false-positive-rate formula;
/// `FittedThreshold` (Baselines) and `Metrics.threshold(forFalsePositiveRate:)`
/// (Evaluation) call it.
public enum Threshold {
    /// The smallest observed score `t` such that at most `k = floor(rate * n)` of the
    /// `n` `scores` lie strictly above it: the threshold that fixes the false-positive
    /// rate on these (clean, held-out) scores at `rate` or just below.
    ///
    /// With sorted scores `s[0] <= ... <= s[n-1]` it is `s[n - 1 - k]` (`k` at most
    /// `n - 1`, so rate 1 gives the smallest score). `k` is computed as
    /// `floor(rate * n + 1e-9)` so that a product such as `0.29 * 100 = 28.999...`
    /// still allows 29. Ties at the threshold are not flagged, so the realised rate can
    /// be below `rate` but never above it.
    public static func atFalsePositiveRate<T: BinaryFloatingPoint>(_ rate: Double, scores: [T]) -> T {
        precondition(
            !scores.isEmpty && rate >= 0 && rate <= 1, "need scores and a rate in [0, 1], got \(scores.count) scores and rate \(rate)")
        precondition(!scores.contains { $0.isNaN }, "threshold: a score is NaN; fix the detector that produced it")
        let sorted = scores.sorted()
        let allowed = min(Int((rate * Double(sorted.count) + 1e-9).rounded(.down)), sorted.count - 1)
        return sorted[sorted.count - 1 - allowed]
    }

    /// Fraction of `scores` strictly above `threshold`.
    public static func flaggedFraction(_ scores: [Float], threshold: Float) -> Double {
        guard !scores.isEmpty else { return 0 }
        return Double(scores.filter { $0 > threshold }.count) / Double(scores.count)
    }
}
