import Autodiff
import Foundation
import NeuralNetworks
import Tensors

/// The verdict of Eq. 4 for one input: the class F(E(x)) and whether C flags it.
public struct Verdict: Equatable, Sendable {
    /// The predicted class.
    public let predictedClass: Int
    /// The score of the detector file's kind (the paper's `||delta - C(delta)||` by default).
    public let score: Float
    /// True when `score` is above the detector's threshold.
    public let isAdversarial: Bool
}

/// A trained DAFAR system ready for use: classify, reconstruct, score and inspect.
///
/// ```swift
/// let dafar = try DAFARModel(contentsOf: URL(fileURLWithPath: "m.safetensors"),
///                            detector: URL(fileURLWithPath: "d.safetensors"))
/// for verdict in dafar.inspect(images) where verdict.isAdversarial { ... }
/// ```
public final class DAFARModel: Sendable {
    /// E, F and D.
    public let network: JointNetwork
    /// C with its calibration (nil when only a model was loaded).
    public let detector: AnomalyDetector?
    /// The model file's metadata.
    public let metadata: [String: String]
    /// SHA-256 of the model file (empty when built in memory).
    public let modelHash: String

    /// Wraps networks already in memory.
    public init(network: JointNetwork, detector: AnomalyDetector?, metadata: [String: String] = [:], modelHash: String = "") {
        self.network = network
        self.detector = detector
        self.metadata = metadata
        self.modelHash = modelHash
    }

    /// Loads a model file and, optionally, its detector file. Throws when a file is
    /// missing or corrupt, or when the detector was trained for another model.
    public convenience init(contentsOf modelURL: URL, detector detectorURL: URL? = nil) throws {
        let (network, metadata) = try JointNetwork.load(contentsOf: modelURL)
        let hash = try SafetensorsArchive.sha256Hex(of: modelURL)
        var detector: AnomalyDetector?
        if let detectorURL {
            let archive = try SafetensorsArchive(contentsOf: detectorURL)
            let loaded = try AnomalyDetector(archive: archive, file: detectorURL.path)
            guard archive.metadata["model_sha256"] == hash else {
                throw ModelFileError(
                    "\(detectorURL.path) was trained for another model (model hash \(archive.metadata["model_sha256"]?.prefix(12) ?? "none")..., this model is \(hash.prefix(12))...); train a detector for it with dafar-detector"
                )
            }
            guard loaded.inputSize == network.architecture.inputShape.elementCount else {
                throw ModelFileError(
                    "\(detectorURL.path) reads residuals of \(loaded.inputSize) values but the model's images have \(network.architecture.inputShape.elementCount)"
                )
            }
            guard loaded.calibration != nil else { throw ModelFileError("\(detectorURL.path) has no threshold; it was not calibrated") }
            detector = loaded
        }
        self.init(network: network, detector: detector, metadata: metadata, modelHash: hash)
    }

    /// `[C, H, W]` of the images the model reads.
    public var inputShape: [Int] { network.architecture.inputShape }

    /// The threshold used for verdicts.
    public var threshold: Float? { detector?.calibration?.active }

    func checkShape(_ images: Tensor) {
        precondition(
            images.rank == 4 && Array(images.shape.dropFirst()) == inputShape,
            "images of shape \(images.shape) do not fit a model for \(inputShape) images")
    }

    /// Logits F(E(x)), `[N, K]`.
    public func logits(_ images: Tensor) -> Tensor {
        checkShape(images)
        return images.mapBatches { network.logits(Variable($0)).value }
    }

    /// Predicted classes.
    public func classify(_ images: Tensor) -> [Int] { logits(images).argmaxRows() }

    /// Reconstructions D(E(x)).
    public func reconstruct(_ images: Tensor) -> Tensor {
        checkShape(images)
        return images.mapBatches { network.reconstruct(Variable($0)).value }
    }

    /// Anomaly scores of the detector file's kind (requires a detector).
    public func scores(_ images: Tensor) -> [Float] {
        guard let detector else { preconditionFailure("scores need a detector; load one with DAFARModel(contentsOf:detector:)") }
        return scores(images, detector.scoreDefinition)
    }

    /// Scores of any kind, whatever the detector file holds (the residual and fused kinds need a detector).
    public func scores(_ images: Tensor, _ definition: FeedbackScore) -> [Float] {
        checkShape(images)
        return images.mapBatches { network.logitsAndScore(Variable($0), definition, detector: detector).score.value.storage }
    }

    /// Verdicts of Eq. 4 for a batch of images (requires a detector).
    public func inspect(_ images: Tensor) -> [Verdict] {
        guard let threshold = detector?.calibration?.active else {
            preconditionFailure("inspect needs a calibrated detector; load one with DAFARModel(contentsOf:detector:)")
        }
        let (logits, scores) = logitsAndScores(images)
        return zip(logits.argmaxRows(), scores).map { Verdict(predictedClass: $0, score: $1, isAdversarial: $1 > threshold) }
    }

    /// The logits `[N, classCount]` and the detector file's scores of `images`, one forward pass per
    /// chunk of `Tensor.defaultInferenceBatchSize` images from the first, no tape: what `inspect`
    /// (and any verdict that also wants the probabilities) is made of.
    public func logitsAndScores(_ images: Tensor) -> (logits: Tensor, scores: [Float]) {
        guard let detector else { preconditionFailure("scores need a detector; load one with DAFARModel(contentsOf:detector:)") }
        checkShape(images)
        var logits: [Tensor] = [], scores: [Float] = []
        scores.reserveCapacity(images.batchSize)
        for range in images.batchRanges() {
            let (chunkLogits, chunkScores) = network.logitsAndScore(
                Variable(images.slice(range)), detector.scoreDefinition, detector: detector)
            logits.append(chunkLogits.value)
            scores += chunkScores.value.storage
        }
        switch logits.count {
        case 0: return (Tensor(shape: [0, network.classCount], storage: []), [])
        case 1: return (logits[0], scores)
        default: return (Tensor.concatenate(logits), scores)
        }
    }

    // MARK: Differentiable views (attacks)

    /// F(E(x)) recorded on x's tape.
    public func logits(_ x: Variable) -> Variable { network.logits(x) }

    /// The detector file's score of x (the paper's C(x - D(E(x))), decision feedback or both fused)
    /// recorded on x's tape, `[N]`: what an attacker who knows the detector differentiates.
    public func score(_ x: Variable) -> Variable {
        guard let detector else { preconditionFailure("score needs a detector") }
        return network.logitsAndScore(x, detector.scoreDefinition, detector: detector).score
    }
}
