import Autodiff
import Datasets
import Foundation
import NeuralNetworks
import Tensors
import ToolkitCore

/// Settings of joint training (Eq. 5): `loss = CE(F(E(x)), y) + lambda * ||x - D(E(x))||`.
public struct JointTrainingSettings: Sendable {
    public var epochs = 10
    public var batchSize = 64
    public var learningRate: Float = 1e-3
    public var learningRateSchedule = LearningRateSchedule.cosine
    /// Epochs over which the rate rises linearly from 0 to the schedule's rate (0: none).
    public var warmupEpochs: Double = 0
    /// Random shifts and flips of the training images (each step draws its own from the seed).
    public var augmentation = Augmentation.none
    /// L2 penalty added to the gradients (Adam/SGD `weight_decay`).
    public var weightDecay: Float = 0
    public var optimizer = OptimizerKind.adam
    /// SGD momentum (ignored by Adam).
    public var momentum: Float = 0.9
    /// lambda, the weight of the reconstruction term.
    public var reconstructionWeight: Float = 1
    /// The reconstruction norm of the loss.
    public var reconstructionNorm = ReconstructionNorm.l2
    /// Seed of initialisation and shuffling.
    public var seed: UInt64 = 0

    public init() {}

    /// The settings as metadata strings.
    public var metadata: [String: String] {
        ["epochs": String(epochs), "batch_size": String(batchSize), "learning_rate": String(learningRate),
         "optimizer": optimizer.rawValue, "momentum": String(momentum),
         "learning_rate_schedule": learningRateSchedule.rawValue, "warmup_epochs": String(warmupEpochs), "augmentation": augmentation.summary,
         "weight_decay": String(weightDecay),
         "reconstruction_weight": String(reconstructionWeight), "reconstruction_norm": reconstructionNorm.rawValue,
         "seed": String(seed),
         "loss": "cross_entropy + reconstruction_weight * mean_over_batch(\(reconstructionNorm.rawValue)(x - D(E(x))))"]
    }
}

/// Training stopped because the loss became NaN or infinite.
public struct NonFiniteLossError: ToolkitError {
    public let epoch: Int
    public let step: Int
    /// What is left on disk, such as "the last good checkpoint is kept".
    public var kept: String = "the last good checkpoint is kept"
    public var description: String {
        "the training loss became NaN or infinite at epoch \(epoch), step \(step); \(kept). Try a lower learning rate."
    }
    public var cause: ErrorCause { .internalFailure }
}

/// Runs joint training of E, F and D, one step or one epoch at a time, and can
/// save and restore its complete state (weights, optimizer, position, RNG).
///
/// Position: `epoch` epochs are complete and `step` steps of the next one are done.
/// The shuffle of an epoch is drawn from `epochGenerator`, the generator state at
/// the start of that epoch, so a run resumed mid-epoch replays the same order.
public final class JointTrainer {
    public let network: JointNetwork
    public let settings: JointTrainingSettings
    let optimizer: Optimizer
    public private(set) var epoch = 0
    public private(set) var step = 0
    var epochGenerator: SeededGenerator

    /// Statistics of the steps run so far in the current epoch.
    public private(set) var runningLoss = 0.0, runningCorrect = 0, runningSeen = 0, runningReconstruction = 0.0

    /// A trainer for a freshly initialised network.
    public init(network: JointNetwork, settings: JointTrainingSettings) throws {
        self.network = network
        self.settings = settings
        optimizer = try makeOptimizer(settings.optimizer, learningRate: settings.learningRate, momentum: settings.momentum,
                                      weightDecay: settings.weightDecay)
        epochGenerator = SeededGenerator(seed: settings.seed &+ 0x5EED)
    }

    /// Steps per epoch for `data`.
    public func stepsPerEpoch(_ data: LabeledImages) -> Int { (data.count + settings.batchSize - 1) / settings.batchSize }

    /// The batches of the current epoch.
    func epochBatches(_ data: LabeledImages) -> [[Int]] {
        var g: SeededGenerator? = epochGenerator
        return data.batchIndices(size: settings.batchSize, shuffledBy: &g)
    }

    /// Runs steps until the epoch ends or `shouldStop` returns true; returns true when the epoch completed.
    /// `onStep` is called after every step.
    public func runEpoch(on data: LabeledImages, shouldStop: () -> Bool = { false }, onStep: (JointTrainer) -> Void = { _ in }) throws -> Bool {
        let batches = epochBatches(data)
        while step < batches.count {
            if shouldStop() { return false }
            let progress = Double(epoch * batches.count + step) / Double(max(1, settings.epochs * batches.count))
            let done = Double(epoch * batches.count + step + 1)
            let warmup = settings.warmupEpochs > 0 ? min(1, done / (settings.warmupEpochs * Double(batches.count))) : 1
            optimizer.learningRate = settings.learningRateSchedule.rate(base: settings.learningRate, progress: progress) * Float(warmup)
            var batch = data.subset(batches[step])
            if !settings.augmentation.isIdentity {
                // A generator per step (from seed, epoch and step) so that a resumed run draws the same shifts.
                var generator = SeededGenerator(seed: settings.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch) << 32 &+ UInt64(step) &+ 0xA6)
                batch.images = settings.augmentation.apply(to: batch.images, using: &generator)
            }
            try trainStep(batch)
            step += 1
            onStep(self)
        }
        // Next epoch: advance the shuffle generator past this epoch's draw.
        var g: SeededGenerator? = epochGenerator
        _ = data.batchIndices(size: settings.batchSize, shuffledBy: &g)
        epochGenerator = g!
        epoch += 1
        step = 0
        runningLoss = 0; runningCorrect = 0; runningSeen = 0; runningReconstruction = 0
        return true
    }

    /// One optimisation step on a batch.
    public func trainStep(_ batch: LabeledImages) throws {
        let tape = Tape()
        let x = tape.constant(batch.images)
        let outputs = network(x)
        let crossEntropy = softmaxCrossEntropy(logits: outputs.logits, labels: batch.labels)
        let reconstruction = settings.reconstructionNorm.perSample(outputs.reconstruction, x).mean()
        let loss = crossEntropy + reconstruction * settings.reconstructionWeight
        guard loss.value.storage[0].isFinite else { throw NonFiniteLossError(epoch: epoch + 1, step: step + 1) }
        let gradients = tape.gradients(of: loss)
        optimizer.step(network.namedParameters, gradients: gradients)
        let predictions = outputs.logits.value.argmaxRows()
        runningLoss += Double(loss.value.storage[0]) * Double(batch.count)
        runningReconstruction += Double(reconstruction.value.storage[0]) * Double(batch.count)
        runningCorrect += zip(predictions, batch.labels).filter { $0 == $1 }.count
        runningSeen += batch.count
    }

    /// Mean loss, accuracy and reconstruction distance of this epoch's steps so far.
    public var runningSummary: (loss: Double, accuracy: Double, reconstruction: Double) {
        let n = Double(max(1, runningSeen))
        return (runningLoss / n, Double(runningCorrect) / n, runningReconstruction / n)
    }

    // MARK: Checkpoints

    /// The complete training state as a safetensors archive.
    public func checkpoint(metadata extra: [String: String]) -> SafetensorsArchive {
        var archive = network.archive(metadata: extra.merging(settings.metadata) { a, _ in a })
        for (key, value) in optimizer.state { archive.tensors["optimizer." + key] = .float32(value) }
        archive.metadata["checkpoint_epoch"] = String(epoch)
        archive.metadata["checkpoint_step"] = String(step)
        archive.metadata["checkpoint_generator"] = epochGenerator.state.map(String.init).joined(separator: ",")
        archive.metadata["checkpoint_running"] = "\(runningLoss),\(runningCorrect),\(runningSeen),\(runningReconstruction)"
        return archive
    }

    /// Restores weights, optimizer state and position from a checkpoint written by `checkpoint(metadata:)`
    /// with the same settings.
    public func restore(from archive: SafetensorsArchive, file: String) throws {
        try archive.load(into: network.namedParameters, prefix: "")
        var state: [String: Tensor] = [:]
        for (key, value) in archive.tensors where key.hasPrefix("optimizer.") {
            guard case .float32(let t) = value else { throw ModelFileError("\(file): optimizer state '\(key)' is not F32") }
            state[String(key.dropFirst("optimizer.".count))] = t
        }
        try optimizer.restore(state)
        epoch = try archive.requiredInt("checkpoint_epoch", in: file)
        step = try archive.requiredInt("checkpoint_step", in: file)
        let words = try archive.required("checkpoint_generator", in: file).split(separator: ",").compactMap { UInt64($0) }
        guard words.count == 4 else { throw ModelFileError("\(file): corrupt generator state in checkpoint") }
        epochGenerator = SeededGenerator(state: words)
        let running = (archive.metadata["checkpoint_running"] ?? "0,0,0,0").split(separator: ",").map(String.init)
        if running.count == 4 {
            runningLoss = Double(running[0]) ?? 0; runningCorrect = Int(running[1]) ?? 0
            runningSeen = Int(running[2]) ?? 0; runningReconstruction = Double(running[3]) ?? 0
        }
    }
}

/// Batched inference helpers (no tape).
public enum Inference {
    /// Accuracy of `network` on `data` and the mean per-image L2 reconstruction distance.
    public static func evaluate(_ network: JointNetwork, on data: LabeledImages) -> (accuracy: Double, reconstructionL2: Double) {
        var correct = 0
        var distance = 0.0
        for range in data.images.batchRanges() {
            let start = range.lowerBound, batch = data.images.slice(range)
            let outputs = network(Variable(batch))
            let predictions = outputs.logits.value.argmaxRows()
            for (i, p) in predictions.enumerated() where p == data.labels[start + i] { correct += 1 }
            distance += Double(l2NormPerSample(Variable(batch) - outputs.reconstruction).value.sum())
        }
        return (Double(correct) / Double(max(1, data.count)), distance / Double(max(1, data.count)))
    }
}
