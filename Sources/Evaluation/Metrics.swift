import Foundation
import Reporting
import Tensors

/// How many inputs a detector flagged (`score > threshold`) out of how many.
public struct DetectionCounts: Equatable, Sendable, JSONRepresentable {
    /// Inputs flagged as adversarial.
    public let flagged: Int
    /// Inputs examined.
    public let total: Int

    /// Counts given directly.
    public init(flagged: Int, total: Int) {
        precondition(
            total >= 0 && (0...max(total, 0)).contains(flagged),
            "DetectionCounts: need 0 <= flagged <= total, got \(flagged)/\(total)")
        self.flagged = flagged
        self.total = total
    }

    /// Counts the scores strictly above `threshold` (the one flagging rule of the module).
    public init<T: BinaryFloatingPoint>(scores: [T], threshold: Double) {
        let values = Metrics.checkedScores(scores)
        self.init(
            flagged: values.reduce(0) { Metrics.isFlagged($1, threshold: threshold) ? $0 + 1 : $0 },
            total: values.count)
    }

    /// `flagged / total` with its interval.
    public var rate: Rate { Rate(flagged, of: total) }

    /// `{flagged, total, rate}`.
    public var json: JSONValue { ["flagged": .int(flagged), "total": .int(total), "rate": rate.json] }
}

/// Detection on adversarial examples, counted separately on those that fooled
/// the classifier (successful) and those that did not (failed), as detector
/// evaluations must report them.
public struct AdversarialDetection: Equatable, Sendable, JSONRepresentable {
    /// Detection among adversarial examples that changed the prediction (the number that matters).
    public let successful: DetectionCounts
    /// Detection among attack attempts that left the prediction correct.
    public let failed: DetectionCounts

    /// Splits `scores` by `attackSucceeded` (same order, same count) and counts `score > threshold`.
    public init<T: BinaryFloatingPoint>(scores: [T], attackSucceeded: [Bool], threshold: Double) {
        precondition(
            scores.count == attackSucceeded.count,
            "AdversarialDetection: \(scores.count) scores but \(attackSucceeded.count) success flags")
        var flagged = (successful: 0, failed: 0)
        let successes = attackSucceeded.filter { $0 }.count
        for (score, succeeded) in zip(Metrics.checkedScores(scores), attackSucceeded)
        where Metrics.isFlagged(score, threshold: threshold) {
            if succeeded { flagged.successful += 1 } else { flagged.failed += 1 }
        }
        successful = DetectionCounts(flagged: flagged.successful, total: successes)
        failed = DetectionCounts(flagged: flagged.failed, total: scores.count - successes)
    }

    /// Both groups together.
    public var all: DetectionCounts {
        DetectionCounts(flagged: successful.flagged + failed.flagged, total: successful.total + failed.total)
    }

    /// Attack success rate: successful examples among all attempts.
    public var attackSuccess: Rate { Rate(successful.total, of: successful.total + failed.total) }

    /// `{successful, failed, all, attackSuccess}`.
    public var json: JSONValue {
        ["successful": successful.json, "failed": failed.json, "all": all.json, "attackSuccess": attackSuccess.json]
    }
}

/// A detector's operating point at a false-positive rate fixed on clean data:
/// the threshold, the false-positive rate it gives and the true-positive rate there.
public struct OperatingPoint: Equatable, Sendable, JSONRepresentable {
    /// The false-positive rate the threshold was chosen for (e.g. 0.01, 0.05).
    public let targetFalsePositiveRate: Double
    /// Threshold; inputs with `score > threshold` are flagged.
    public let threshold: Double
    /// Clean inputs flagged (measured on the evaluation clean scores).
    public let falsePositives: Rate
    /// Adversarial inputs flagged.
    public let truePositives: Rate

    /// Chooses the threshold on `calibrationScores` (held-out clean data when
    /// available, otherwise pass the evaluation clean scores) with
    /// `Metrics.threshold(forFalsePositiveRate:cleanScores:)`, then measures
    /// false positives on `cleanScores` and true positives on `adversarialScores`.
    public init<T: BinaryFloatingPoint>(
        targetFalsePositiveRate: Double, calibrationScores: [T],
        cleanScores: [T], adversarialScores: [T]
    ) {
        self.targetFalsePositiveRate = targetFalsePositiveRate
        threshold = Metrics.threshold(forFalsePositiveRate: targetFalsePositiveRate, cleanScores: calibrationScores)
        falsePositives = DetectionCounts(scores: cleanScores, threshold: threshold).rate
        truePositives = DetectionCounts(scores: adversarialScores, threshold: threshold).rate
    }

    /// `{targetFalsePositiveRate, threshold, falsePositives, truePositives}`.
    public var json: JSONValue {
        [
            "targetFalsePositiveRate": .number(targetFalsePositiveRate), "threshold": .number(threshold),
            "falsePositives": falsePositives.json, "truePositives": truePositives.json
        ]
    }
}

/// Metric functions over predictions and anomaly scores (higher = more anomalous).
///
/// Scores may be infinite but never NaN: a NaN score is a bug upstream and stops
/// the program with a message instead of being silently counted either way.
public enum Metrics {
    /// The module's single flagging rule: an input is flagged when `score > threshold`.
    @inlinable
    public static func isFlagged(_ score: Double, threshold: Double) -> Bool { score > threshold }

    /// Fraction of `predictions` equal to `labels` (same count).
    public static func accuracy(predictions: [Int], labels: [Int]) -> Rate {
        precondition(
            predictions.count == labels.count,
            "accuracy: \(predictions.count) predictions but \(labels.count) labels")
        return Rate(zip(predictions, labels).reduce(0) { $1.0 == $1.1 ? $0 + 1 : $0 }, of: labels.count)
    }

    /// Fraction of clean inputs with `score > threshold`.
    public static func falsePositiveRate<T: BinaryFloatingPoint>(cleanScores: [T], threshold: Double) -> Rate {
        DetectionCounts(scores: cleanScores, threshold: threshold).rate
    }

    /// The lowest threshold (a clean score value) that flags at most
    /// `floor(rate · n)` of the `n` clean scores, i.e. gives FPR <= `rate`.
    ///
    /// With sorted clean scores `s[0] <= ... <= s[n-1]` and `k = floor(rate · n)`
    /// it is `s[n - k - 1]`; ties at the threshold are not flagged, so the
    /// realised FPR can be below `rate` but never above it. Computed by
    /// `Threshold.atFalsePositiveRate` (Tensors) (the package's one copy of the formula), in Double.
    public static func threshold<T: BinaryFloatingPoint>(forFalsePositiveRate rate: Double, cleanScores: [T]) -> Double {
        precondition(rate >= 0 && rate < 1, "threshold(forFalsePositiveRate:): the rate must be in [0, 1), got \(rate)")
        precondition(!cleanScores.isEmpty, "threshold(forFalsePositiveRate:): no clean scores to calibrate on")
        return Threshold.atFalsePositiveRate(rate, scores: checkedScores(cleanScores))
    }

    /// True-positive rate at a false-positive rate fixed on the same clean scores
    /// (use `OperatingPoint(targetFalsePositiveRate:calibrationScores:...)` to
    /// calibrate on held-out clean data instead).
    public static func truePositiveRate<T: BinaryFloatingPoint>(
        atFalsePositiveRate rate: Double, cleanScores: [T],
        adversarialScores: [T]
    ) -> OperatingPoint {
        OperatingPoint(
            targetFalsePositiveRate: rate, calibrationScores: cleanScores,
            cleanScores: cleanScores, adversarialScores: adversarialScores)
    }

    /// Scores as doubles; traps with a message on NaN (`Samples.checked`).
    static func checkedScores<T: BinaryFloatingPoint>(_ scores: [T]) -> [Double] { Samples.checked(scores) }
}
