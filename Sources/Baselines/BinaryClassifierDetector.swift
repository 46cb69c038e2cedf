import Autodiff
import Foundation
import NeuralNetworks
import Tensors

/// The "only-binary-classifier" baseline (Metzen et al. 2017; ART's `BinaryInputDetector`):
/// a small CNN trained to tell clean images (class 0) from adversarial images of ONE
/// attack (class 1). It is attack-dependent by construction.
///
/// Network, for images `[C, H, W]` with H, W >= 4:
/// ```
/// 0 Conv2d(C, 16, 3, padding=1)  1 ReLU  2 MaxPool2d(2)
/// 3 Conv2d(16, 32, 3, padding=1) 4 ReLU  5 MaxPool2d(2)
/// 6 Flatten  7 Linear(32 * (H/4) * (W/4), 2)        (integer division)
/// ```
/// Score = the logit margin `z_adv - z_clean`; the probability of "adversarial" is
/// `sigmoid(margin)`, a monotone function of it, so both give the same thresholds, but
/// the margin does not saturate into ties at 1.
public final class BinaryClassifierDetector: BaselineDetector {
    /// `[C, H, W]` of the images it judges.
    public let imageShape: [Int]
    /// The layers above; parameter names `0.weight`, ..., `7.bias`.
    public let network: Sequential
    /// Images per model call.
    public var batchSize = Tensor.defaultInferenceBatchSize

    /// Creates an untrained detector (PyTorch's default initialisation, seeded).
    public init(imageShape: [Int], using generator: inout SeededGenerator) {
        precondition(
            imageShape.count == 3 && imageShape[0] > 0 && imageShape[1] >= 4 && imageShape[2] >= 4,
            "binary classifier detector needs an image shape [C, H, W] with H, W >= 4, got \(imageShape)")
        self.imageShape = imageShape
        let (c, h, w) = (imageShape[0], imageShape[1], imageShape[2])
        network = Sequential([
            Conv2D(inputChannels: c, outputChannels: 16, kernelSize: 3, padding: 1, using: &generator), ReLU(), MaxPool2D(size: 2),
            Conv2D(inputChannels: 16, outputChannels: 32, kernelSize: 3, padding: 1, using: &generator), ReLU(), MaxPool2D(size: 2),
            Flatten(),
            Dense(inputSize: 32 * (h / 4) * (w / 4), outputSize: 2, using: &generator)
        ])
    }

    public var name: String { "binary-classifier" }

    /// Trains with Adam and softmax cross-entropy on a balanced set: when one side has more
    /// images, a seeded random subset of it of the other side's size is used.
    /// - Parameters:
    ///   - clean: clean images `[Nc, C, H, W]` (class 0).
    ///   - adversarial: adversarial images of one attack `[Na, C, H, W]` (class 1).
    /// - Returns: the mean batch loss of each epoch.
    /// - Throws: `BaselineError` when either set is empty or a setting is out of range.
    @discardableResult
    public func train(
        clean: Tensor, adversarial: Tensor, settings: TrainingSettings = TrainingSettings(),
        using generator: inout SeededGenerator
    ) throws -> [Float] {
        checkShape(clean)
        checkShape(adversarial)
        let count = min(clean.batchSize, adversarial.batchSize)
        guard count > 0 else {
            throw BaselineError(
                "the binary classifier detector needs clean and adversarial images, got "
                    + "\(clean.batchSize) clean and \(adversarial.batchSize) adversarial")
        }
        func balanced(_ images: Tensor) -> Tensor {
            images.batchSize == count ? images : images.gather(Array(generator.permutation(images.batchSize).prefix(count)))
        }
        let images = Tensor.concatenate([balanced(clean), balanced(adversarial)])  // [2 count, C, H, W]
        let labels = [Int](repeating: 0, count: count) + [Int](repeating: 1, count: count)
        return try trainWithAdam(
            parameters: network.namedParameters, sampleCount: 2 * count,
            settings: settings, using: &generator
        ) { tape, batch, _ in
            softmaxCrossEntropy(logits: network(tape.constant(images.gather(batch))), labels: batch.map { labels[$0] })
        }
    }

    /// The logits `[N, 2]` (column 0 clean, column 1 adversarial).
    public func logits(_ images: Tensor) -> Tensor {
        checkShape(images)
        return images.mapBatches(size: batchSize) { network($0) }
    }

    /// `z_adv - z_clean` per image.
    public func scores(_ images: Tensor) -> [Float] {
        let z = logits(images)
        return (0..<z.shape[0]).map { z.storage[2 * $0 + 1] - z.storage[2 * $0] }
    }

    /// The softmax probability of "adversarial", `sigmoid(z_adv - z_clean)`, per image.
    public func adversarialProbabilities(_ images: Tensor) -> [Float] {
        let probabilities = logits(images).softmaxRows()
        return (0..<probabilities.shape[0]).map { probabilities.storage[2 * $0 + 1] }
    }

    private func checkShape(_ images: Tensor) {
        preconditionImages(images, "binary classifier detector")
        precondition(
            Array(images.shape.dropFirst()) == imageShape,
            "binary classifier detector for images \(imageShape) got a batch of shape \(images.shape)")
    }

    // MARK: - Files

    /// Tensor-name prefix in files (`detector.0.weight`).
    static let prefix = "detector"

    /// Writes the weights to a safetensors file (atomically), with `image_shape` and
    /// `baseline = binary-classifier` in the metadata plus `metadata` (say, the attack
    /// it was trained on).
    public func save(to url: URL, metadata: [String: String] = [:]) throws {
        var archive = SafetensorsArchive(
            metadata: metadata.merging([
                "baseline": "binary-classifier",
                "image_shape": imageShape.map(String.init).joined(separator: ",")
            ]) { _, ours in ours })
        archive.add(network.namedParameters, prefix: Self.prefix)
        try archive.write(to: url)
    }

    /// Reads a detector written by `save(to:)`.
    /// - Throws: `SafetensorsError` for an unreadable file, `BaselineError` (exit 65) when
    ///   it is not a binary classifier detector file.
    public static func load(from url: URL) throws -> BinaryClassifierDetector {
        let archive = try SafetensorsArchive(contentsOf: url)
        guard archive.metadata["baseline"] == "binary-classifier" else {
            throw BaselineError(
                "\(url.path) is not a binary classifier detector file (metadata 'baseline' is "
                    + "'\(archive.metadata["baseline"] ?? "missing")')", cause: .invalidData)
        }
        let shape = try parseImageShape(archive.metadata["image_shape"], file: url)
        guard shape[1] >= 4, shape[2] >= 4 else {
            throw BaselineError(
                "\(url.path) has image shape \(shape); the binary detector needs H, W >= 4",
                cause: .invalidData)
        }
        var generator = SeededGenerator(seed: 0)
        let detector = BinaryClassifierDetector(imageShape: shape, using: &generator)
        try archive.load(into: detector.network.namedParameters, prefix: prefix)
        return detector
    }
}
