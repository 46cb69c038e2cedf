import Tensors

/// A detection threshold fitted on the scores of CLEAN validation images so that a
/// chosen fraction of them is flagged at most (the baselines' operating point).
///
/// With `n` clean scores and a false-positive rate `r`, let `k = floor(r * n)`. The
/// threshold is the smallest observed clean score `t` with at most `k` clean scores
/// strictly above it, i.e. the `(n - k)`-th smallest score `s_(n-k)` (1-based). An
/// image is flagged when `score > t`, so on the fitting scores the false-positive rate
/// is at most `k / n <= r` (exactly `k / n` when the top `k + 1` scores are distinct).
/// This is MagNet's rule (`sort(marks)[-k]`, flag `> thr`) without its off-by-one at `k = 0`;
/// the value comes from `Threshold.atFalsePositiveRate` (Tensors), the package's one copy of the formula.
public struct FittedThreshold: Equatable, Sendable, CustomStringConvertible {
    /// The threshold: flagged when `score > value`.
    public let value: Float
    /// The false-positive rate asked for, in `[0, 1]`.
    public let falsePositiveRate: Double
    /// Number of clean scores it was fitted on.
    public let fittedCount: Int

    /// Fits the threshold on clean validation scores.
    /// - Precondition: at least one score, every score finite, `falsePositiveRate` in `[0, 1]`.
    public init(cleanScores: [Float], falsePositiveRate: Double) {
        precondition(!cleanScores.isEmpty, "a threshold needs at least one clean validation score")
        precondition(
            falsePositiveRate >= 0 && falsePositiveRate <= 1,
            "false-positive rate must be in [0, 1], got \(falsePositiveRate)")
        precondition(cleanScores.allSatisfy(\.isFinite), "clean validation scores must be finite (a NaN or infinity was given)")
        self.value = Threshold.atFalsePositiveRate(falsePositiveRate, scores: cleanScores)
        self.falsePositiveRate = falsePositiveRate
        self.fittedCount = cleanScores.count
    }

    /// A threshold with a known value (restored from a file, or set by hand).
    public init(value: Float, falsePositiveRate: Double, fittedCount: Int) {
        self.value = value
        self.falsePositiveRate = falsePositiveRate
        self.fittedCount = fittedCount
    }

    /// Whether `score` is flagged as adversarial: `score > value`.
    @inlinable public func isFlagged(_ score: Float) -> Bool { score > value }

    /// `isFlagged` for every score.
    public func flags(_ scores: [Float]) -> [Bool] { scores.map(isFlagged) }

    /// Fraction of `scores` that are flagged (the observed FPR on clean scores, the TPR on adversarial ones).
    public func flaggedFraction(_ scores: [Float]) -> Double {
        scores.isEmpty ? 0 : Double(scores.lazy.filter(isFlagged).count) / Double(scores.count)
    }

    public var description: String {
        "threshold \(value) (clean FPR <= \(falsePositiveRate) on \(fittedCount) validation scores)"
    }
}
