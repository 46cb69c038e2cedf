import Attacks
import DAFAR
import Tensors
import ToolkitCore

/// The experiments of `dafar-eval`: the paper's section 5 and 6 and what a sound
/// detector evaluation adds to them.
public enum ExperimentKind: String, CaseIterable, Sendable, Comparable {
    /// Table 2: mean L2 distance of the features `E(x')` from `E(x)` for Gaussian noise,
    /// random sign noise, FGSM and PGD of one L-inf size.
    case features
    /// Fig. 4: distributions of the reconstruction distance `||x - D(E(x))||_2` per FGSM intensity.
    case reconstruction
    /// Fig. 5: distributions of DAFAR's anomaly score with its thresholds.
    case scores
    /// Fig. 6: detection rate versus FGSM intensity for every detector, beside the
    /// flag rate of random sign noise of the same L-inf size (the control).
    case intensity
    /// Fig. 7: detection rate across FGSM, PGD, CW-L2 and JSMA for every detector, each
    /// beside random sign noise of the same per-image L-inf size.
    case attacks
    /// Fig. 8: accuracy of DAFAR + median filter on a 1:1 clean/adversarial mix versus intensity.
    case filter
    /// The adaptive PGD attack (knows DAFAR's detector) swept over lambda and eps.
    case adaptive
    /// ROC curves, ROC-AUC and the true-positive rate at 1 % and 5 % false positives.
    case roc

    /// Where the experiment comes from.
    public var title: String {
        switch self {
        case .features: return "Table 2: feature interference"
        case .reconstruction: return "Fig. 4: reconstruction distances"
        case .scores: return "Fig. 5: anomaly scores"
        case .intensity: return "Fig. 6: detection versus FGSM intensity, with the noise control"
        case .attacks: return "Fig. 7: detection across attacks, with the noise control"
        case .filter: return "Fig. 8: DAFAR + median filter on a 1:1 clean/adversarial mix"
        case .adaptive: return "Adaptive attack (beyond the paper)"
        case .roc: return "ROC curves (beyond the paper)"
        }
    }

    /// True when the experiment compares all four detectors (needs the baselines trained).
    public var needsBaselines: Bool { self == .intensity || self == .attacks || self == .roc }

    public static func < (a: ExperimentKind, b: ExperimentKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Parses `features,scores` or `all`; throws with the valid names on a bad entry.
    public static func parseList(_ text: String) throws -> [ExperimentKind] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if names == ["all"] { return allCases }
        var result: [ExperimentKind] = []
        for name in names {
            guard let kind = ExperimentKind(rawValue: name) else {
                throw ExperimentError(
                    "unknown experiment '\(name)'; choose from all, "
                        + allCases.map(\.rawValue).joined(separator: ", "))
            }
            if !result.contains(kind) { result.append(kind) }
        }
        guard !result.isEmpty else { throw ExperimentError("the list of experiments names none") }
        return result.sorted()
    }
}

/// Everything that decides what `ExperimentRunner` measures. Defaults follow the
/// paper and the reference libraries; `dafar-eval` exposes each as an option.
public struct ExperimentSettings: Sendable {
    /// The experiments to run.
    public var experiments: [ExperimentKind] = ExperimentKind.allCases
    /// Test images for FGSM, the noise controls and Table 2 (the first N of the test split).
    public var count = 1000
    /// FGSM intensities of Fig. 4-6 and 8 (the paper: 0.05 ... 0.4).
    public var epsilons: [Float] = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]
    /// The L-inf budget of Table 2 and of FGSM/PGD in Fig. 7 (the paper: 0.3).
    public var epsilon: Float = 0.3
    /// Test images attacked with PGD (nil: `count`).
    public var pgdCount: Int?
    /// PGD iterations (step 0.01, random start, as cleverhans).
    public var pgdSteps = 40
    /// Test images attacked with CW-L2 and JSMA (slow attacks).
    public var slowCount = 100
    /// CW-L2 Adam iterations per binary-search step and search steps (cleverhans v3: 1000, 5).
    public var cwSteps = 1000
    public var cwBinarySteps = 5
    /// CW-L2 initial constant c and Adam learning rate (cleverhans v3: 1e-2, 5e-3).
    public var cwInitialConstant: Float = 1e-2
    public var cwLearningRate: Float = 5e-3
    /// Test images of each adaptive-attack run.
    public var adaptiveCount = 100
    /// Adaptive PGD: lambdas, budgets and iterations.
    public var adaptiveLambdas: [Float] = [0, 0.1, 1, 10]
    public var adaptiveEpsilons: [Float] = [0.1, 0.2, 0.3]
    public var adaptiveSteps = 100
    /// Epochs of the MagNet autoencoder and of the binary classifier detector.
    public var baselineEpochs = 10
    /// Training images turned into FGSM examples to train the binary classifier detector.
    public var binaryTrainingCount = 2000
    /// The false-positive rate all detectors are compared at (fitted on clean validation images).
    public var operatingRate = 0.05
    /// Temperature T of DAFAR's decision-feedback score (when the detector file does not set one).
    public var decisionTemperature: Float = FeedbackScore.defaultTemperature
    /// Images per attack batch.
    public var batchSize = 100
    /// Seed of the noise, the random starts and the baselines' training.
    public var seed: UInt64 = 0
    /// Makes the progress reporter of one stage (`label`, `total` units of work); silent by
    /// default, the command-line tools pass terminal progress bars.
    public var progress: @Sendable (_ label: String, _ total: Int) -> any ProgressReporter = { _, _ in SilentProgress() }

    public init() {}

    /// Throws an `ExperimentError` naming the first setting out of range.
    public func validate() throws {
        func check(_ condition: Bool, _ message: String) throws { if !condition { throw ExperimentError(message) } }
        try check(count >= 1, "the image count must be at least 1, got \(count)")
        try check(!epsilons.isEmpty && epsilons.allSatisfy { $0 > 0 && $0 <= 1 }, "every eps must be in (0, 1], got \(epsilons)")
        try check(epsilon > 0 && epsilon <= 1, "eps must be in (0, 1], got \(epsilon)")
        try check(
            decisionTemperature > 0 && decisionTemperature.isFinite && decisionTemperature <= 1000,
            "the decision temperature must be in (0, 1000], got \(decisionTemperature)")
        try check((pgdCount ?? 1) >= 1 && slowCount >= 1 && adaptiveCount >= 1, "every image count must be at least 1")
        try check(
            cwInitialConstant > 0 && cwInitialConstant.isFinite && cwLearningRate > 0 && cwLearningRate.isFinite,
            "the CW initial constant and learning rate must be positive")
        try check(pgdSteps >= 1 && cwSteps >= 1 && cwBinarySteps >= 1 && adaptiveSteps >= 1, "every iteration count must be at least 1")
        try check(
            !adaptiveLambdas.isEmpty && adaptiveLambdas.allSatisfy { $0 >= 0 && $0.isFinite },
            "adaptive lambdas must be >= 0, got \(adaptiveLambdas)")
        try check(
            !adaptiveEpsilons.isEmpty && adaptiveEpsilons.allSatisfy { $0 > 0 && $0 <= 1 },
            "adaptive eps must be in (0, 1], got \(adaptiveEpsilons)")
        try check(baselineEpochs >= 1, "baseline epochs must be at least 1, got \(baselineEpochs)")
        try check(binaryTrainingCount >= 2, "the binary detector needs at least 2 training images, got \(binaryTrainingCount)")
        try check(operatingRate > 0 && operatingRate < 0.5, "the operating false-positive rate must be in (0, 0.5), got \(operatingRate)")
        try check(batchSize >= 1, "the batch size must be at least 1, got \(batchSize)")
    }

    /// The settings as report rows (name, value).
    public var rows: [(String, String)] {
        [
            ("experiments", experiments.map(\.rawValue).joined(separator: ", ")),
            ("test images (FGSM, noise, Table 2)", "\(count)"),
            ("FGSM eps sweep", epsilons.map { format($0) }.joined(separator: ", ")),
            ("eps of Table 2 / Fig. 7", format(epsilon)),
            ("PGD", "\(pgdCount ?? count) images, \(pgdSteps) steps of 0.01, random start"),
            (
                "CW-L2",
                "\(slowCount) images, \(cwBinarySteps) binary-search steps x \(cwSteps) iterations, lr \(format(cwLearningRate)), "
                    + "c0 \(format(cwInitialConstant)), kappa 0 (cleverhans v3: 5 x 1000, lr 0.005, c0 0.01)"
            ),
            ("JSMA", "\(slowCount) images, theta 1, gamma 0.1, random targets"),
            (
                "adaptive PGD",
                "\(adaptiveCount) images, lambda " + adaptiveLambdas.map { format($0) }.joined(separator: "/")
                    + ", eps " + adaptiveEpsilons.map { format($0) }.joined(separator: "/") + ", \(adaptiveSteps) steps of 0.01"
            ),
            (
                "baselines",
                "MagNet autoencoder (Adam 0.01, batch 32) and binary CNN (Adam 0.001, batch 128) \(baselineEpochs) epochs each; "
                    + "binary CNN on clean vs FGSM eps \(format(epsilon)) of \(binaryTrainingCount) training images"
            ),
            ("operating point", "\(format(operatingRate * 100)) % false positives on clean validation images"),
            ("seed", "\(seed)")
        ]
    }
}

/// A setting or input file `dafar-eval` cannot use, with a sentence saying why.
public struct ExperimentError: ToolkitError, Equatable {
    /// What is wrong.
    public let description: String
    /// sysexits status: 64 for a bad setting (default), 65 for an input file that does not fit.
    public let cause: ErrorCause
    /// Creates the error.
    public init(_ description: String, cause: ErrorCause = .invalidArgument) {
        self.description = description
        self.cause = cause
    }
}

/// `0.3`, `0.05`, `10`: a short decimal for labels.
func format(_ value: Float) -> String { format(Double(value)) }

/// `0.3`, `0.05`, `10`: a short decimal for labels.
func format(_ value: Double) -> String {
    if value == value.rounded() && abs(value) < 1e9 { return String(Int(value)) }
    var text = String(format: "%.4f", value)
    while text.hasSuffix("0") { text.removeLast() }
    return text
}

/// Progress of one stage of an experiment, reported as work gets done. The library only reports;
/// what is shown (a progress bar on a terminal, nothing) is the caller's choice.
public protocol ProgressReporter: AnyObject {
    /// `done` units of the stage's total are finished; `fields` adds figures such as `12.5 img/s`.
    func update(_ done: Int, _ fields: String)
    /// The stage is over.
    func finish()
}

extension ProgressReporter {
    /// `done` units are finished.
    public func update(_ done: Int) { update(done, "") }
}

/// A reporter that shows nothing (library use, `--quiet`).
public final class SilentProgress: ProgressReporter {
    public init() {}
    public func update(_ done: Int, _ fields: String) {}
    public func finish() {}
}
