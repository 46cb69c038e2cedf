import Foundation
import Tensors

/// The figures as a table for people and as JSON for `Benchmarks/compare/`.
public struct BenchmarkReport {
    public let figures: [Figure]
    /// Machine and settings, for the JSON `machine` object and the table's heading.
    public let machine: [String: String]

    public init(figures: [Figure], machine: [String: String]) {
        self.figures = figures
        self.machine = machine
    }

    /// What identifies the run: CPU, cores, threads, OpenBLAS core.
    public static func machineDescription(threads: Int, quick: Bool) -> [String: String] {
        var cpu = "unknown"
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
            let colon = line.firstIndex(of: ":")
        {
            cpu = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return [
            "cpu": cpu, "cores": String(Parallel.availableCores), "threads": String(threads),
            "blas": "OpenBLAS \(BLAS.coreName)"
                + (ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"].map { " (OPENBLAS_CORETYPE=\($0))" } ?? ""),
            "vector_isa": PeakFigures.instructions, "framework": "DAFAR-Swift", "workload": quick ? "quick" : "full"
        ]
    }

    /// The FMA peak of this run (GFLOP/s), if it was measured: the best of the FMA loop's samples, taken at the
    /// start and at the end of the run (the loop cannot run faster than the machine; a slower sample is the host
    /// or another process taking part of a core), so the shares divide by what the machine showed it can do.
    var fmaPeak: Double? { figures.first { $0.key == "fp32_fma_peak_gflops" }?.maximum }

    /// A fixed-width table: figure, median, min, max, unit.
    public var table: String {
        let header = machine.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        var lines = [
            header, "",
            pad("figure", 34) + pad("median", 11, right: true) + pad("min", 11, right: true)
                + pad("max", 11, right: true) + "  unit"
        ]
        let peak = fmaPeak
        for f in figures {
            // a rate with its GEMM work: also as a share of the FMA peak of this run
            let share = f.gflopPerUnit.flatMap { gflop in
                peak.map { String(format: "  (%.1f %% of the FMA peak)", 100 * f.median * gflop / $0) }
            }
            lines.append(
                pad(f.key, 34) + pad(format(f.median), 11, right: true) + pad(format(f.minimum), 11, right: true)
                    + pad(format(f.maximum), 11, right: true) + "  " + (f.unit.isEmpty ? "ratio" : f.unit)
                    + "  " + f.label + (f.roundTrip.map { "  [cores \(Self.placement($0))]" } ?? "") + (share ?? ""))
        }
        if let note = Self.forcedCoreNote() { lines += ["", note] }
        return lines.joined(separator: "\n")
    }

    /// A note when `OPENBLAS_CORETYPE` keeps OpenBLAS on AVX2 kernels on a CPU with AVX-512 (where
    /// PyTorch and ONNX Runtime use AVX-512): every GEMM then runs at most at the AVX2 peak.
    public static func forcedCoreNote(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard let forced = environment["OPENBLAS_CORETYPE"], PeakFigures.instructions == "AVX-512 FMA",
            !["skylakex", "cooperlake", "sapphirerapids"].contains(BLAS.coreName.lowercased())
        else { return nil }
        return "note: OPENBLAS_CORETYPE=\(forced) keeps OpenBLAS on its \(BLAS.coreName) (AVX2) kernels on a CPU with AVX-512; "
            + "without it OpenBLAS picks its AVX-512 kernels (see Benchmarks/README.md)"
    }

    /// `{"<key>": median, ..., "details": {"<key>": {"median", "min", "max", "unit", "repetitions", "label"}}, "machine": {...}}`.
    public func json() throws -> String {
        var object: [String: Any] = [:]
        var details: [String: Any] = [:]
        let peak = fmaPeak
        for f in figures {
            object[f.key] = f.median
            var entry: [String: Any] = [
                "median": f.median, "min": f.minimum, "max": f.maximum, "unit": f.unit,
                "repetitions": f.repetitions, "label": f.label
            ]
            if let trip = f.roundTrip {
                entry["round_trip_ns"] = [trip.before, trip.after].map { $0.isFinite ? $0 as Any : NSNull() }
                entry["cores"] = Self.placement(trip)
            }
            if let gflop = f.gflopPerUnit {
                entry["gflop_per_image"] = gflop
                if let peak { (entry["percent_of_fma_peak"], entry["fma_peak_gflops"]) = (100 * f.median * gflop / peak, peak) }
            }
            details[f.key] = entry
        }
        object["details"] = details
        object["machine"] = machine
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// "near", "far" or "moved" (near before the figure and far after, or the other way).
    static func placement(_ trip: (before: Double, after: Double)) -> String {
        let before = PeakFigures.placement(roundTripNanoseconds: trip.before)
        let after = PeakFigures.placement(roundTripNanoseconds: trip.after)
        return before == after ? before : "moved (\(before) -> \(after))"
    }

    func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return right ? fill + s : s + fill
    }

    func format(_ value: Double) -> String {
        if value.isNaN { return "n/a" }
        return value >= 100 ? String(format: "%.0f", value) : (value >= 1 ? String(format: "%.1f", value) : String(format: "%.3f", value))
    }
}
