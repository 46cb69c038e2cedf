import Foundation

/// Samples (scores, distances) as the statistics of this package read them.
public enum Samples {
    /// `values` as doubles; traps with a message on NaN (a NaN score is a bug in whatever produced it).
    public static func checked<T: BinaryFloatingPoint>(_ values: [T]) -> [Double] {
        let doubles = values.map(Double.init)
        if let index = doubles.firstIndex(where: { $0.isNaN }) {
            preconditionFailure("Evaluation metrics: score #\(index) of \(doubles.count) is NaN; fix the detector that produced it")
        }
        return doubles
    }
}

/// Equal-width histogram of a score distribution.
public struct Histogram: Equatable, Sendable, JSONRepresentable {
    /// Bin edges, `counts.count + 1` increasing values.
    public let edges: [Double]
    /// Number of samples per bin; bin `i` is `[edges[i], edges[i+1])`, the last bin is closed.
    public let counts: [Int]
    /// Number of samples counted (samples outside the range are not counted).
    public var total: Int { counts.reduce(0, +) }

    /// Bins `samples` into `bins` equal bins over `range` (default: the samples'
    /// minimum to maximum, widened by 0.5 on each side when all are equal, `0...1`
    /// when there are none). Traps on NaN samples.
    public init<T: BinaryFloatingPoint>(samples: [T], bins: Int, range: ClosedRange<Double>? = nil) {
        precondition(bins > 0, "Histogram: bins must be positive, got \(bins)")
        let values = Samples.checked(samples).filter(\.isFinite)
        var bounds = range ?? ((values.min() ?? 0)...(values.max() ?? 1))
        if bounds.lowerBound == bounds.upperBound { bounds = (bounds.lowerBound - 0.5)...(bounds.upperBound + 0.5) }
        precondition(bounds.lowerBound.isFinite && bounds.upperBound.isFinite, "Histogram: the range must be finite")
        let width = (bounds.upperBound - bounds.lowerBound) / Double(bins)
        edges = (0...bins).map { $0 == bins ? bounds.upperBound : bounds.lowerBound + Double($0) * width }
        var counts = [Int](repeating: 0, count: bins)
        for value in values where bounds.contains(value) {
            counts[min(bins - 1, Int((value - bounds.lowerBound) / width))] += 1
        }
        self.counts = counts
    }

    /// Bin centres.
    public var centers: [Double] { zip(edges, edges.dropFirst()).map { ($0 + $1) / 2 } }

    /// Proportion density per bin, `count / (total · width)`: the bars integrate to 1
    /// (all zeros when empty).
    public var densities: [Double] {
        let total = Double(self.total)
        return zip(counts, zip(edges, edges.dropFirst())).map { count, edge in
            total == 0 ? 0 : Double(count) / (total * (edge.1 - edge.0))
        }
    }

    /// `{edges, counts}`.
    public var json: JSONValue { ["edges": .numbers(edges), "counts": .array(counts.map { .int($0) })] }
}

/// Gaussian kernel density estimate `f(x) = 1/(n·h) Σ φ((x - xᵢ)/h)`, used for
/// the score-density figures (paper Fig. 4 and 5).
///
/// The default bandwidth is Silverman's rule of thumb
/// `h = 0.9 · min(σ, IQR/1.34) · n^(-1/5)` (σ the sample standard deviation,
/// IQR from linearly interpolated quartiles); when that is zero the non-zero
/// one of σ and IQR/1.34 is used, and for identical samples
/// `h = max(0.01 · |x|, 1e-3)`, so the estimate is always a proper density.
public struct KernelDensity: Equatable, Sendable {
    /// The finite samples the estimate is built on.
    public let samples: [Double]
    /// Kernel standard deviation.
    public let bandwidth: Double

    /// An estimate over `samples` (NaN traps; infinite samples are dropped).
    /// With no samples the density is zero everywhere.
    public init<T: BinaryFloatingPoint>(samples: [T], bandwidth: Double? = nil) {
        let values = Samples.checked(samples).filter(\.isFinite)
        if let bandwidth {
            precondition(bandwidth > 0 && bandwidth.isFinite, "KernelDensity: bandwidth must be positive, got \(bandwidth)")
        }
        self.samples = values
        self.bandwidth = bandwidth ?? KernelDensity.silvermanBandwidth(values)
    }

    /// Silverman's rule-of-thumb bandwidth (see the type's documentation); 1 for no samples.
    public static func silvermanBandwidth(_ samples: [Double]) -> Double {
        guard !samples.isEmpty else { return 1 }
        let n = Double(samples.count)
        let mean = samples.reduce(0, +) / n
        let variance = samples.count > 1 ? samples.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1) : 0
        let sorted = samples.sorted()
        let spreads = [variance.squareRoot(), (quantile(sorted, 0.75) - quantile(sorted, 0.25)) / 1.34]
        let scale = spreads.filter { $0 > 0 }.min() ?? 0
        guard scale > 0 else { return max(0.01 * abs(mean), 1e-3) }
        return 0.9 * scale * pow(n, -0.2)
    }

    /// The estimated density at `x`.
    public func density(at x: Double) -> Double {
        guard !samples.isEmpty else { return 0 }
        let normalizer = 1 / (Double(samples.count) * bandwidth * (2 * Double.pi).squareRoot())
        return normalizer
            * samples.reduce(0) { sum, sample in
                let u = (x - sample) / bandwidth
                return sum + exp(-0.5 * u * u)
            }
    }

    /// The density at every grid point.
    public func evaluate(on grid: [Double]) -> [Double] { grid.map(density(at:)) }

    /// `count` evenly spaced points from `lower` to `upper` inclusive (one point when `count == 1`).
    public static func grid(from lower: Double, to upper: Double, count: Int) -> [Double] {
        precondition(count > 0, "KernelDensity.grid: count must be positive, got \(count)")
        guard count > 1 else { return [lower] }
        let step = (upper - lower) / Double(count - 1)
        return (0..<count).map { $0 == count - 1 ? upper : lower + Double($0) * step }
    }

    /// A grid covering every estimate's samples padded by `padding` bandwidths,
    /// so that several densities can be drawn on one axis; `0...1` when all are empty.
    public static func grid(covering estimates: [KernelDensity], count: Int = 256, padding: Double = 3) -> [Double] {
        let ranges = estimates.compactMap { estimate -> (Double, Double)? in
            guard let low = estimate.samples.min(), let high = estimate.samples.max() else { return nil }
            return (low - padding * estimate.bandwidth, high + padding * estimate.bandwidth)
        }
        guard let lower = ranges.map(\.0).min(), let upper = ranges.map(\.1).max() else {
            return grid(from: 0, to: 1, count: count)
        }
        return grid(from: lower, to: upper, count: count)
    }

    /// Linearly interpolated quantile of sorted values (type 7 in R).
    public static func quantile(_ sorted: [Double], _ probability: Double) -> Double {
        let position = probability * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down)), upper = min(lower + 1, sorted.count - 1)
        return sorted[lower] + (position - Double(lower)) * (sorted[upper] - sorted[lower])
    }
}
