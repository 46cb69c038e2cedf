import Foundation
import Reporting

/// One point of a ROC curve: the rates obtained by flagging `score > threshold`.
public struct ROCPoint: Equatable, Sendable {
    /// Fraction of clean (negative) scores above the threshold.
    public let falsePositiveRate: Double
    /// Fraction of adversarial (positive) scores above the threshold.
    public let truePositiveRate: Double
    /// The threshold that gives this point under the rule `score > threshold`.
    public let threshold: Double

    /// A point given directly.
    public init(falsePositiveRate: Double, truePositiveRate: Double, threshold: Double) {
        self.falsePositiveRate = falsePositiveRate
        self.truePositiveRate = truePositiveRate
        self.threshold = threshold
    }
}

/// The ROC curve of a detector: clean scores are negatives, adversarial scores
/// positives, higher scores are more anomalous.
///
/// There is one point per distinct score value, from `(0, 0)` (threshold = the
/// largest score) to `(1, 1)` (threshold just below the smallest score). Tied
/// scores enter together, so a tie between a clean and an adversarial score
/// gives a diagonal segment. The trapezoid area under these points equals the
/// Mann-Whitney statistic `P(adv > clean) + 0.5 · P(adv == clean)` exactly.
public struct ROCCurve: Equatable, Sendable, JSONRepresentable {
    /// Points sorted by threshold, descending; both rates are non-decreasing.
    public let points: [ROCPoint]
    /// Number of clean scores.
    public let negatives: Int
    /// Number of adversarial scores.
    public let positives: Int
    /// Area under the curve (trapezoid rule), computed from integer counts.
    public let auc: Double

    /// Builds the curve; `nil` when either list is empty (the curve is undefined,
    /// e.g. when an attack succeeded on no input). Traps on NaN scores.
    public init?<T: BinaryFloatingPoint>(cleanScores: [T], adversarialScores: [T]) {
        guard !cleanScores.isEmpty, !adversarialScores.isEmpty else { return nil }
        let negativesSorted = Metrics.checkedScores(cleanScores).sorted(by: >)
        let positivesSorted = Metrics.checkedScores(adversarialScores).sorted(by: >)
        let n = negativesSorted.count, p = positivesSorted.count
        var points = [
            ROCPoint(
                falsePositiveRate: 0, truePositiveRate: 0,
                threshold: max(negativesSorted[0], positivesSorted[0]))
        ]
        var falsePositives = 0, truePositives = 0
        var twiceArea = 0  // Σ ΔFP · (TP_before + TP_after), in counts
        while falsePositives < n || truePositives < p {
            // Next distinct score value, taken from both lists at once.
            let nextNegative = falsePositives < n ? negativesSorted[falsePositives] : -Double.infinity
            let nextPositive = truePositives < p ? positivesSorted[truePositives] : -Double.infinity
            let value = max(nextNegative, nextPositive)
            let truePositivesBefore = truePositives, falsePositivesBefore = falsePositives
            while falsePositives < n && negativesSorted[falsePositives] == value { falsePositives += 1 }
            while truePositives < p && positivesSorted[truePositives] == value { truePositives += 1 }
            twiceArea += (falsePositives - falsePositivesBefore) * (truePositivesBefore + truePositives)
            // Every score >= value is now flagged: the same set as `score > value.nextDown`.
            points.append(
                ROCPoint(
                    falsePositiveRate: Double(falsePositives) / Double(n),
                    truePositiveRate: Double(truePositives) / Double(p),
                    threshold: value.nextDown))
        }
        self.points = points
        self.negatives = n
        self.positives = p
        self.auc = Double(twiceArea) / (2 * Double(n) * Double(p))
    }

    /// Trapezoid area under `points` computed from the rates (equals `auc` up to rounding).
    public var trapezoidArea: Double {
        zip(points, points.dropFirst()).reduce(0) { area, segment in
            let (a, b) = segment
            return area + (b.falsePositiveRate - a.falsePositiveRate) * (a.truePositiveRate + b.truePositiveRate) / 2
        }
    }

    /// The best true-positive rate among points with false-positive rate <= `rate`
    /// (no interpolation: a threshold that achieves it exists).
    public func truePositiveRate(atFalsePositiveRate rate: Double) -> Double {
        points.filter { $0.falsePositiveRate <= rate + 1e-12 }.map(\.truePositiveRate).max() ?? 0
    }

    /// `{auc, negatives, positives, falsePositiveRates, truePositiveRates, thresholds}`.
    public var json: JSONValue {
        [
            "auc": .number(auc), "negatives": .int(negatives), "positives": .int(positives),
            "falsePositiveRates": .numbers(points.map(\.falsePositiveRate)),
            "truePositiveRates": .numbers(points.map(\.truePositiveRate)),
            "thresholds": .numbers(points.map(\.threshold))
        ]
    }
}
