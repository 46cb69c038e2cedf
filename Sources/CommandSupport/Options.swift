import ArgumentParser
import NeuralNetworks
import DAFAR
import Datasets
import Foundation
import Tensors
import ToolkitCore

extension DatasetName: ExpressibleByArgument {}
extension ReconstructionNorm: ExpressibleByArgument {}
extension ScoreKind: ExpressibleByArgument {}

/// Which split of a dataset a tool reads (`--split`).
public enum SplitChoice: String, CaseIterable, ExpressibleByArgument, Sendable {
    case test, validation, train

    /// The images of this split.
    public func images(of splits: DatasetSplits) -> LabeledImages {
        switch self {
        case .test: return splits.test
        case .validation: return splits.validation
        case .train: return splits.train
        }
    }
}

/// Which clean scores give the detector's mean and standard deviation (`--statistics-on`).
public enum StatisticsSource: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// The held-out validation split (default: training scores run low on small data).
    case validation
    /// The training split (the paper).
    case train
}

/// Which threshold a detector's verdicts use (`--threshold`).
public enum ThresholdChoice: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// `mean + z * std` of clean scores (the paper's rule).
    case alpha
    /// 1 % false positives on the validation split.
    case fpr1
    /// 5 % false positives on the validation split.
    case fpr5

    /// The threshold of this choice in `calibration`.
    public func value(in calibration: AnomalyDetector.Calibration) -> Float {
        switch self {
        case .alpha: return calibration.alpha
        case .fpr1: return calibration.thresholdsAtRate[0.01]!
        case .fpr5: return calibration.thresholdsAtRate[0.05]!
        }
    }
}
extension OptimizerKind: ExpressibleByArgument {}
extension LearningRateSchedule: ExpressibleByArgument {}

/// Dataset options shared by every command.
public struct DataOptions: ParsableArguments {
    @Option(help: "Dataset: mnist5k (default; `make data` fetches it), fashion-mnist, mnist or cifar10 (the last two read --data-dir).")
    public var dataset: DatasetName = .mnist5k

    @Option(help: "Folder holding the dataset files (default: ./data for mnist5k, /usr/share/datasets/fashion-mnist for fashion-mnist).")
    public var dataDir: String?

    @Option(parsing: .unconditional, help: "Fraction of the training split held out as clean validation data for thresholds (0 < f < 0.5).")
    public var validationFraction: Double = 0.1

    @Option(parsing: .unconditional, help: "Use at most this many training and test images (quick runs).")
    public var limit: Int?

    public init() {}

    public func validate() throws {
        guard validationFraction > 0 && validationFraction < 0.5 else {
            throw ValidationError("--validation-fraction must be in (0, 0.5), got \(validationFraction)")
        }
        if let limit, limit < 10 { throw ValidationError("--limit must be at least 10, got \(limit)") }
    }

    /// Loads the splits (seeded validation hold-out).
    public func load(seed: UInt64) throws -> DatasetSplits {
        try DatasetLoader.load(
            dataset, dataDirectory: dataDir.map { URL(fileURLWithPath: $0) },
            validationFraction: validationFraction, seed: seed, limit: limit)
    }
}

/// The training settings shared by the tools that train (dafar-train, dafar-detector): how long, in
/// what steps, how fast, from which seed. Each tool adds its own (optimizer, architecture, score...).
public struct TrainingOptions: ParsableArguments {
    @Option(
        parsing: .unconditional,
        help: "Training epochs (default: dafar-train 30 for fewer than 10000 training images, as MNIST-5k, else 15; dafar-detector 30).")
    public var epochs: Int?

    @Option(
        parsing: .unconditional,
        help:
            "Examples per training step (images for dafar-train, clean residuals for dafar-detector); under mpirun or srun the global batch, split evenly across the ranks."
    )
    public var batchSize = 64

    @Option(parsing: .unconditional, help: "Learning rate (the optimizer's step size).")
    public var learningRate: Float = 1e-3

    @Option(parsing: .unconditional, help: "Seed of the initialisation, the validation split and the shuffling.")
    public var seed: UInt64 = 0

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Examples per gradient group (0 = no groups).",
            discussion:
                "Each batch is cut into groups of about this many examples whose gradients are summed exactly (fixed point), so that the same seed gives the same model in one process and under mpirun on any number of ranks (up to batch-size / this many ranks share the work). 0 computes each batch (each rank's part of it) in one pass: slightly faster, but the model then depends on the number of ranks."
        ))
    public var gradientGroupSize = 32

    public init() {}

    public func validate() throws {
        if let epochs, epochs < 1 || epochs > 100_000 {
            throw ValidationError(
                epochs < 1 ? "--epochs must be at least 1, got \(epochs)" : "--epochs must be at most 100000, got \(epochs)")
        }
        guard batchSize >= 1 && batchSize <= 65536 else {
            throw ValidationError("--batch-size must be between 1 and 65536, got \(batchSize)")
        }
        guard learningRate > 0 && learningRate.isFinite && learningRate < 10 else {
            throw ValidationError("--learning-rate must be a positive number below 10, got \(learningRate)")
        }
        guard gradientGroupSize >= 0 && gradientGroupSize <= 65536 else {
            throw ValidationError("--gradient-group-size must be between 0 and 65536, got \(gradientGroupSize)")
        }
    }

    /// Gradient groups per batch (0 without groups).
    public var groupsPerBatch: Int { gradientGroupSize > 0 ? max(1, (batchSize + gradientGroupSize - 1) / gradientGroupSize) : 0 }

    /// How much of a batch each of `ranks` ranks computes, such as "1-2 gradient groups of about 32 examples".
    public func batchShare(ranks: Int) -> String {
        let units = gradientGroupSize > 0 ? groupsPerBatch : batchSize
        let (low, high) = (units / ranks, (units + ranks - 1) / ranks)
        return (low == high ? "\(low)" : "\(low)-\(high)")
            + (gradientGroupSize > 0 ? " gradient groups of about \(gradientGroupSize) examples" : " examples")
    }

    /// A warning when some of `ranks` ranks would have no gradient group of a full batch to compute.
    public func idleRanksWarning(ranks: Int) -> String? {
        guard ranks > 1, gradientGroupSize > 0, groupsPerBatch < ranks else { return nil }
        let idle = ranks - groupsPerBatch
        return
            "warning: a batch of \(batchSize) makes \(groupsPerBatch) gradient group\(groupsPerBatch == 1 ? "" : "s") for \(ranks) ranks, "
            + "so \(idle) rank\(idle == 1 ? " waits" : "s wait"); "
            + "use --batch-size \(ranks * gradientGroupSize) or more, or a smaller --gradient-group-size (the model changes with either)"
    }
}

/// Threading and output-verbosity options shared by every command.
public struct RuntimeOptions: ParsableArguments {
    @Option(
        parsing: .unconditional,
        help:
            "Worker threads; every GEMM and convolution is split across them (OpenBLAS itself runs single-threaded). Default: all cores. Use 1 for bit-identical reruns."
    )
    public var threads: Int?

    @Flag(help: "Print only the final results (no progress bar).")
    public var quiet = false

    public init() {}

    public func validate() throws {
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024, got \(threads)") }
    }

    /// Applies the thread count.
    public func apply() {
        Parallel.setThreadCount(threads ?? Parallel.availableCores)
    }
}

/// Runs a command body, turning a `ToolkitError` into one line on standard error
/// and the sysexits status of its cause. Libraries speak of settings, not options: `hint`
/// may name the command-line options that change the setting an error is about, and is
/// appended to the line (before its final period).
public func reportingErrors(hint: (ToolkitError) -> String? = { _ in nil }, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ToolkitError {
        var line = error.description
        if let hint = hint(error) { line = line.hasSuffix(".") ? line.dropLast() + " " + hint + "." : line + " " + hint }
        printError("error: \(printable(line))")
        throw ExitCode(error.cause.exitStatus)
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        printError("error: \(printable(error.localizedDescription))")
        throw ExitCode(ExitStatus.software)
    }
}

/// Writes a line to standard error.
public func printError(_ line: String) {
    FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
}

/// An output path that cannot be written.
public struct OutputPathError: ToolkitError {
    public let description: String
    public var cause: ErrorCause { .cannotCreate }
}

/// Checks before long work that `path`'s folder exists and `path` is not a folder.
public func checkOutputPath(_ path: String) throws {
    let url = URL(fileURLWithPath: path)
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw OutputPathError(description: "output \(path) is a folder; give a file name")
    }
    let folder = url.deletingLastPathComponent().path
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw OutputPathError(description: "cannot write \(path): folder \(folder) does not exist")
    }
    guard FileManager.default.isWritableFile(atPath: folder) else {
        throw OutputPathError(description: "cannot write \(path): folder \(folder) is not writable")
    }
}

/// Checks that an input file exists and is a regular file.
public func checkInputFile(_ path: String, what: String) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw InputPathError(description: "\(what) \(path) does not exist")
    }
    if isDirectory.boolValue { throw InputPathError(description: "\(what) \(path) is a folder, not a file") }
    guard FileManager.default.isReadableFile(atPath: path) else { throw InputPathError(description: "\(what) \(path) is not readable") }
}

/// An input path that cannot be read.
public struct InputPathError: ToolkitError {
    public let description: String
    public var cause: ErrorCause { .missingInput }
}
