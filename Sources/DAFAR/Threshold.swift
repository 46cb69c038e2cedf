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
public enum Threshold {
    /// The smallest observed score `t` such that at most `floor(rate * n)` of `scores`
    /// lie strictly above it: the threshold that fixes the false-positive rate on
    /// these (clean, held-out) scores at `rate` or just below.
    public static func atFalsePositiveRate(_ rate: Double, scores: [Float]) -> Float {
        precondition(!scores.isEmpty && rate >= 0 && rate < 1, "need scores and a rate in [0, 1), got \(rate)")
        let sorted = scores.sorted()
        let allowed = Int((rate * Double(sorted.count)).rounded(.down))
        return sorted[sorted.count - 1 - allowed]
    }

    /// Fraction of `scores` strictly above `threshold`.
    public static func flaggedFraction(_ scores: [Float], threshold: Float) -> Double {
        guard !scores.isEmpty else { return 0 }
        return Double(scores.filter { $0 > threshold }.count) / Double(scores.count)
    }
}
