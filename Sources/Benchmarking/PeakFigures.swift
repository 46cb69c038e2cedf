import Tensors
import _CoreRoundTrip
import _FMALoop

/// The machine's FP32 peak: what every GFLOP/s figure is a share of.
public enum PeakFigures {
    /// GFLOP/s of `Parallel.threadCount` concurrent FMA loops (`fma_loop_run`: twelve independent FMAs
    /// per round on the widest vectors the CPU has, AVX-512 or AVX2; `avx2Only`: AVX2 even where
    /// AVX-512 exists), one value per repetition. The best repetition is the peak; on a machine shared
    /// with other work a repetition measures less.
    public static func fmaGFLOPS(warmup: Int, repetitions: Int, rounds: Int64 = 20_000_000, avx2Only: Bool = false) -> [Double] {
        let threads = Parallel.threadCount
        func run() -> Double {
            var flops = [Double](repeating: 0, count: threads)
            let seconds = flops.withUnsafeMutableBufferPointer { done in
                let base = done.baseAddress!
                return Stopwatch.seconds {
                    Parallel.forEach(chunks: threads, of: threads) { chunk, _ in
                        base[chunk] = avx2Only ? fma_loop_run_avx2(rounds) : fma_loop_run(rounds)
                    }
                }
            }
            return flops.reduce(0, +) / seconds / 1e9
        }
        for _ in 0..<warmup { _ = run() }
        return (0..<repetitions).map { _ in run() }
    }

    /// Whether the loop runs AVX2 FMAs (else a portable multiply-add loop, which is not the peak).
    public static var usesFMA: Bool { fma_loop_supported() != 0 }

    /// What the peak loop runs: "AVX-512 FMA", "AVX2 FMA" or "portable loop, not FMA".
    public static var instructions: String {
        switch fma_loop_width() {
        case 512: return "AVX-512 FMA"
        case 256: return "AVX2 FMA"
        default: return "portable loop, not FMA"
        }
    }

    /// Nanoseconds per round trip of one cache line between two threads of this process, one value per
    /// repetition of `roundTrips` trips (`core_round_trip_nanoseconds`); NaN where the second thread
    /// could not run. On a virtual machine the host places the two cores: near each other (a shared
    /// cache, about 50 ns here) or far apart (about 400 ns), and moves them now and then. Every parallel
    /// region pays the round trip a few times, and each thread reads data that the other wrote, so
    /// the figures with short regions (inference at batch 1, detector training) depend on it.
    public static func coreRoundTripNanoseconds(warmup: Int, repetitions: Int, roundTrips: Int64 = 100_000) -> [Double] {
        func run() -> Double {
            let nanoseconds = core_round_trip_nanoseconds(roundTrips)
            return nanoseconds > 0 ? nanoseconds : .nan
        }
        for _ in 0..<warmup { _ = run() }
        return (0..<repetitions).map { _ in run() }
    }

    /// "near" (under 150 ns), "far" or "unknown" (NaN) for a round trip in nanoseconds.
    public static func placement(roundTripNanoseconds nanoseconds: Double) -> String {
        nanoseconds.isNaN ? "unknown" : nanoseconds < 150 ? "near" : "far"
    }
}
