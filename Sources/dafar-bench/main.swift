import ArgumentParser
import Benchmarking
import Foundation
import Tensors

/// `dafar-bench`: speed and memory figures of the toolkit on the MNIST network of Table 1.
@main
struct DAFARBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dafar-bench",
        abstract: "Measure GEMM, convolution, training, inference and attack speed, and training memory.",
        discussion: """
            MNIST network of Table 1, batch 128, float32, synthetic images. Each figure is the median of several \
            timed repetitions after a warm-up, shown with its minimum and maximum. Build with -c release \
            (`make bench`); `make bench-compare` runs the same workloads in PyTorch and prints the ratios. \
            The joint training step and PGD-40 are also given as a share of the FMA peak measured in the same \
            run (images/s x the matrix products' GFLOP per image, in the JSON details: gflop_per_image, \
            percent_of_fma_peak, fma_peak_gflops); the peak is the best sample of an FMA loop run at the start \
            and again at the end of the run. A run that does not measure the peak (--only) leaves the share out.

            On a virtual machine the host may place the cores near each other or far apart and move them; \
            core_round_trip_ns (a cache line's trip to a second thread and back: about 50 ns near, 400 far here) \
            says which, and every timed figure is marked [cores near], [cores far] or [cores moved (...)] from \
            the same probe taken before and after it. Figures that hand data between threads often (batch 1, \
            detector training) run up to a third slower on far cores.
            """)

    @Option(help: "Threads for OpenBLAS and the Swift kernels (default: all cores).")
    var threads: Int?

    @Flag(help: "Print the figures as one JSON object (keys as in Benchmarks/compare/compare.py) instead of a table.")
    var json = false

    @Flag(help: "A tiny workload that only checks that every figure can be produced (for tests).")
    var quick = false

    @Option(
        help: """
            Measure only the figures whose JSON key contains this text, or only the one it names in full (for \
            profiling), e.g. joint_train.
            """
    )
    var only: String?

    @Flag(
        help: """
            Print the per-layer profile (Markdown tables: FLOPs, time, GFLOP/s, share, % of the measured FMA peak) \
            of a joint training step, a PGD step and inference at batch 128 and 1 instead of the figures.
            """)
    var profile = false

    @Flag(help: .hidden)
    var trainingMemoryChild = false

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024, got \(threads)") }
    }

    func run() throws {
        let threadCount = threads ?? Parallel.availableCores
        Parallel.setThreadCount(threadCount)
        let suite = BenchmarkSuite(settings: quick ? .quick : .init())
        if profile {
            print(try LayerProfiler.report(batchSize: quick ? 8 : 128, threads: threadCount, repetitions: quick ? 1 : 7))
            return
        }
        if trainingMemoryChild {
            print("peak_rss_mib=\(try suite.trainingPeakResidentMiB())")
            return
        }
        // The memory figure first, in a fresh process, so that nothing else this run allocates counts.
        var memory: [Figure] = []
        if BenchmarkSuite.wanted("peak_rss_mib", only: only) {
            let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
            memory = [
                try BenchmarkSuite.measureInChild(
                    executable: executable,
                    arguments: ["--training-memory-child", "--threads", String(threadCount)] + (quick ? ["--quick"] : []))
            ]
        }
        let figures =
            try suite.run(only: only) { label in
                if !json { FileHandle.standardError.write("measuring \(label)...\n".data(using: .utf8)!) }
            } + memory
        let report = BenchmarkReport(figures: figures, machine: BenchmarkReport.machineDescription(threads: threadCount, quick: quick))
        print(json ? try report.json() : report.table)
    }
}
