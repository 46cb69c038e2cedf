import Autodiff
import Datasets
import Distributed
import NeuralNetworks
import Tensors

/// Settings of detector training (Eq. 6) and calibration (Eq. 7).
public struct DetectorTrainingSettings: Sendable {
    public var epochs = 30
    public var batchSize = 64
    public var learningRate: Float = 1e-3
    /// Training objective: the paper's per-image L2 (default) or MSE.
    public var objective = ReconstructionNorm.l2
    /// Norm of the anomaly score.
    public var scoreNorm = ReconstructionNorm.l2
    /// Hidden sizes (nil: the paper's for the input size).
    public var hiddenSizes: [Int]? = nil
    /// z in alpha = mean + z * std.
    public var z: Float = 3
    /// Compute mean/std on held-out validation scores (true) or on training scores (the paper).
    public var statisticsOnValidation = true
    public var seed: UInt64 = 0
    /// Residuals per gradient group (see `JointTrainingSettings.gradientGroupSize`; 0: none).
    public var gradientGroupSize = 32

    public init() {}

    public var metadata: [String: String] {
        [
            "detector_epochs": String(epochs), "detector_batch_size": String(batchSize),
            "detector_learning_rate": String(learningRate), "detector_objective": objective.rawValue,
            "detector_seed": String(seed), "detector_gradient_group_size": String(gradientGroupSize)
        ]
    }
}

/// Training and calibration of the detector C on clean residuals.
public enum DetectorTraining {
    /// Residuals `x - D(E(x))` of clean images, batched, no tape. On several ranks each computes a
    /// shard of the batches and every rank gets them all (the same bits as one process).
    public static func residuals(
        _ network: JointNetwork, images: Tensor, communicator: any Communicator = SingleProcessCommunicator()
    ) -> Tensor {
        communicator.shardedMapBatches(images, rowShape: Array(images.shape.dropFirst())) { batch in
            let x = Variable(batch)
            return (x - network.reconstruct(x)).value
        }
    }

    /// Anomaly scores of residuals, batched, no tape.
    public static func scores(_ detector: AnomalyDetector, residuals: Tensor) -> [Float] {
        residuals.mapBatches { detector.score(residual: Variable($0)).value.storage }
    }

    /// Trains `detector` on clean `residuals` `[N, C, H, W]` for the configured epochs.
    /// `onStep(epoch, step, stepsPerEpoch, runningLoss)` reports progress.
    ///
    /// Data-parallel over the ranks of `communicator` (see `DataParallelStep`): every rank holds all
    /// residuals and the same shuffle, computes its gradient groups of each batch, and the gradients are
    /// summed exactly by one exchange per step; at each epoch's end the ranks check that their weights agree.
    public static func train(
        _ detector: AnomalyDetector, residuals: Tensor, settings: DetectorTrainingSettings,
        communicator: any Communicator = SingleProcessCommunicator(),
        onStep: (Int, Int, Int, Double) -> Void = { _, _, _, _ in }
    ) throws {
        let trainer = try DetectorTrainer(detector: detector, settings: settings, communicator: communicator)
        var generator: SeededGenerator? = SeededGenerator(seed: settings.seed &+ 0xC0FFEE)
        let n = residuals.batchSize
        let dummyLabels = LabeledImages(images: residuals, labels: [Int](repeating: 0, count: n), classCount: 1)
        for epoch in 0..<settings.epochs {
            let batches = dummyLabels.batchIndices(size: settings.batchSize, shuffledBy: &generator)
            var total = 0.0, seen = 0
            for (step, batch) in batches.enumerated() {
                let loss = trainer.trainStep(residuals.gather(batch))
                guard loss.isFinite else { throw NonFiniteLossError(epoch: epoch + 1, step: step + 1, kept: "nothing was written") }
                total += Double(loss) * Double(batch.count)
                seen += batch.count
                onStep(epoch, step + 1, batches.count, total / Double(seen))
            }
            try trainer.checkReplicas(when: "after detector epoch \(epoch + 1)")
        }
    }

    /// One optimisation step of Eq. 6 on a batch of residuals `[N, C, H, W]`; returns the
    /// batch loss. A non-finite loss leaves the weights unchanged.
    @discardableResult
    public static func trainStep(
        _ detector: AnomalyDetector, residuals: Tensor, objective: ReconstructionNorm,
        optimizer: Optimizer
    ) -> Float {
        let tape = Tape()
        let loss = detector.loss(residual: tape.constant(residuals), objective: objective)
        let value = loss.value.storage[0]
        if value.isFinite { optimizer.step(detector.namedParameters, gradients: tape.gradients(of: loss)) }
        return value
    }

    /// Sets the detector's calibration: statistics from `statisticsScores`, alpha = mean + z * std,
    /// and thresholds at 1 % and 5 % false positives on `validationScores`.
    public static func calibrate(
        _ detector: AnomalyDetector, statisticsScores: [Float], source: String,
        validationScores: [Float], z: Float
    ) {
        var rates: [Double: Float] = [:]
        for rate in [0.01, 0.05] { rates[rate] = Threshold.atFalsePositiveRate(rate, scores: validationScores) }
        detector.calibration = AnomalyDetector.Calibration(
            statisticsSource: source, statistics: ScoreStatistics(statisticsScores),
            z: z, thresholdsAtRate: rates)
    }

    /// Each component's share of the false-positive budget in the fused score: 2.5 %, half of the
    /// 5 % the detectors are compared at.
    public static let fusedShare = 0.025

    /// The score definition of `kind` for a trained `detector`; the fused score's scales come from
    /// the clean `validation` images `[N, C, H, W]` (never from attacks). Throws when the decision
    /// score is constant on them (a network whose reconstructions never move its decision).
    public static func fitScore(
        _ kind: ScoreKind, temperature: Float, network: JointNetwork, detector: AnomalyDetector,
        validation: Tensor
    ) throws -> FeedbackScore {
        switch kind {
        case .residual: return .residual
        case .decision: return FeedbackScore(kind: .decision, temperature: temperature)
        case .fused:
            let parts = network.feedbackScores(validation, detector: detector, temperature: temperature)
            guard parts.decision.contains(where: { $0 > 0 }) else {
                throw ModelFileError(
                    "the decision score is 0 on every validation image, so it cannot be fused; score with the residual alone")
            }
            return .fused(temperature: temperature, share: fusedShare, residualScores: parts.residual, decisionScores: parts.decision)
        }
    }
}

/// Detector training steps (Eq. 6, Adam) with the settings' gradient groups, over the ranks of a
/// communicator: what `DetectorTraining.train` runs for every batch, and `dafar-bench` times.
public final class DetectorTrainer {
    public let detector: AnomalyDetector
    public let settings: DetectorTrainingSettings
    let optimizer: Optimizer
    /// Groups or ranks (see `DataParallelStep`); nil: one plain step per batch.
    let parallel: DataParallelStep?

    /// A trainer of `detector`; throws for a learning rate Adam refuses.
    public init(
        detector: AnomalyDetector, settings: DetectorTrainingSettings, communicator: any Communicator = SingleProcessCommunicator()
    ) throws {
        self.detector = detector
        self.settings = settings
        optimizer = try Adam(learningRate: settings.learningRate)
        parallel =
            communicator.size > 1 || settings.gradientGroupSize > 0
            ? DataParallelStep(world: communicator, parameters: detector.namedParameters, groupSize: settings.gradientGroupSize) : nil
    }

    /// One step on a batch of residuals `[N, C, H, W]` (the same batch on every rank); returns the
    /// batch's mean loss. A non-finite loss leaves the weights unchanged (on every rank alike).
    @discardableResult
    public func trainStep(_ residuals: Tensor) -> Float {
        guard let parallel else {
            return DetectorTraining.trainStep(detector, residuals: residuals, objective: settings.objective, optimizer: optimizer)
        }
        let (gradients, totals) = parallel.gradients(count: residuals.batchSize, statistics: 1) { tape, part in
            let loss = detector.loss(residual: tape.constant(residuals.slice(part)), objective: settings.objective)
            return (loss, [loss.value.storage[0] * Float(part.count)])
        }
        let loss = totals[0] / Float(residuals.batchSize)
        if loss.isFinite { optimizer.step(detector.namedParameters, gradients: gradients) }
        return loss
    }

    /// Throws `ReplicaDivergenceError` on a rank whose weights or optimizer state differ from rank 0's.
    func checkReplicas(when: String) throws { try parallel?.checkReplicas(optimizer: optimizer, when: when) }
}
