import Autodiff
import Datasets
import Distributed
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
    /// Examples per gradient group: each batch's gradient is the exact sum of its groups' (see
    /// `DataParallelStep`), so the model does not depend on the number of MPI ranks; 0: the whole
    /// batch (or each rank's part of it) at once, slightly faster, rank-count dependent.
    public var gradientGroupSize = 32

    public init() {}

    /// The settings as metadata strings.
    public var metadata: [String: String] {
        [
            "epochs": String(epochs), "batch_size": String(batchSize), "learning_rate": String(learningRate),
            "optimizer": optimizer.rawValue, "momentum": String(momentum),
            "learning_rate_schedule": learningRateSchedule.rawValue, "warmup_epochs": String(warmupEpochs),
            "augmentation": augmentation.summary,
            "weight_decay": String(weightDecay),
            "reconstruction_weight": String(reconstructionWeight), "reconstruction_norm": reconstructionNorm.rawValue,
            "seed": String(seed), "gradient_group_size": String(gradientGroupSize),
            "loss": "cross_entropy + reconstruction_weight * mean_over_batch(\(reconstructionNorm.rawValue)(x - D(E(x))))"
        ]
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
///
/// Data-parallel over the ranks of `communicator` (see `DataParallelStep`): every rank runs the same
/// trainer with the same settings; each global batch's gradient groups are shared out across the
/// ranks and summed exactly by one exchange per step, so that the model is the same as one process's.
/// With a `SingleProcessCommunicator` (the default) no MPI call is made; with group size 0 as well,
/// a step is one pass over the whole batch.
public final class JointTrainer {
    public let network: JointNetwork
    public let settings: JointTrainingSettings
    /// The ranks that train together (one process by default).
    public let communicator: any Communicator
    let optimizer: Optimizer
    let parallel: DataParallelStep
    /// Set when some rank asked to stop (Ctrl-C) during the last step: every rank stops at the same step.
    var stopAgreed = false
    public private(set) var epoch = 0
    public private(set) var step = 0
    var epochGenerator: SeededGenerator

    /// Statistics of the steps run so far in the current epoch.
    public private(set) var runningLoss = 0.0, runningCorrect = 0, runningSeen = 0, runningReconstruction = 0.0

    /// A trainer for a freshly initialised network.
    public init(
        network: JointNetwork, settings: JointTrainingSettings,
        communicator: any Communicator = SingleProcessCommunicator()
    ) throws {
        self.network = network
        self.settings = settings
        self.communicator = communicator
        parallel = DataParallelStep(world: communicator, parameters: network.namedParameters, groupSize: settings.gradientGroupSize)
        optimizer = try makeOptimizer(
            settings.optimizer, learningRate: settings.learningRate, momentum: settings.momentum,
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
    /// `onStep` is called after every step. On several ranks `shouldStop` travels with the step's
    /// all-reduce, and every rank stops after the step in which any rank asked to.
    public func runEpoch(on data: LabeledImages, shouldStop: () -> Bool = { false }, onStep: (JointTrainer) -> Void = { _ in }) throws
        -> Bool
    {
        let batches = epochBatches(data)
        let distributed = communicator.size > 1
        while step < batches.count {
            if distributed ? stopAgreed : shouldStop() { return false }
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
            try trainStep(batch, stopRequested: distributed && shouldStop())
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

    /// One optimisation step on a (global) batch; on several ranks each computes its part of it.
    /// `stopRequested` is this rank's wish to stop, shared with the other ranks (see `runEpoch`).
    public func trainStep(_ batch: LabeledImages, stopRequested: Bool = false) throws {
        if communicator.size > 1 || settings.gradientGroupSize > 0 { return try groupedStep(batch, stopRequested: stopRequested) }
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

    /// The step in gradient groups or on several ranks: statistics [loss, reconstruction, correct,
    /// images, stop] summed with the gradients.
    func groupedStep(_ batch: LabeledImages, stopRequested: Bool) throws {
        let (gradients, totals) = parallel.gradients(count: batch.count, statistics: 5) { tape, part in
            let x = tape.constant(batch.images.slice(part))
            let labels = Array(batch.labels[part])
            let outputs = network(x)
            let crossEntropy = softmaxCrossEntropy(logits: outputs.logits, labels: labels)
            let reconstruction = settings.reconstructionNorm.perSample(outputs.reconstruction, x).mean()
            let loss = crossEntropy + reconstruction * settings.reconstructionWeight
            let correct = zip(outputs.logits.value.argmaxRows(), labels).filter { $0 == $1 }.count
            let n = Float(part.count)
            return (loss, [loss.value.storage[0] * n, reconstruction.value.storage[0] * n, Float(correct), n, stopRequested ? 1 : 0])
        }
        stopAgreed = stopAgreed || totals[4] > 0
        // the same sum on every rank: every rank throws at the same step, before any update
        guard totals[0].isFinite else { throw NonFiniteLossError(epoch: epoch + 1, step: step + 1) }
        optimizer.step(network.namedParameters, gradients: gradients)
        runningLoss += Double(totals[0])
        runningReconstruction += Double(totals[1])
        runningCorrect += Int(totals[2])
        runningSeen += Int(totals[3])
    }

    /// Throws `ReplicaDivergenceError` on every rank whose weights or optimizer state differ from
    /// rank 0's (a collective: every rank calls it at the same point, such as the end of an epoch).
    public func checkReplicas(when: String) throws {
        try parallel.checkReplicas(optimizer: optimizer, when: when)
    }

    /// Seconds spent in the gradient exchange so far and the number of exchanges (0 on one process).
    public var allReduceTime: (seconds: Double, calls: Int) { parallel.exchangeTime }

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
    ///
    /// On several ranks each evaluates a contiguous shard of whole inference batches and rank 0 adds
    /// the per-batch results in batch order (then broadcasts them), so every rank returns what one
    /// process computes from the same weights.
    public static func evaluate(
        _ network: JointNetwork, on data: LabeledImages,
        communicator: any Communicator = SingleProcessCommunicator()
    ) -> (accuracy: Double, reconstructionL2: Double) {
        let plan = ShardPlan(count: data.count, batchSize: Tensor.defaultInferenceBatchSize, shards: communicator.size)
        let shard = plan.range(of: communicator.rank)
        var perBatch: [Double] = []  // (correct, distance) per batch of this rank's shard
        for range in data.images.batchRanges() where shard.contains(range.lowerBound) {
            let start = range.lowerBound, batch = data.images.slice(range)
            let outputs = network(Variable(batch))
            let predictions = outputs.logits.value.argmaxRows()
            var correct = 0
            for (i, p) in predictions.enumerated() where p == data.labels[start + i] { correct += 1 }
            perBatch += [Double(correct), Double(l2NormPerSample(Variable(batch) - outputs.reconstruction).value.sum())]
        }
        if communicator.size > 1 {
            let gathered = communicator.gather(perBatch.withUnsafeBytes { Array($0) })
            var bytes = gathered.map { Array($0.joined()) } ?? []
            communicator.broadcast(&bytes, from: 0)
            perBatch = bytes.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        }
        var correct = 0.0, distance = 0.0
        for batch in stride(from: 0, to: perBatch.count, by: 2) {
            correct += perBatch[batch]
            distance += perBatch[batch + 1]
        }
        return (correct / Double(max(1, data.count)), distance / Double(max(1, data.count)))
    }
}
