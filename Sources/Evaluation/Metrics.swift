import DAFAR
import Foundation

/// A proportion `numerator / denominator` that keeps its counts and a Wilson
/// 95 % score interval, so that no rate is ever reported without its sample size.
///
/// An empty rate (`denominator == 0`) has `value` NaN (undefined, never a fake
/// 0), the interval `0...1`, prints as `n/a (0/0)` and is written to JSON as `null`.
public struct Rate: Equatable, Sendable, CustomStringConvertible, JSONRepresentable {
    /// Number of events counted (correct predictions, flagged inputs, ...).
    public let numerator: Int
    /// Number of trials.
    public let denominator: Int
    /// `numerator / denominator`, NaN when `denominator == 0`.
    public let value: Double
    /// Wilson score interval at 95 % confidence (z = 1.96), within `0...1`.
    public let wilson95: ClosedRange<Double>

    /// Two-sided 95 % normal quantile used for `wilson95`.
    public static let z95 = 1.959963984540054

    /// A rate of `numerator` events in `denominator` trials.
    public init(_ numerator: Int, of denominator: Int) {
        precondition(denominator >= 0, "Rate: the denominator must be >= 0, got \(denominator)")
        precondition((0...denominator).contains(numerator),
                     "Rate: the numerator must be in 0...\(denominator), got \(numerator)")
        self.numerator = numerator
        self.denominator = denominator
        self.value = denominator == 0 ? .nan : Double(numerator) / Double(denominator)
        self.wilson95 = Rate.wilsonInterval(successes: numerator, trials: denominator)
    }

    /// True when there were no trials and the rate is undefined.
    public var isEmpty: Bool { denominator == 0 }

    /// Wilson score interval for a binomial proportion:
    /// `(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`, clamped to `0...1`.
    /// With no trials the whole interval `0...1` is returned.
    public static func wilsonInterval(successes: Int, trials: Int, z: Double = Rate.z95) -> ClosedRange<Double> {
        precondition(trials >= 0 && (0...max(trials, 0)).contains(successes),
                     "wilsonInterval: need 0 <= successes <= trials, got \(successes)/\(trials)")
        precondition(z > 0 && z.isFinite, "wilsonInterval: z must be positive and finite, got \(z)")
        guard trials > 0 else { return 0...1 }
        let n = Double(trials)
        let p = Double(successes) / n
        let z2 = z * z
        let denominator = 1 + z2 / n
        let center = (p + z2 / (2 * n)) / denominator
        let halfWidth = z / denominator * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot()
        let lower = successes == 0 ? 0 : max(0, center - halfWidth)
        let upper = successes == trials ? 1 : min(1, center + halfWidth)
        return lower...upper
    }

    /// `97.3 % (973/1000)`; `n/a (0/0)` when empty.
    public func formatted(decimals: Int = 1) -> String {
        let counts = "(\(numerator)/\(denominator))"
        guard !isEmpty else { return "n/a \(counts)" }
        return String(format: "%.\(max(0, decimals))f %% ", value * 100) + counts
    }

    /// Same as `formatted()`.
    public var description: String { formatted() }

    /// `{numerator, denominator, value, wilson95: [lower, upper]}`.
    public var json: JSONValue {
        ["numerator": .int(numerator), "denominator": .int(denominator), "value": .number(value),
         "wilson95": .numbers([wilson95.lowerBound, wilson95.upperBound])]
    }

    /// Rates are equal when their counts are equal (an empty rate equals itself).
    public static func == (lhs: Rate, rhs: Rate) -> Bool {
        lhs.numerator == rhs.numerator && lhs.denominator == rhs.denominator
    }
}

/// How many inputs a detector flagged (`score > threshold`) out of how many.
public struct DetectionCounts: Equatable, Sendable, JSONRepresentable {
    /// Inputs flagged as adversarial.
    public let flagged: Int
    /// Inputs examined.
    public let total: Int

    /// Counts given directly.
    public init(flagged: Int, total: Int) {
        precondition(total >= 0 && (0...max(total, 0)).contains(flagged),
                     "DetectionCounts: need 0 <= flagged <= total, got \(flagged)/\(total)")
        self.flagged = flagged
        self.total = total
    }

    /// Counts the scores strictly above `threshold` (the one flagging rule of the module).
    public init<T: BinaryFloatingPoint>(scores: [T], threshold: Double) {
        let values = Metrics.checkedScores(scores)
        self.init(flagged: values.reduce(0) { Metrics.isFlagged($1, threshold: threshold) ? $0 + 1 : $0 },
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
        precondition(scores.count == attackSucceeded.count,
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
    public init<T: BinaryFloatingPoint>(targetFalsePositiveRate: Double, calibrationScores: [T],
                                        cleanScores: [T], adversarialScores: [T]) {
        self.targetFalsePositiveRate = targetFalsePositiveRate
        threshold = Metrics.threshold(forFalsePositiveRate: targetFalsePositiveRate, cleanScores: calibrationScores)
        falsePositives = DetectionCounts(scores: cleanScores, threshold: threshold).rate
        truePositives = DetectionCounts(scores: adversarialScores, threshold: threshold).rate
    }

    /// `{targetFalsePositiveRate, threshold, falsePositives, truePositives}`.
    public var json: JSONValue {
        ["targetFalsePositiveRate": .number(targetFalsePositiveRate), "threshold": .number(threshold),
         "falsePositives": falsePositives.json, "truePositives": truePositives.json]
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
        precondition(predictions.count == labels.count,
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
    /// realised FPR can be below `rate` but never above it. Computed by DAFAR's
    /// `Threshold.atFalsePositiveRate` (the package's one copy of the formula), in Double.
    public static func threshold<T: BinaryFloatingPoint>(forFalsePositiveRate rate: Double, cleanScores: [T]) -> Double {
        precondition(rate >= 0 && rate < 1, "threshold(forFalsePositiveRate:): the rate must be in [0, 1), got \(rate)")
        precondition(!cleanScores.isEmpty, "threshold(forFalsePositiveRate:): no clean scores to calibrate on")
        return Threshold.atFalsePositiveRate(rate, scores: checkedScores(cleanScores))
    }

    /// True-positive rate at a false-positive rate fixed on the same clean scores
    /// (use `OperatingPoint(targetFalsePositiveRate:calibrationScores:...)` to
    /// calibrate on held-out clean data instead).
    public static func truePositiveRate<T: BinaryFloatingPoint>(atFalsePositiveRate rate: Double, cleanScores: [T],
                                                                adversarialScores: [T]) -> OperatingPoint {
        OperatingPoint(targetFalsePositiveRate: rate, calibrationScores: cleanScores,
                       cleanScores: cleanScores, adversarialScores: adversarialScores)
    }

    /// Scores as doubles; traps with a message on NaN.
    static func checkedScores<T: BinaryFloatingPoint>(_ scores: [T]) -> [Double] {
        let values = scores.map(Double.init)
        if let index = values.firstIndex(where: { $0.isNaN }) {
            preconditionFailure("Evaluation metrics: score #\(index) of \(values.count) is NaN; fix the detector that produced it")
        }
        return values
    }
}
