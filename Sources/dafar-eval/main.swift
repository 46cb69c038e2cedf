import ArgumentParser
import Attacks
import CommandSupport
import DAFAR
import Distributed
import Evaluation
import Foundation
import Reporting
import Tensors

/// `dafar-eval`: the paper's experiments for a trained model and detector, next to the baselines, in one report.
@main
struct DAFAREval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dafar-eval",
        abstract: "Evaluate a DAFAR model and detector next to MagNet, Feature Squeezing and a binary detector; write a report.",
        discussion: """
            Experiments (--experiments, default all): \(ExperimentKind.allCases.map(\.rawValue).joined(separator: ", ")). \
            Every threshold is fitted on clean validation images; detection rates count successful adversarial examples \
            (failed ones are reported apart); random sign noise of each attack's L-inf size is flagged beside every attack. \
            Writes report.md, results.json and SVG figures into --report DIR and prints a summary table.
            Under mpirun or srun every attack it runs (FGSM, PGD, CW-L2, JSMA, the adaptive sweeps, the binary \
            detector's training examples) is sharded across the ranks in whole batches with per-image random \
            streams; the rest (baselines, scores) runs on every rank alike, and rank 0 writes the same report as \
            one process (the same numbers; timings differ).
            Example: dafar-eval --model runs/model.safetensors --detector runs/detector.safetensors --report runs/report
            """)

    /// Usage errors in one line (`mainReportingOneLine`), run errors through `reportingErrors`.
    static func main() { mainReportingOneLine() }

    @OptionGroup var data: DataOptions
    @OptionGroup var runtime: RuntimeOptions

    @Option(help: "Model written by dafar-train.")
    var model: String

    @Option(help: "Detector written by dafar-detector for this model.")
    var detector: String

    @Option(help: "Folder for report.md, results.json and the SVG figures (created if missing).")
    var report: String

    @Option(
        parsing: .upToNextOption,
        help:
            "Adversarial sets written by dafar-attack for this model (test split); they replace the generated sets of the same attack and budget."
    )
    var adversarial: [String] = []

    @Option(help: "Experiments to run, comma-separated, or all.")
    var experiments = "all"

    @Option(parsing: .unconditional, help: "Test images for FGSM, the noise controls and Table 2 (the first N of the test split).")
    var count = 1000

    @Option(help: "FGSM intensities of Fig. 4-6 and 8, comma-separated.")
    var epsilons = "0.05,0.1,0.15,0.2,0.25,0.3,0.35,0.4"

    @Option(parsing: .unconditional, help: "L-inf budget of Table 2 and of FGSM/PGD in Fig. 7.")
    var eps: Float = 0.3

    @Option(parsing: .unconditional, help: "Test images attacked with PGD (default: --count).")
    var pgdCount: Int?

    @Option(parsing: .unconditional, help: "PGD iterations (step 0.01, random start).")
    var pgdSteps = 40

    @Option(parsing: .unconditional, help: "Test images attacked with the slow attacks, CW-L2 and JSMA.")
    var slowCount = 100

    @Option(parsing: .unconditional, help: "CW-L2 Adam iterations per binary-search step (cleverhans v3: 1000).")
    var cwSteps = 1000

    @Option(parsing: .unconditional, help: "CW-L2 binary-search steps (cleverhans v3: 5).")
    var cwBinarySteps = 5

    @Option(parsing: .unconditional, help: "CW-L2 initial constant c (cleverhans v3: 0.01).")
    var cwInitialConst: Float = 1e-2

    @Option(parsing: .unconditional, help: "CW-L2 Adam learning rate (cleverhans v3: 0.005).")
    var cwLearningRate: Float = 5e-3

    @Option(parsing: .unconditional, help: "Test images of each adaptive-attack run.")
    var adaptiveCount = 100

    @Option(help: "Adaptive attack: lambdas, comma-separated.")
    var adaptiveLambdas = "0,0.1,1,10"

    @Option(help: "Adaptive attack: L-inf budgets, comma-separated.")
    var adaptiveEps = "0.1,0.2,0.3"

    @Option(parsing: .unconditional, help: "Adaptive attack: PGD iterations.")
    var adaptiveSteps = 100

    @Option(parsing: .unconditional, help: "Training epochs of the MagNet autoencoder and of the binary classifier detector.")
    var baselineEpochs = 10

    @Option(parsing: .unconditional, help: "Training images turned into FGSM examples to train the binary classifier detector.")
    var binaryTrainingCount = 2000

    @Option(parsing: .unconditional, help: "False-positive rate (on clean validation images) all detectors are compared at.")
    var operatingRate = 0.05

    @Option(parsing: .unconditional, help: "Images per attack batch.")
    var batchSize = 100

    @Option(
        parsing: .unconditional,
        help:
            "Temperature T of the decision-feedback score in the 'DAFAR decision' and 'DAFAR fused' rows (a detector file made with --score decision or fused brings its own)."
    )
    var decisionTemperature: Float = FeedbackScore.defaultTemperature

    @Option(parsing: .unconditional, help: "Seed of the noise controls, random starts and the baselines' training.")
    var seed: UInt64 = 0

    @Option(
        parsing: .unconditional,
        help:
            "Seed of the validation split (default: the one recorded in the model, so that thresholds are fitted on images it never trained on)."
    )
    var splitSeed: UInt64?

    func validate() throws {
        do { _ = try settings() } catch let error as ExperimentError { throw ValidationError(error.description) }
    }

    /// The experiment settings from the options.
    func settings(showProgress: Bool = true) throws -> ExperimentSettings {
        func floats(_ text: String, _ option: String) throws -> [Float] {
            let values = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.allSatisfy({ $0 != nil && $0!.isFinite }) else {
                throw ExperimentError("--\(option) must be comma-separated numbers, got '\(text)'")
            }
            return values.map { $0! }
        }
        var settings = ExperimentSettings()
        settings.experiments = try ExperimentKind.parseList(experiments)
        settings.count = count
        settings.epsilons = try floats(epsilons, "epsilons")
        settings.epsilon = eps
        settings.pgdCount = pgdCount
        settings.pgdSteps = pgdSteps
        settings.slowCount = slowCount
        settings.cwSteps = cwSteps
        settings.cwBinarySteps = cwBinarySteps
        settings.cwInitialConstant = cwInitialConst
        settings.cwLearningRate = cwLearningRate
        settings.adaptiveCount = adaptiveCount
        settings.adaptiveLambdas = try floats(adaptiveLambdas, "adaptive-lambdas")
        settings.adaptiveEpsilons = try floats(adaptiveEps, "adaptive-eps")
        settings.adaptiveSteps = adaptiveSteps
        settings.baselineEpochs = baselineEpochs
        settings.binaryTrainingCount = binaryTrainingCount
        settings.operatingRate = operatingRate
        settings.decisionTemperature = decisionTemperature
        settings.batchSize = batchSize
        settings.seed = seed
        let enabled = !runtime.quiet && showProgress
        settings.progress = { label, total in ProgressBar(total: total, label: label, enabled: enabled) }
        try settings.validate()
        return settings
    }

    /// Under mpirun/srun the attacks are sharded across the ranks; rank 0 prints and writes the report.
    func run() throws {
        let world = Launcher.communicator()
        defer { world.finalize() }
        var outcome: (document: Report, runner: ExperimentRunner)?
        try agreeingOnErrors(world) {
            runtime.apply()
            try checkInputFile(model, what: "model")
            try checkInputFile(detector, what: "detector")
            for file in adversarial { try checkInputFile(file, what: "adversarial set") }
            try checkReportFolder(report)
            let settings = try settings(showProgress: world.isRoot)
            let dafar = try DAFARModel(contentsOf: URL(fileURLWithPath: model), detector: URL(fileURLWithPath: detector))
            if let recorded = dafar.metadata["validation_fraction"].flatMap(Double.init), abs(recorded - data.validationFraction) > 1e-9 {
                throw ExperimentError(
                    "the model held out \(recorded) of the training images for validation; pass --validation-fraction "
                        + "\(recorded) so that thresholds are fitted on images it never trained on")
            }
            let splitSeed = splitSeed ?? dafar.metadata["seed"].flatMap(UInt64.init) ?? 0
            let splits = try data.load(seed: splitSeed)
            guard splits.test.imageShape == dafar.inputShape else {
                throw ModelFileError(
                    "the model reads \(dafar.inputShape) images but \(data.dataset.rawValue) has \(splits.test.imageShape) images; "
                        + "use the dataset the model was trained on (\(dafar.metadata["dataset"] ?? "unknown"))")
            }
            let quiet = runtime.quiet || !world.isRoot
            let runner = ExperimentRunner(
                model: dafar, splits: splits, settings: settings, log: { if !quiet { printError($0) } },
                communicator: world)
            for file in adversarial {
                try runner.inputs.addProvided(
                    try AdversarialSet(contentsOf: URL(fileURLWithPath: file)), file: file,
                    dataset: data.dataset.rawValue)
            }
            let context = ReportContext(
                dataset: data.dataset, modelFile: model, detectorFile: detector,
                commands: reproduction(metadata: dafar.metadata),
                extraSettings: [
                    ("validation split", "fraction \(data.validationFraction), seed \(splitSeed)"),
                    ("threads", "\(Parallel.threadCount)"), ("ranks", "\(world.size)"),
                    ("toolkit version", toolkitVersion)
                ])
            outcome = (try runner.run(context: context), runner)
        }
        guard let outcome else { return }
        let (document, runner) = outcome
        try agreeingOnErrors(world) {
            guard world.isRoot else { return }
            try document.write(to: URL(fileURLWithPath: report))
            print(runner.summaryTable.plainText(), terminator: "")
            print("report written to \(URL(fileURLWithPath: report).appendingPathComponent("report.md").path)")
        }
    }

    /// The commands that rebuild the model and detector (from their recorded settings) and this report.
    func reproduction(metadata: [String: String]) -> [String] {
        var train = ["dafar-train", "--dataset", metadata["dataset"] ?? data.dataset.rawValue]
        for (key, option) in [("epochs", "--epochs"), ("seed", "--seed")] { if let value = metadata[key] { train += [option, value] } }
        let arguments = ["dafar-eval"] + CommandLine.arguments.dropFirst()
        return [
            "# model and detector (settings recorded in the model file; see its metadata for the rest)",
            (train + ["--output", model]).map(shellQuoted).joined(separator: " "),
            ["dafar-detector", "--dataset", data.dataset.rawValue, "--model", model, "--output", detector].map(shellQuoted).joined(
                separator: " "),
            "# this report",
            arguments.map(shellQuoted).joined(separator: " ")
        ]
    }
}

/// `word` quoted for a POSIX shell when it needs it.
func shellQuoted(_ word: String) -> String {
    let safe = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_./=,:+@%"))
    if !word.isEmpty && word.unicodeScalars.allSatisfy(safe.contains) { return word }
    return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// Checks before long work that the report folder exists or can be created.
func checkReportFolder(_ path: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
        guard isDirectory.boolValue else { throw ExperimentError("--report \(path) is a file; give a folder", cause: .cannotCreate) }
        guard FileManager.default.isWritableFile(atPath: path) else {
            throw ExperimentError("folder \(path) is not writable", cause: .cannotCreate)
        }
        return
    }
    let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
    guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw ExperimentError("cannot create the report folder \(path): folder \(parent) does not exist", cause: .cannotCreate)
    }
}
