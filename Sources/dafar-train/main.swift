import ArgumentParser
import CommandSupport
import DAFAR
import Datasets
import Distributed
import Foundation
import NeuralNetworks
import Tensors

/// `dafar-train`: joint training of the target network E/F and the feedback decoder D (Eq. 5).
@main
struct DAFARTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dafar-train",
        abstract: "Train a DAFAR target network and its feedback decoder jointly (paper Eq. 5).",
        discussion: """
            Loss = cross-entropy(F(E(x)), y) + lambda * ||x - D(E(x))|| averaged over the batch.
            A checkpoint is written after every epoch (and on Ctrl-C); --resume continues from it.
            Under mpirun or srun the ranks train data-parallel: every rank holds the whole model, each batch \
            of --batch-size images (the same images in the same order as one process) is cut into gradient \
            groups of --gradient-group-size images shared out across the ranks, their gradients are summed \
            exactly (fixed point) in one exchange per step and every rank takes the same step, so the model \
            is the one a single process trains; the weights are compared across ranks after every epoch. \
            Rank 0 writes the checkpoints and the model; --resume works with the same or another number of \
            ranks. Give each rank --threads cores-per-host / ranks-per-host.
            Example: dafar-train --dataset mnist5k --output runs/model.safetensors
            """)

    /// Usage errors in one line (`mainReportingOneLine`), run errors through `reportingErrors`.
    static func main() { mainReportingOneLine() }

    @OptionGroup var data: DataOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var training: TrainingOptions

    @Option(help: "Where to write the trained model (safetensors).")
    var output: String

    @Option(name: .customLong("lr-schedule"), help: "Learning-rate schedule: cosine (decays to 0 over the run) or constant.")
    var learningRateSchedule: LearningRateSchedule = .cosine

    @Option(parsing: .unconditional, help: "Epochs over which the learning rate rises linearly from 0 (0: no warm-up).")
    var warmupEpochs: Double = 0

    @Option(parsing: .unconditional, help: "L2 weight decay added to the gradients (0: none).")
    var weightDecay: Float = 0

    @Option(parsing: .unconditional, help: "Augmentation: shift each training image by up to this many pixels per axis (0: none).")
    var shift = 2

    @Flag(
        inversion: .prefixedNo,
        help: "Augmentation: flip training images horizontally at random (default: on for colour images, off for digits).")
    var flip: Bool?

    @Option(help: "Optimizer: adam or sgd (with --momentum).")
    var optimizer: OptimizerKind = .adam

    @Option(parsing: .unconditional, help: "SGD momentum.")
    var momentum: Float = 0.9

    @Option(name: .customLong("lambda"), parsing: .unconditional, help: "Weight of the reconstruction term in the loss.")
    var reconstructionWeight: Float = 1

    @Option(help: "Reconstruction term: l2 (per-image L2 norm, the paper), l1 or mse.")
    var reconstructionNorm: ReconstructionNorm = .l2

    @Option(parsing: .unconditional, help: "Number of feature layers D reads from (default: all of E, i.e. the last pooling layer).")
    var feedbackLayer: Int?

    @Option(help: "Checkpoint file (default: <output>.checkpoint).")
    var checkpoint: String?

    @Flag(help: "Continue from the checkpoint of an interrupted run with the same settings.")
    var resume = false

    func validate() throws {
        guard momentum >= 0 && momentum < 1 else { throw ValidationError("--momentum must be in [0, 1), got \(momentum)") }
        guard reconstructionWeight >= 0 && reconstructionWeight.isFinite else {
            throw ValidationError("--lambda must be a non-negative number, got \(reconstructionWeight)")
        }
        guard weightDecay >= 0 && weightDecay.isFinite && weightDecay < 1 else {
            throw ValidationError("--weight-decay must be in [0, 1), got \(weightDecay)")
        }
        guard warmupEpochs >= 0 && warmupEpochs.isFinite && warmupEpochs <= Double(training.epochs ?? 100_000) else {
            throw ValidationError("--warmup-epochs must be between 0 and --epochs, got \(warmupEpochs)")
        }
        guard shift >= 0 && shift <= 8 else { throw ValidationError("--shift must be between 0 and 8 pixels, got \(shift)") }
        if let feedbackLayer, feedbackLayer < 1 { throw ValidationError("--feedback-layer must be at least 1, got \(feedbackLayer)") }
    }

    /// What every rank sets up before training: data, network, trainer (restored with --resume).
    struct Prepared {
        var splits: DatasetSplits
        var epochs: Int
        var settings: JointTrainingSettings
        var network: JointNetwork
        var trainer: JointTrainer
        var runMetadata: [String: String]
        var checkpointPath: String
    }

    /// Under mpirun/srun the ranks train data-parallel (each global batch split across them, one
    /// gradient all-reduce per step, identical weights checked at every epoch's end); rank 0 prints
    /// and writes the checkpoints and the model. Started alone it is one rank without MPI.
    func run() throws {
        let world = Launcher.communicator()
        defer { world.finalize() }
        var prepared: Prepared?
        try agreeingOnErrors(world) { prepared = try prepare(world) }
        guard let prepared else { return }
        let (splits, epochs, trainer) = (prepared.splits, prepared.epochs, prepared.trainer)
        let checkpointURL = URL(fileURLWithPath: prepared.checkpointPath)
        var allReduceBefore = trainer.allReduceTime
        while trainer.epoch < epochs {
            let bar = ProgressBar(
                total: trainer.stepsPerEpoch(splits.train), label: "epoch \(trainer.epoch + 1)/\(epochs)",
                enabled: !runtime.quiet && world.isRoot)
            let epochStart = Date()
            var imagesThisRun = 0
            let seenBefore = trainer.runningSeen
            var completed = false
            try agreeingOnErrors(
                world, hint: { $0 is NonFiniteLossError ? "(options: --learning-rate, --warmup-epochs, --lr-schedule)" : nil }
            ) {
                completed = try trainer.runEpoch(on: splits.train, shouldStop: { Interrupt.requested }) { t in
                    imagesThisRun = t.runningSeen - seenBefore
                    let s = t.runningSummary
                    let rate = Double(imagesThisRun) / max(1e-9, Date().timeIntervalSince(epochStart))
                    bar.update(t.step, String(format: "loss %.4f acc %.3f rec %.3f %.0f img/s", s.loss, s.accuracy, s.reconstruction, rate))
                }
            }
            bar.finish()
            let trainingSeconds = Date().timeIntervalSince(epochStart)
            if !completed {
                try agreeingOnErrors(world) {
                    if world.isRoot { try trainer.checkpoint(metadata: prepared.runMetadata).write(to: checkpointURL) }
                }
                log(
                    "interrupted: checkpoint written to \(prepared.checkpointPath) (epoch \(trainer.epoch + 1), step \(trainer.step)); continue with --resume",
                    world)
                throw ExitCode(130)
            }
            let test = Inference.evaluate(prepared.network, on: splits.test, communicator: world)
            let allReduce = trainer.allReduceTime
            let reduced = (seconds: allReduce.seconds - allReduceBefore.seconds, steps: allReduce.calls - allReduceBefore.calls)
            allReduceBefore = allReduce
            log(
                String(
                    format: "epoch %d: test accuracy %.4f, mean reconstruction L2 %.4f (%.1f s; training %.1f images/s)",
                    trainer.epoch, test.accuracy, test.reconstructionL2, Date().timeIntervalSince(epochStart),
                    Double(imagesThisRun) / max(1e-9, trainingSeconds))
                    + (world.size > 1
                        ? String(
                            format: "; %d ranks, gradient all-reduce %.2f ms per step, %.1f %% of the training time",
                            world.size, reduced.seconds * 1000 / Double(max(1, reduced.steps)),
                            reduced.seconds / max(1e-9, trainingSeconds) * 100) : ""),
                world)
            try agreeingOnErrors(world) {
                try trainer.checkReplicas(when: "after epoch \(trainer.epoch)")
                if world.isRoot { try trainer.checkpoint(metadata: prepared.runMetadata).write(to: checkpointURL) }
            }
        }

        let test = Inference.evaluate(prepared.network, on: splits.test, communicator: world)
        let validation = Inference.evaluate(prepared.network, on: splits.validation, communicator: world)
        try agreeingOnErrors(world) {
            guard world.isRoot else { return }
            var final = prepared.runMetadata.merging(prepared.settings.metadata) { a, _ in a }
            final["test_accuracy"] = String(format: "%.6f", test.accuracy)
            final["test_count"] = String(splits.test.count)
            final["test_reconstruction_l2"] = String(format: "%.6f", test.reconstructionL2)
            final["validation_accuracy"] = String(format: "%.6f", validation.accuracy)
            try prepared.network.archive(metadata: final).write(to: URL(fileURLWithPath: output))
            print(
                String(
                    format: "test accuracy %.2f %% on %d images, mean reconstruction L2 %.3f", test.accuracy * 100, splits.test.count,
                    test.reconstructionL2))
            print("model written to \(output)" + (world.size > 1 ? " (trained on \(world.size) ranks)" : ""))
        }
    }

    /// Reads the data, builds the network and the trainer, restores the checkpoint with --resume
    /// (every rank does the same; only rank 0 logs).
    func prepare(_ world: any Communicator) throws -> Prepared {
        runtime.apply()
        Interrupt.install()
        try checkOutputPath(output)
        let checkpointPath = checkpoint ?? output + ".checkpoint"
        try checkOutputPath(checkpointPath)
        if resume { try checkInputFile(checkpointPath, what: "checkpoint") }

        let splits = try data.load(seed: training.seed)
        let epochs = training.epochs ?? (splits.train.count < 10_000 ? 30 : 15)
        if warmupEpochs > Double(epochs) {
            throw ValidationError("--warmup-epochs must be between 0 and --epochs (\(epochs)), got \(warmupEpochs)")
        }
        guard let architecture = Architecture.forImageShape(splits.train.imageShape) else {
            throw ModelFileError("no Table 1 architecture for images of shape \(splits.train.imageShape)", cause: .invalidData)
        }
        let featureLayers = architecture == .mnist ? 10 : 14
        if let feedbackLayer, feedbackLayer > featureLayers {
            throw ValidationError("--feedback-layer must be at most \(featureLayers) for the \(architecture) network")
        }
        var settings = JointTrainingSettings()
        settings.epochs = epochs
        settings.batchSize = training.batchSize
        settings.learningRate = training.learningRate
        settings.learningRateSchedule = learningRateSchedule
        settings.warmupEpochs = warmupEpochs
        settings.weightDecay = weightDecay
        settings.augmentation = Augmentation(
            maxShift: shift, horizontalFlip: flip ?? Augmentation.defaults(forImageShape: splits.train.imageShape).horizontalFlip)
        settings.optimizer = optimizer
        settings.momentum = momentum
        settings.reconstructionWeight = reconstructionWeight
        settings.reconstructionNorm = reconstructionNorm
        settings.seed = training.seed
        settings.gradientGroupSize = training.gradientGroupSize
        let network = JointNetwork(
            architecture: architecture, classCount: splits.train.classCount,
            feedbackLayer: feedbackLayer, seed: training.seed)
        network.startDecoderAtMean(of: splits.train.images)
        let trainer = try JointTrainer(network: network, settings: settings, communicator: world)
        let runMetadata = metadata(splits, ranks: world.size)
        if resume {
            let archive = try SafetensorsArchive(contentsOf: URL(fileURLWithPath: checkpointPath))
            let expected = runMetadata.merging(settings.metadata) { a, _ in a }
                .merging(["feedback_layer": String(network.feedbackLayer)]) { a, _ in a }
            for key in [
                "dataset", "seed", "batch_size", "feedback_layer", "train_count", "optimizer",
                "learning_rate_schedule", "warmup_epochs", "augmentation", "weight_decay"
            ]
            where archive.metadata[key] != expected[key] {
                throw ModelFileError(
                    "checkpoint \(checkpointPath) was made with another \(key) (\(archive.metadata[key] ?? "none"), now \(expected[key] ?? "none")); resume with the same options"
                )
            }
            try trainer.restore(from: archive, file: checkpointPath)
            log(
                "resuming at epoch \(trainer.epoch + 1), step \(trainer.step)"
                    + (archive.metadata["ranks"].map {
                        $0 != String(world.size) ? " (the checkpoint was written by a run on \($0) ranks)" : ""
                    } ?? ""), world)
        }
        log(
            "training \(architecture) network on \(splits.train.count) \(data.dataset.rawValue) images "
                + "(\(splits.validation.count) held out, \(splits.test.count) test), \(Parallel.threadCount) threads"
                + (world.size > 1
                    ? " on each of \(world.size) ranks (\(training.batchShare(ranks: world.size)) of each batch per rank)" : "")
                + ", augmentation \(settings.augmentation.summary), \(settings.learningRateSchedule.rawValue) learning rate", world)
        if world.isRoot, let warning = training.idleRanksWarning(ranks: world.size) { printError(warning) }
        return Prepared(
            splits: splits, epochs: epochs, settings: settings, network: network, trainer: trainer,
            runMetadata: runMetadata, checkpointPath: checkpointPath)
    }

    func metadata(_ splits: DatasetSplits, ranks: Int) -> [String: String] {
        [
            "dataset": data.dataset.rawValue, "ranks": String(ranks), "train_count": String(splits.train.count),
            "validation_count": String(splits.validation.count), "validation_fraction": String(data.validationFraction),
            "limit": data.limit.map(String.init) ?? "none", "threads": String(Parallel.threadCount)
        ]
    }

    /// A progress line on standard error, from rank 0 only.
    func log(_ line: String, _ world: any Communicator) {
        if !runtime.quiet && world.isRoot { printError(line) }
    }
}
