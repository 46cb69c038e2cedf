import Autodiff
import DAFAR
import Foundation
import Tensors

/// The figures of `dafar-bench` (issue 6), measured for the MNIST network of Table 1.
///
/// Each figure is timed after a warm-up over several repetitions and reported as the
/// median with the minimum and maximum. Rates count images per second of wall-clock time.
public struct BenchmarkSuite {
    /// How much work each figure does.
    public struct Settings: Sendable {
        /// Images per batch (128 for the figures).
        public var batchSize = 128
        /// Side of the square product (`BLAS.gemm`) of `sgemm_gflops`.
        public var sgemmSize = 1024
        /// Untimed runs before the timed ones.
        public var warmup = 2
        /// Timed repetitions of each figure.
        public var repetitions = 5
        /// Training steps per repetition of `joint_train_images_per_s`.
        public var jointSteps = 3
        /// Training steps per repetition of `detector_train_images_per_s`.
        public var detectorSteps = 20
        /// Calls per repetition of the batch inference figure.
        public var inferenceCalls = 5
        /// Calls per repetition of the single-image inference figure.
        public var singleImageCalls = 200
        /// Attack runs per repetition of `fgsm_images_per_s`.
        public var fgsmCalls = 3
        /// Steps of the PGD figure.
        public var pgdSteps = 40
        /// Adam iterations of the CW figure (one binary-search step).
        public var carliniWagnerIterations = 100
        /// Images and epochs of the training run whose peak memory is reported.
        public var memoryRunImages = 5000, memoryRunEpochs = 1

        /// The full workload.
        public init() {}

        /// A tiny workload for tests: every figure is produced, none means anything.
        public static var quick: Settings {
            var s = Settings()
            (s.batchSize, s.sgemmSize, s.warmup, s.repetitions) = (8, 64, 0, 1)
            (s.jointSteps, s.detectorSteps, s.inferenceCalls, s.singleImageCalls, s.fgsmCalls) = (1, 1, 1, 2, 1)
            (s.pgdSteps, s.carliniWagnerIterations, s.memoryRunImages) = (2, 2, 32)
            return s
        }
    }

    /// Whether `--only only` measures the figure `key`: every figure without `only`, only `key` when `only`
    /// is one of `keys`, else every figure whose key contains `only`.
    public static func wanted(_ key: String, only: String?) -> Bool {
        guard let only else { return true }
        return keys.contains(only) ? key == only : key.contains(only)
    }

    /// The keys every report has, in table order.
    public static let keys = [
        "fp32_fma_peak_gflops", "core_round_trip_ns", "sgemm_gflops", "conv_forward_efficiency", "conv_backward_efficiency",
        "conv_transpose_forward_efficiency", "conv_transpose_backward_efficiency",
        "joint_train_images_per_s", "detector_train_images_per_s",
        "inference_images_per_s_batch128", "inference_images_per_s_batch1",
        "fgsm_images_per_s", "pgd40_images_per_s", "cw_images_per_s", "peak_rss_mib"
    ]

    public let settings: Settings

    public init(settings: Settings) { self.settings = settings }

    /// Measures every figure but the peak memory (which `measureInChild` takes in a fresh process),
    /// or only those whose key contains `only` (only that figure when `only` is a whole key, so that
    /// `inference_images_per_s_batch1` leaves out `_batch128`). `progress` receives each figure's label
    /// before it is measured.
    public func run(only: String? = nil, progress: (String) -> Void = { _ in }) throws -> [Figure] {
        let s = settings
        var figures: [Figure] = []
        func wanted(_ key: String) -> Bool { Self.wanted(key, only: only) }
        func rate(
            _ key: String, _ label: String, images: Int, calls: Int, warmup: Int? = nil, gflopPerImage: Double? = nil,
            _ body: () throws -> Void
        ) rethrows {
            guard wanted(key) else { return }
            progress(label)
            let before = roundTrip()
            let samples = try Stopwatch.rates(warmup: warmup ?? s.warmup, repetitions: s.repetitions, work: Double(images * calls)) {
                for _ in 0..<calls { try body() }
            }
            var figure = Figure(key: key, label: label, unit: "images/s", samples: samples)
            figure.gflopPerUnit = gflopPerImage
            if let before, let after = roundTrip() { figure.roundTrip = (before, after) }
            figures.append(figure)
        }
        // The cores' placement around a figure (nil on one thread): the median of 5 x 4000 trips (1-6 ms; a
        // burst that another process or the host preempts reads 10x too long), after 2 ms in which the pool's
        // worker stops spinning and sleeps (spinning, it would take turns with the probe's threads).
        func roundTrip() -> Double? {
            guard Parallel.threadCount > 1 else { return nil }
            usleep(2000)
            return Figure.median(PeakFigures.coreRoundTripNanoseconds(warmup: 0, repetitions: 5, roundTrips: 4_000))
        }

        // The FMA loop at the start of the run and again at its end (the figure holds both sets of samples): the
        // host can slow a VM for seconds at a time, and the peak a share divides by is the best of the samples.
        func peakSamples() -> [Double] {
            PeakFigures.fmaGFLOPS(warmup: s.warmup, repetitions: s.repetitions, rounds: s.repetitions > 1 ? 20_000_000 : 100_000)
        }
        var peakAtStart: [Double] = []
        if wanted("fp32_fma_peak_gflops") {
            progress("FP32 FMA peak, \(Parallel.threadCount) thread(s)")
            peakAtStart = peakSamples()
            if PeakFigures.instructions == "AVX-512 FMA" {
                figures.append(
                    Figure(
                        key: "fp32_fma_peak_avx2_gflops", label: "FMA loop (AVX2 FMA), \(Parallel.threadCount) thread(s)",
                        unit: "GFLOP/s",
                        samples: PeakFigures.fmaGFLOPS(
                            warmup: s.warmup, repetitions: s.repetitions, rounds: s.repetitions > 1 ? 20_000_000 : 100_000,
                            avx2Only: true)))
            }
        }
        if wanted("core_round_trip_ns") {  // on its own second thread, whatever --threads says
            progress("cache-line round trip between two threads")
            let samples = PeakFigures.coreRoundTripNanoseconds(
                warmup: min(1, s.warmup), repetitions: s.repetitions, roundTrips: s.repetitions > 1 ? 100_000 : 1_000)
            if samples.allSatisfy(\.isFinite) {  // else the second thread never ran: no figure
                figures.append(
                    Figure(
                        key: "core_round_trip_ns", label: "cache-line round trip between two threads (cores near: ~50 ns, far: ~400)",
                        unit: "ns", samples: samples))
            }
        }
        if wanted("sgemm_gflops") {
            progress("sgemm \(s.sgemmSize)^3")
            figures.append(
                Figure(
                    key: "sgemm_gflops",
                    label: "sgemm \(s.sgemmSize)^3 (BLAS.gemm: \(BLAS.kernelApplies(k: s.sgemmSize) ? "AVX-512 kernel" : "OpenBLAS"))",
                    unit: "GFLOP/s",
                    samples: KernelFigures.sgemmGFLOPS(size: s.sgemmSize, warmup: s.warmup, repetitions: s.repetitions)))
        }

        let work = try ModelWorkloads(architecture: .mnist, batchSize: s.batchSize)
        var cases: [KernelFigures.ConvolutionCase] = []
        for backward in [false, true] {
            let pass = backward ? "backward" : "forward"
            guard wanted("conv_\(pass)_efficiency") else { continue }
            if cases.isEmpty {
                cases = KernelFigures.convolutionCases(
                    features: work.network.features, imageShape: Architecture.mnist.inputShape,
                    batchSize: s.batchSize)
            }
            progress("conv \(pass)")
            figures.append(
                Figure(
                    key: "conv_\(pass)_efficiency", label: "conv \(pass) / sgemm on its GEMM shapes", unit: "",
                    samples: KernelFigures.convolutionEfficiency(
                        cases, backward: backward, warmup: s.warmup,
                        repetitions: s.repetitions)))
        }
        var transposedCases: [KernelFigures.TransposedConvolutionCase] = []
        for backward in [false, true] {
            let pass = backward ? "backward" : "forward"
            guard wanted("conv_transpose_\(pass)_efficiency") else { continue }
            if transposedCases.isEmpty {
                let image = Variable(Tensor.zeros([1] + Architecture.mnist.inputShape))
                let code = work.network.features(image, layers: 0..<work.network.feedbackLayer).shape.dropFirst()
                transposedCases = KernelFigures.transposedConvolutionCases(
                    decoder: work.network.decoder, codeShape: Array(code),
                    batchSize: s.batchSize)
            }
            progress("conv-transpose \(pass)")
            figures.append(
                Figure(
                    key: "conv_transpose_\(pass)_efficiency",
                    label: "conv-transpose \(pass) / sgemm on its GEMM shapes", unit: "",
                    samples: KernelFigures.transposedConvolutionEfficiency(
                        transposedCases, backward: backward,
                        warmup: s.warmup, repetitions: s.repetitions)))
        }
        let n = s.batchSize
        // the GEMM work per image of the joint step and of a PGD step, to give those rates as shares of the peak
        let flops = LayerProfiler.flopsPerImage(work)
        try rate(
            "joint_train_images_per_s", "joint training step (E+F+D, Eq. 5, Adam)", images: n, calls: s.jointSteps,
            gflopPerImage: flops.jointStep / 1e9
        ) {
            try work.jointTrainStep()
        }
        rate("detector_train_images_per_s", "detector training step (C, Eq. 6, Adam)", images: n, calls: s.detectorSteps) {
            work.detectorTrainStep()
        }
        // The key names the batch of the full run; quick runs fill it with their small batch.
        rate(
            "inference_images_per_s_batch128", "inference, batch \(n) (classify+reconstruct+score)",
            images: n, calls: s.inferenceCalls
        ) { _ = work.inspect(count: n) }
        rate(
            "inference_images_per_s_batch1", "inference, batch 1", images: 1, calls: s.singleImageCalls,
            warmup: s.warmup * 5
        ) { _ = work.inspect(count: 1) }
        let fgsm = try ModelWorkloads.fgsm(), pgd = try ModelWorkloads.pgd(steps: s.pgdSteps)
        let cw = try ModelWorkloads.carliniWagner(iterations: s.carliniWagnerIterations)
        rate("fgsm_images_per_s", "FGSM (L-inf, eps 0.3)", images: n, calls: s.fgsmCalls) { _ = work.attack(fgsm) }
        rate(
            "pgd40_images_per_s", "PGD-\(s.pgdSteps) (L-inf, eps 0.3, step 0.01)", images: n, calls: 1,
            warmup: min(1, s.warmup), gflopPerImage: flops.attackStep * Double(s.pgdSteps) / 1e9
        ) { _ = work.attack(pgd) }
        rate(
            "cw_images_per_s", "CW-L2 (\(s.carliniWagnerIterations) iterations, 1 search step)", images: n, calls: 1,
            warmup: min(1, s.warmup)
        ) { _ = work.attack(cw) }
        if !peakAtStart.isEmpty {
            progress("FP32 FMA peak again, at the end of the run")
            figures.insert(
                Figure(
                    key: "fp32_fma_peak_gflops",
                    label: "FMA loop (\(PeakFigures.instructions)), \(Parallel.threadCount) thread(s), at the start and the end",
                    unit: "GFLOP/s", samples: peakAtStart + peakSamples()), at: 0)
        }
        return figures
    }

    /// Runs the training run of the memory figure in this process and returns its peak RSS in MiB.
    /// Call it in a fresh process (see `dafar-bench`): the figure is the high-water mark of that process.
    public func trainingPeakResidentMiB() throws -> Double {
        try ModelWorkloads.trainingRun(
            images: settings.memoryRunImages, batchSize: settings.batchSize,
            epochs: settings.memoryRunEpochs)
        return ProcessMemory.peakResidentMiB ?? .nan
    }

    /// The peak RSS figure from a child process: runs `executable` with `arguments`, which must
    /// print `peak_rss_mib=<value>` (what `dafar-bench --training-memory-child` prints).
    public static func measureInChild(executable: String, arguments: [String]) throws -> Figure {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0,
            let line = output.split(separator: "\n").last(where: { $0.hasPrefix("peak_rss_mib=") }),
            let value = Double(line.dropFirst("peak_rss_mib=".count))
        else {
            throw BenchmarkError("the training-memory child process failed (status \(process.terminationStatus)): \(output)")
        }
        return Figure(
            key: "peak_rss_mib", label: "peak RSS of a training run (child process, VmHWM)", unit: "MiB",
            samples: [value])
    }
}

/// A benchmark that could not run, with a sentence saying why.
public struct BenchmarkError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
