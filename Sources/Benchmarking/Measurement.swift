import Dispatch
import Foundation

/// One measured figure: the median of several repetitions with their minimum and maximum.
public struct Figure: Sendable {
    /// The JSON key (`joint_train_images_per_s`).
    public let key: String
    /// What was measured, for the table.
    public let label: String
    /// The unit of the values (`images/s`, `GFLOP/s`, `MiB`, or empty for a ratio).
    public let unit: String
    /// Median of the repetitions.
    public let median: Double
    /// Smallest repetition.
    public let minimum: Double
    /// Largest repetition.
    public let maximum: Double
    /// Number of repetitions.
    public let repetitions: Int
    /// The two threads' cache-line round trip (ns) measured right before and right after the figure
    /// (`PeakFigures.coreRoundTripNanoseconds`), for the figures that run on two or more threads: it tells
    /// whether the host placed the cores near each other (about 50 ns) or far apart (about 400 ns).
    public var roundTrip: (before: Double, after: Double)?
    /// The matrix products' GFLOP behind one unit of the figure (one image of a training step or an attack),
    /// for a rate figure that the report also gives as a share of the FMA peak measured in the same run.
    public var gflopPerUnit: Double?

    /// A figure from the value of each repetition.
    public init(key: String, label: String, unit: String, samples: [Double]) {
        precondition(!samples.isEmpty, "figure \(key) has no samples")
        let sorted = samples.sorted()
        self.key = key
        self.label = label
        self.unit = unit
        median = Self.median(sorted: sorted)
        minimum = sorted.first!
        maximum = sorted.last!
        repetitions = samples.count
    }

    /// The median of `values` (the mean of the middle two for an even count); `values` must not be empty.
    static func median(_ values: [Double]) -> Double { median(sorted: values.sorted()) }

    private static func median(sorted: [Double]) -> Double {
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}

/// Wall-clock timing with warm-up and repetitions.
public enum Stopwatch {
    /// Seconds since an arbitrary fixed point (monotonic).
    public static var now: Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

    /// Seconds taken by `body`.
    public static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = now
        try body()
        return now - start
    }

    /// Runs `body` `warmup` times untimed, then `repetitions` times timed; returns the seconds of each timed run.
    public static func repeated(warmup: Int, repetitions: Int, _ body: () throws -> Void) rethrows -> [Double] {
        for _ in 0..<warmup { try body() }
        return try (0..<repetitions).map { _ in try seconds(body) }
    }

    /// `work / seconds` for every timed run of `body` (images/s when `work` counts images).
    public static func rates(warmup: Int, repetitions: Int, work: Double, _ body: () throws -> Void) rethrows -> [Double] {
        try repeated(warmup: warmup, repetitions: repetitions, body).map { work / max($0, 1e-12) }
    }
}

/// The process's memory high-water mark.
public enum ProcessMemory {
    /// Peak resident set size (`VmHWM` of /proc/self/status) in MiB, or nil where /proc is missing.
    public static var peakResidentMiB: Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kib = Double(fields[1]) else { return nil }
            return kib / 1024
        }
        return nil
    }
}
