import ArgumentParser
import CommandSupport
import DAFAR
import Datasets
import Distributed
import Foundation
import NeuralNetworks
import Tensors

/// `dafar-detector`: trains the detector C on clean residuals of a trained model and calibrates its threshold.
@main
struct DAFARDetector: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dafar-detector",
        abstract: "Train DAFAR's detector C on clean reconstruction residuals and set its threshold (Eq. 6, 7).",
        discussion: """
            E and D are frozen. C is trained on x - D(E(x)) of clean training images; the anomaly score is
            ||delta - C(delta)||. The threshold is alpha = mean + z * std of clean scores (computed on the
            held-out validation split by default, since training scores run low), and the thresholds that give
            1 % and 5 % false positives on the validation split are stored too.
            --score chooses what verdicts score: the paper's residual score (default), decision feedback (the
            Jensen-Shannon divergence between the softmax outputs, at temperature T, of x and of its feedback
            reconstruction D(E(x))), or both fused (each divided by its value at 2.5 % false positives on the
            validation split, then the larger taken). Everything is fitted on clean images only.
            Under mpirun or srun the ranks share out the training residuals and train C data-parallel in \
            gradient groups (--gradient-group-size), so the detector is the one a single process trains; \
            rank 0 then scores, calibrates and writes.
            Example: dafar-detector --model runs/model.safetensors --output runs/detector.safetensors
            """)

    /// Usage errors in one line (`mainReportingOneLine`), run errors through `reportingErrors`.
    static func main() { mainReportingOneLine() }

    @OptionGroup var data: DataOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var training: TrainingOptions

    @Option(help: "Model written by dafar-train.")
    var model: String

    @Option(help: "Where to write the detector (safetensors).")
    var output: String

    @Option(help: "Encoder hidden sizes, comma separated (default 256,128,64 for 784 inputs, 512,256,100 for 3072).")
    var hiddenSizes: String?

    @Option(help: "Anomaly score norm: l2 (the paper) or l1.")
    var scoreNorm: ReconstructionNorm = .l2

    @Option(help: "Training objective of C: l2 (per-image norm, Eq. 6) or mse.")
    var objective: ReconstructionNorm = .l2

    @Option(parsing: .unconditional, help: "z in alpha = mean + z * std (default 3 for 1-channel data, 2 for colour).")
    var z: Float?

    @Option(help: "Which clean scores give mean and std: validation (held out, default) or train (the paper).")
    var statisticsOn: StatisticsSource = .validation

    @Option(
        help:
            "What verdicts score: residual (the paper's ||delta - C(delta)||), decision (JSD of F's outputs on x and D(E(x))) or fused (both)."
    )
    var score: ScoreKind = .residual

    @Option(parsing: .unconditional, help: "Temperature T of the decision score's softmax (decision and fused scores).")
    var temperature: Float = FeedbackScore.defaultTemperature

    @Option(help: "Which threshold verdicts use: alpha, fpr1 or fpr5.")
    var threshold: ThresholdChoice = .alpha

    func validate() throws {
        if let z { guard z > 0 && z.isFinite else { throw ValidationError("--z must be a positive number, got \(z)") } }
        guard temperature > 0 && temperature.isFinite && temperature <= 1000 else {
            throw ValidationError("--temperature must be a positive number up to 1000, got \(temperature)")
        }
        guard scoreNorm != .mse else { throw ValidationError("--score-norm must be l2 or l1") }
        _ = try parsedHiddenSizes()
    }

    func parsedHiddenSizes() throws -> [Int]? {
        guard let hiddenSizes else { return nil }
        let sizes = hiddenSizes.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) > 0 && ($0 ?? 0) <= 65536 }) else {
            throw ValidationError("--hidden-sizes must be positive integers separated by commas, got '\(hiddenSizes)'")
        }
        return sizes.map { $0! }
    }

    /// Under mpirun/srun the ranks train C data-parallel; rank 0 then scores, calibrates and writes.
    func run() throws {
        let world = Launcher.communicator()
        defer { world.finalize() }
        var prepared: (dafar: DAFARModel, splits: DatasetSplits, settings: DetectorTrainingSettings, detector: AnomalyDetector)?
        try agreeingOnErrors(world) {
            runtime.apply()
            try checkInputFile(model, what: "model")
            try checkOutputPath(output)
            let dafar = try DAFARModel(contentsOf: URL(fileURLWithPath: model))
            let splits = try data.load(seed: training.seed)
            guard splits.validation.count > 0 else {
                throw DatasetError(
                    kind: .badContent, path: "",
                    message:
                        "the validation split is empty (--validation-fraction \(data.validationFraction) of \(splits.train.count) training images holds out none per class) but the thresholds are set on held-out images; use more images or a larger --validation-fraction"
                )
            }
            guard splits.train.imageShape == dafar.inputShape else {
                throw ModelFileError(
                    "the model reads \(dafar.inputShape) images but \(data.dataset.rawValue) has \(splits.train.imageShape) images; use the dataset the model was trained on (\(dafar.metadata["dataset"] ?? "unknown"))"
                )
            }
            var settings = DetectorTrainingSettings()
            settings.epochs = training.epochs ?? 30
            settings.batchSize = training.batchSize
            settings.learningRate = training.learningRate
            settings.objective = objective
            settings.scoreNorm = scoreNorm
            settings.hiddenSizes = try parsedHiddenSizes()
            settings.z = z ?? (dafar.inputShape[0] == 1 ? 3 : 2)
            settings.seed = training.seed
            settings.gradientGroupSize = training.gradientGroupSize
            let detector = AnomalyDetector(
                inputSize: dafar.inputShape.elementCount, hiddenSizes: settings.hiddenSizes, norm: scoreNorm, seed: training.seed)
            prepared = (dafar, splits, settings, detector)
        }
        guard let prepared else { return }
        let (dafar, splits, settings, detector) = prepared
        if world.isRoot, let warning = training.idleRanksWarning(ranks: world.size) { printError(warning) }
        // a collective, so outside the checks above: the ranks share out the training residuals
        let trainResiduals = DetectorTraining.residuals(dafar.network, images: splits.train.images, communicator: world)
        let bar = ProgressBar(total: settings.epochs, label: "detector", enabled: !runtime.quiet && world.isRoot)
        try agreeingOnErrors(world, hint: { $0 is NonFiniteLossError ? "(option: --learning-rate)" : nil }) {
            try DetectorTraining.train(detector, residuals: trainResiduals, settings: settings, communicator: world) {
                epoch, step, steps, loss in
                if step == steps { bar.update(epoch + 1, String(format: "loss %.4f", loss)) }
            }
        }
        bar.finish()
        // rank 0 scores, calibrates and writes; the other ranks wait for its outcome
        try agreeingOnErrors(world) {
            guard world.isRoot else { return }
            try calibrateAndWrite(
                dafar: dafar, splits: splits, settings: settings, trainResiduals: trainResiduals, detector: detector,
                ranks: world.size)
        }
    }

    /// Scores, thresholds, the summary table and the file (rank 0).
    func calibrateAndWrite(
        dafar: DAFARModel, splits: DatasetSplits, settings: DetectorTrainingSettings, trainResiduals: Tensor,
        detector: AnomalyDetector, ranks: Int
    ) throws {
        let zValue = settings.z
        let residuals = (
            train: trainResiduals,
            validation: DetectorTraining.residuals(dafar.network, images: splits.validation.images),
            test: DetectorTraining.residuals(dafar.network, images: splits.test.images)
        )
        detector.scoreDefinition = try DetectorTraining.fitScore(
            score, temperature: temperature, network: dafar.network,
            detector: detector, validation: splits.validation.images)
        let scored = DAFARModel(network: dafar.network, detector: detector)
        let scores =
            score == .residual
            ? (
                train: DetectorTraining.scores(detector, residuals: residuals.train),
                validation: DetectorTraining.scores(detector, residuals: residuals.validation),
                test: DetectorTraining.scores(detector, residuals: residuals.test)
            )
            : (
                train: scored.scores(splits.train.images), validation: scored.scores(splits.validation.images),
                test: scored.scores(splits.test.images)
            )
        let statisticsScores = statisticsOn == .train ? scores.train : scores.validation
        DetectorTraining.calibrate(
            detector, statisticsScores: statisticsScores, source: statisticsOn.rawValue,
            validationScores: scores.validation, z: zValue)
        var calibration = detector.calibration!
        calibration.active = threshold.value(in: calibration)
        detector.calibration = calibration

        let trainAlpha = ScoreStatistics(scores.train).threshold(z: zValue)
        let rows: [(String, Float)] = [
            ("alpha = mean + \(zValue) std (\(statisticsOn.rawValue))", calibration.alpha),
            ("alpha from training scores (paper)", trainAlpha),
            ("1 % FPR on validation", calibration.thresholdsAtRate[0.01]!),
            ("5 % FPR on validation", calibration.thresholdsAtRate[0.05]!)
        ]
        var metadata = settings.metadata.merging([
            "dataset": data.dataset.rawValue, "threshold_choice": threshold.rawValue,
            "train_count": String(splits.train.count),
            "validation_count": String(splits.validation.count),
            "test_count": String(splits.test.count),
            "alpha_from_train_scores": String(trainAlpha)
        ]) { a, _ in a }
        print(
            "clean scores: train mean \(fmt(ScoreStatistics(scores.train).mean)) std \(fmt(ScoreStatistics(scores.train).standardDeviation)); "
                + "validation mean \(fmt(ScoreStatistics(scores.validation).mean)) std \(fmt(ScoreStatistics(scores.validation).standardDeviation))"
        )
        print("threshold                                  value     test FPR (n=\(splits.test.count))")
        for (name, value) in rows {
            let fpr = Threshold.flaggedFraction(scores.test, threshold: value)
            print(
                name.padding(toLength: 42, withPad: " ", startingAt: 0) + " " + fmt(value).padding(toLength: 9, withPad: " ", startingAt: 0)
                    + String(format: " %.2f %%", fpr * 100))
        }
        metadata["test_fpr_alpha"] = String(Threshold.flaggedFraction(scores.test, threshold: calibration.alpha))
        metadata["test_fpr_alpha_from_train"] = String(Threshold.flaggedFraction(scores.test, threshold: trainAlpha))
        metadata["test_fpr_1pct"] = String(Threshold.flaggedFraction(scores.test, threshold: calibration.thresholdsAtRate[0.01]!))
        metadata["test_fpr_5pct"] = String(Threshold.flaggedFraction(scores.test, threshold: calibration.thresholdsAtRate[0.05]!))
        metadata["seed"] = String(training.seed)
        metadata["threads"] = String(Parallel.threadCount)
        metadata["ranks"] = String(ranks)
        try detector.archive(modelHash: dafar.modelHash, metadata: metadata).write(to: URL(fileURLWithPath: output))
        print(
            "detector written to \(output) (verdicts score \(detector.scoreDefinition) and use the \(threshold.rawValue) threshold \(fmt(calibration.active)))"
        )
    }

    func fmt(_ v: Float) -> String { String(format: "%.4f", v) }
}
