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
        precondition(
            (0...denominator).contains(numerator),
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
        precondition(
            trials >= 0 && (0...max(trials, 0)).contains(successes),
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
        [
            "numerator": .int(numerator), "denominator": .int(denominator), "value": .number(value),
            "wilson95": .numbers([wilson95.lowerBound, wilson95.upperBound])
        ]
    }

    /// Rates are equal when their counts are equal (an empty rate equals itself).
    public static func == (lhs: Rate, rhs: Rate) -> Bool {
        lhs.numerator == rhs.numerator && lhs.denominator == rhs.denominator
    }
}
