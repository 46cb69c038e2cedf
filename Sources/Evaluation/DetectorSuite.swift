import Baselines
import DAFAR
import Datasets
import Foundation
import Reporting
import Tensors

/// A threshold of one detector: an image is flagged when its score is above `value`.
public struct DetectorThreshold: Sendable {
    /// Column label (`alpha`, `1 %`, `5 %`).
    public let label: String
    /// The threshold.
    public let value: Float
    /// How it was chosen, for the report.
    public let note: String
}

/// One detector under evaluation: how it scores images (higher = more adversarial),
/// its scores on the clean validation images and the thresholds compared.
public struct EvaluatedDetector {
    /// Report name (`DAFAR`, `MagNet`, `Feature Squeezing`, `Binary classifier`).
    public let name: String
    /// Name in chart legends (`FS`, `Binary`).
    public let shortName: String
    /// Scores of a batch `[N, C, H, W]` -> `[N]`.
    public let score: (Tensor) -> [Float]
    /// Scores of the clean validation images (thresholds are fitted on these only).
    public let validationScores: [Float]
    /// The thresholds reported; every one is a column of the detection tables.
    public let thresholds: [DetectorThreshold]
    /// How the detector was built and trained.
    public let description: String

    /// A detector with thresholds at false-positive rates `rates` on its validation scores.
    public init(
        name: String, shortName: String? = nil, validationScores: [Float], rates: [Double], extra: [DetectorThreshold] = [],
        description: String, score: @escaping (Tensor) -> [Float]
    ) {
        self.name = name
        self.shortName = shortName ?? name
        self.score = score
        self.validationScores = validationScores
        self.thresholds =
            extra
            + rates.map { rate in
                DetectorThreshold(
                    label: "\(format(rate * 100)) %",
                    value: Threshold.atFalsePositiveRate(rate, scores: validationScores),
                    note: "\(format(rate * 100)) % false positives on \(validationScores.count) clean validation images")
            }
        self.description = description
    }
}

/// The detectors compared: DAFAR first, then DAFAR with decision feedback and fused, then (when
/// built) MagNet, Feature Squeezing and the binary classifier, each with thresholds fitted on
/// clean validation images only.
public struct DetectorSuite {
    /// The detectors; index 0 is DAFAR as published (the residual score), index `fusedIndex` DAFAR fused.
    public let detectors: [EvaluatedDetector]
    /// The fused score (residual and decision feedback) as the adaptive attacker sees it, with the
    /// threshold at the operating false-positive rate.
    public let fused: (score: FeedbackScore, threshold: Float)?
    /// Seconds spent building each detector (training the baselines, scoring validation images).
    public let seconds: [String: Double]

    /// One column of a detection table: a detector at one of its thresholds.
    public struct Column {
        public let detector: Int
        public let threshold: Int
        /// `DAFAR alpha`, `MagNet 5 %`.
        public let header: String
        /// `FS 5 %`: the header with the detector's short name, for chart legends.
        public let legend: String
    }

    /// Every (detector, threshold) pair, DAFAR's first.
    public var columns: [Column] {
        detectors.indices.flatMap { d in
            detectors[d].thresholds.indices.map { t in
                Column(
                    detector: d, threshold: t, header: "\(detectors[d].name) \(detectors[d].thresholds[t].label)",
                    legend: "\(detectors[d].shortName) \(detectors[d].thresholds[t].label)")
            }
        }
    }

    /// The MagNet autoencoder's training settings: Adam 1e-2, batches of 32.
    static func magNetTraining(epochs: Int) -> TrainingSettings {
        TrainingSettings(epochs: epochs, batchSize: 32, learningRate: 1e-2)
    }

    /// Builds DAFAR's entry and, with `baselines`, trains and fits the three baseline detectors.
    public static func build(
        model: DAFARModel, splits: DatasetSplits, inputs: ExperimentInputs, settings: ExperimentSettings,
        baselines: Bool, log: (String) -> Void
    ) throws -> DetectorSuite {
        guard let detector = model.detector, let calibration = detector.calibration else {
            throw ExperimentError("the evaluation needs a model with a calibrated detector (one written by dafar-detector)")
        }
        var seconds: [String: Double] = [:]
        var start = Date()
        let rates = Array(Set([0.01, settings.operatingRate])).sorted()
        let stats = calibration.statistics
        let alpha = DetectorThreshold(
            label: "alpha", value: calibration.alpha,
            note: "stored alpha = mean + \(format(calibration.z)) std = \(format(stats.mean)) + \(format(calibration.z)) x "
                + "\(format(stats.standardDeviation)) of \(stats.count) clean \(calibration.statisticsSource) scores (the paper's rule)")
        let residualValidation = model.scores(splits.validation.images, .residual)
        var detectors = [
            EvaluatedDetector(
                name: "DAFAR", validationScores: residualValidation, rates: rates,
                extra: detector.scoreDefinition.kind == .residual ? [alpha] : [],
                description: "anomaly score ||delta - C(delta)||_\(detector.norm.rawValue.dropFirst()) of the residual delta = x - D(E(x))",
                score: { model.scores($0, .residual) })
        ]
        seconds["DAFAR"] = Date().timeIntervalSince(start)

        start = Date()
        let temperature = detector.scoreDefinition.kind == .residual ? settings.decisionTemperature : detector.scoreDefinition.temperature
        let feedback = FeedbackScoreMemo(model: model, temperature: temperature)
        let validationParts = feedback.components(splits.validation.images)
        let fusedScore = FeedbackScore.fused(
            temperature: temperature, share: settings.operatingRate / 2,
            residualScores: validationParts.residual, decisionScores: validationParts.decision)
        detectors.append(
            EvaluatedDetector(
                name: "DAFAR decision", shortName: "DAFAR-dec", validationScores: validationParts.decision, rates: rates,
                description: "decision feedback: JSD(softmax(F(E(x)) / T), softmax(F(E(D(E(x)))) / T)), T = \(format(temperature))",
                score: { feedback.components($0).decision }))
        let fusedValidation = fusedScore.fuse(residual: validationParts.residual, decision: validationParts.decision)
        let fusedDetector = EvaluatedDetector(
            name: "DAFAR fused", shortName: "DAFAR-fused", validationScores: fusedValidation, rates: rates,
            description: "max(residual / \(format(fusedScore.residualScale)), decision / \(format(fusedScore.decisionScale))): each "
                + "component divided by its value at \(format(settings.operatingRate * 50)) % false positives on clean validation images",
            score: { images in
                let parts = feedback.components(images)
                return fusedScore.fuse(residual: parts.residual, decision: parts.decision)
            })
        detectors.append(fusedDetector)
        seconds["DAFAR decision and fused"] = Date().timeIntervalSince(start)
        let operatingThreshold = fusedDetector.thresholds.first { $0.label == "\(format(settings.operatingRate * 100)) %" }!.value
        let fused = (score: fusedScore, threshold: operatingThreshold)
        guard baselines else { return DetectorSuite(detectors: detectors, fused: fused, seconds: seconds) }

        let classifier = ClassifierFunction(logits: { model.logits($0) })
        let training = TrainingSettings(epochs: settings.baselineEpochs)
        let operating = [settings.operatingRate]
        let imageShape = model.inputShape

        start = Date()
        log("training the MagNet autoencoder (\(settings.baselineEpochs) epochs on \(splits.train.count) clean training images)")
        var generator = SeededGenerator(seed: inputs.seed(for: "magnet"))
        let autoencoder = MagNetAutoencoder(imageShape: imageShape, using: &generator)
        // MagNet trained 100 epochs at Adam's 1e-3 on 50k images; with a few epochs that rate leaves the
        // sigmoid autoencoder at the mean image, so it trains here on batches of 32 at 1e-2 (measured:
        // clean L1 error 0.025 after 5 epochs on MNIST-5k, against 0.19 at 1e-3 in batches of 128).
        try autoencoder.train(
            on: splits.train.images, settings: Self.magNetTraining(epochs: settings.baselineEpochs),
            using: &generator)
        let magNet = MagNet.fit(
            autoencoder: autoencoder, classifier: classifier, cleanValidation: splits.validation.images,
            overallFalsePositiveRate: settings.operatingRate)
        let perDetector = settings.operatingRate / Double(magNet.kinds.count)
        detectors.append(
            EvaluatedDetector(
                name: "MagNet", validationScores: magNet.scores(splits.validation.images), rates: [],
                extra: [
                    DetectorThreshold(
                        label: "\(format(settings.operatingRate * 100)) %", value: 1,
                        note: "union of \(magNet.kinds.map(\.description).joined(separator: ", ")), each at "
                            + "\(format(perDetector * 100)) % false positives on clean validation images")
                ],
                description: "autoencoder (noise 0.1; Adam 1e-2, batch 32, \(settings.baselineEpochs) epochs) detectors I (L1, L2) "
                    + "and II (JSD, T = 10, 40); score max_i s_i / t_i, "
                    + "flagged when any detector is above its threshold",
                score: { magNet.scores($0) }))
        seconds["MagNet"] = Date().timeIntervalSince(start)

        start = Date()
        let squeezing = FeatureSqueezing(classifier: classifier, channels: imageShape[0])
        detectors.append(
            EvaluatedDetector(
                name: "Feature Squeezing", shortName: "FS", validationScores: squeezing.scores(splits.validation.images), rates: operating,
                description: "max over squeezers (\(squeezing.squeezers.map(\.description).joined(separator: ", "))) of the L1 "
                    + "distance between softmax outputs", score: { squeezing.scores($0) }))
        seconds["Feature Squeezing"] = Date().timeIntervalSince(start)

        start = Date()
        let trainingImages = splits.train.prefix(settings.binaryTrainingCount)
        let adversarial = inputs.fgsmTrainingExamples(trainingImages, epsilon: settings.epsilon)
        log(
            "training the binary classifier detector (\(settings.baselineEpochs) epochs, \(trainingImages.count) clean vs "
                + "\(trainingImages.count) FGSM eps=\(format(settings.epsilon)) training images)")
        generator = SeededGenerator(seed: inputs.seed(for: "binary-classifier"))
        let binary = BinaryClassifierDetector(imageShape: imageShape, using: &generator)
        try binary.train(clean: trainingImages.images, adversarial: adversarial, settings: training, using: &generator)
        detectors.append(
            EvaluatedDetector(
                name: "Binary classifier", shortName: "Binary", validationScores: binary.scores(splits.validation.images), rates: operating,
                description: "CNN trained on clean vs FGSM eps=\(format(settings.epsilon)) examples of \(trainingImages.count) "
                    + "training images (one attack only); score z_adv - z_clean", score: { binary.scores($0) }))
        seconds["Binary classifier"] = Date().timeIntervalSince(start)
        return DetectorSuite(detectors: detectors, fused: fused, seconds: seconds)
    }
}

/// Both feedback scores (residual and decision) of the last images scored, so that the decision and
/// fused rows of the evaluation share one pass of E, F and D over each set.
final class FeedbackScoreMemo {
    let model: DAFARModel
    let temperature: Float
    private var last: (images: Tensor, residual: [Float], decision: [Float])?

    init(model: DAFARModel, temperature: Float) {
        self.model = model
        self.temperature = temperature
    }

    /// `(residual, decision)` scores of `images` `[N, C, H, W]`, each `[N]`.
    func components(_ images: Tensor) -> (residual: [Float], decision: [Float]) {
        if let last, last.images == images { return (last.residual, last.decision) }
        let parts = model.network.feedbackScores(images, detector: model.detector!, temperature: temperature)
        last = (images, parts.residual, parts.decision)
        return parts
    }
}

/// Every detector's scores of every set, computed once. Clean images that are the first
/// test images share one list of clean scores per detector.
public final class ScoreBook {
    let suite: DetectorSuite
    let test: LabeledImages
    private var testScores: [[Float]]
    private var cache: [String: [Float]] = [:]

    /// An empty book for `suite` on the `test` split.
    public init(suite: DetectorSuite, test: LabeledImages) {
        self.suite = suite
        self.test = test
        testScores = Array(repeating: [], count: suite.detectors.count)
    }

    /// Scores of the first `count` test images.
    public func testClean(_ detector: Int, count: Int) -> [Float] {
        let have = testScores[detector].count
        if have < count {
            testScores[detector] += suite.detectors[detector].score(test.images.slice(have..<count))
        }
        return Array(testScores[detector].prefix(count))
    }

    /// Scores of `set`'s clean images.
    public func clean(_ detector: Int, _ set: PerturbedSet) -> [Float] {
        if set.cleanIsTestPrefix { return testClean(detector, count: set.count) }
        return cached("\(detector)|\(set.key)|clean") { suite.detectors[detector].score(set.clean) }
    }

    /// Scores of `set`'s perturbed images.
    public func perturbed(_ detector: Int, _ set: PerturbedSet) -> [Float] {
        if detector == 0, let dafar, cache["0|\(set.key)|perturbed"] == nil {
            _ = reconstructionDistances(set, dafar: dafar)
        }
        return cached("\(detector)|\(set.key)|perturbed") { suite.detectors[detector].score(set.perturbed) }
    }

    /// DAFAR's model, when detector 0 is DAFAR: its scores and reconstruction distances
    /// then come from one pass over E and D.
    var dafar: DAFARModel?

    /// `||x' - D(E(x'))||_2` of `set`'s perturbed images; fills DAFAR's scores of them on the way.
    func reconstructionDistances(_ set: PerturbedSet, dafar: DAFARModel) -> [Float] {
        cached("reconstruction|\(set.key)") {
            let (distances, scores) = Self.dafarPass(dafar, set.perturbed)
            cache["0|\(set.key)|perturbed"] = scores
            return distances
        }
    }

    /// One pass of E, D and C: residual norms `||x - D(E(x))||_2` and anomaly scores.
    static func dafarPass(_ model: DAFARModel, _ images: Tensor) -> (distances: [Float], scores: [Float]) {
        let residuals = DetectorTraining.residuals(model.network, images: images)  // [N, C, H, W]
        return (residuals.l2NormsPerSample(), model.detector.map { DetectorTraining.scores($0, residuals: residuals) } ?? [])
    }

    private func cached(_ key: String, _ compute: () -> [Float]) -> [Float] {
        if let scores = cache[key] { return scores }
        let scores = compute()
        cache[key] = scores
        return scores
    }
}
