import NeuralNetworks
import Tensors
import ToolkitCore

/// A detector of adversarial images that gives every image a score.
///
/// Convention shared by all baselines: a HIGHER score means MORE adversarial, and
/// an image is flagged when its score is above a `FittedThreshold` fitted on clean
/// validation images only.
public protocol BaselineDetector {
    /// A short identifier for reports (`magnet`, `feature-squeezing`, ...).
    var name: String { get }
    /// One score per image of `images` `[N, C, H, W]`: `[N]`, higher = more adversarial.
    func scores(_ images: Tensor) -> [Float]
}

extension BaselineDetector {
    /// Fits a threshold on the scores of clean validation images at a false-positive rate.
    public func fitThreshold(cleanValidation images: Tensor, falsePositiveRate: Double) -> FittedThreshold {
        FittedThreshold(cleanScores: scores(images), falsePositiveRate: falsePositiveRate)
    }

    /// Whether each image is flagged as adversarial: `score > threshold.value`.
    public func flags(_ images: Tensor, threshold: FittedThreshold) -> [Bool] {
        threshold.flags(scores(images))
    }
}

/// The classifier a baseline protects: batched images `[N, C, H, W]` -> logits `[N, K]`,
/// evaluated without a tape (inference only).
public struct ClassifierFunction {
    /// The classifier's logits for a batch of images.
    public let logits: (Tensor) -> Tensor

    /// Wraps a logits function.
    public init(logits: @escaping (Tensor) -> Tensor) { self.logits = logits }

    /// Wraps a network whose output is the logits (inference through `network(tensor)`).
    public init(_ network: any Layer) { self.logits = { network($0) } }

    /// `softmax(logits / temperature)` row by row, `[N, K]`, computed `batchSize` images at a time.
    public func probabilities(_ images: Tensor, temperature: Float = 1, batchSize: Int = Tensor.defaultInferenceBatchSize) -> Tensor {
        precondition(temperature > 0, "softmax temperature must be positive, got \(temperature)")
        return images.mapBatches(size: batchSize) { batch in
            let z = logits(batch)
            return (temperature == 1 ? z : z.map { $0 / temperature }).softmaxRows()
        }
    }

    /// The predicted class of each image (`argmax` of the logits), `[N]`.
    public func predictions(_ images: Tensor, batchSize: Int = Tensor.defaultInferenceBatchSize) -> [Int] {
        images.mapBatches(size: batchSize, logits).argmaxRows()
    }
}

/// Checks that `images` is a non-empty-shaped `[N, C, H, W]` batch.
func preconditionImages(_ images: Tensor, _ what: @autoclosure () -> String) {
    precondition(images.rank == 4, "\(what()) needs images [N, C, H, W], got shape \(images.shape)")
}

/// A baseline setting or file a user gave that cannot be used, with a sentence saying why.
public struct BaselineError: ToolkitError, Equatable {
    /// What is wrong.
    public let description: String
    /// sysexits status: 64 for a bad setting, 65 for a bad file.
    public let cause: ErrorCause

    /// Creates an error; `cause` defaults to an invalid argument.
    public init(_ description: String, cause: ErrorCause = .invalidArgument) {
        self.description = description
        self.cause = cause
    }
}
