import Autodiff
import Foundation
import NeuralNetworks
import Tensors

/// MagNet's MNIST denoising autoencoder (Meng and Chen 2017, structure `[3, "average", 3]`,
/// sigmoid activations, 'same' padding), for images `[C, H, W]`:
///
/// ```
/// 0 Conv2d(C, f, 3, padding=1)   1 Sigmoid   2 AvgPool2d(2)
/// 3 Conv2d(f, f, 3, padding=1)   4 Sigmoid                       (encoder, f = filters = 3)
/// 5 Conv2d(f, f, 3, padding=1)   6 Sigmoid   7 Upsample(size=(H, W))
/// 8 Conv2d(f, f, 3, padding=1)   9 Sigmoid
/// 10 Conv2d(f, C, 3, padding=1) 11 Sigmoid                       (decoder, output in (0, 1))
/// ```
///
/// The pooling is a true average pool (`AveragePool2D`); the upsampling is nearest
/// neighbour back to `H x W` (exactly 2x for even sizes, as Keras' `UpSampling2D`).
/// MagNet's L2 activity regulariser (1e-9) is omitted.
public final class MagNetAutoencoder {
    /// `[C, H, W]` of the images it reconstructs.
    public let imageShape: [Int]
    /// Channels of the hidden convolutions (MagNet: 3).
    public let filters: Int
    /// The layers above; parameter names `0.weight`, `0.bias`, `3.weight`, ...
    public let network: Sequential

    /// Creates an untrained autoencoder (PyTorch's default initialisation, seeded).
    public init(imageShape: [Int], filters: Int = 3, using generator: inout SeededGenerator) {
        precondition(
            imageShape.count == 3 && imageShape.allSatisfy { $0 > 0 } && imageShape[1] >= 2 && imageShape[2] >= 2,
            "MagNet autoencoder needs an image shape [C, H, W] with H, W >= 2, got \(imageShape)")
        precondition(filters > 0, "MagNet autoencoder needs at least one filter, got \(filters)")
        self.imageShape = imageShape
        self.filters = filters
        let (c, h, w) = (imageShape[0], imageShape[1], imageShape[2])
        func conv(_ input: Int, _ output: Int) -> Conv2D {
            Conv2D(inputChannels: input, outputChannels: output, kernelSize: 3, padding: 1, using: &generator)
        }
        network = Sequential([
            conv(c, filters), Sigmoid(), AveragePool2D(channels: filters, size: 2),
            conv(filters, filters), Sigmoid(),
            conv(filters, filters), Sigmoid(), Upsample2D(height: h, width: w),
            conv(filters, filters), Sigmoid(),
            conv(filters, c), Sigmoid()
        ])
    }

    /// `AE(x)` for images `[N, C, H, W]`, `batchSize` images per call (no tape).
    public func reconstruct(_ images: Tensor, batchSize: Int = Tensor.defaultInferenceBatchSize) -> Tensor {
        checkShape(images)
        return images.mapBatches(size: batchSize) { network($0) }
    }

    /// Trains on clean images `[N, C, H, W]` as MagNet does: each step feeds
    /// `clip(x + noise * N(0, 1), 0, 1)` (fresh noise every step) and minimises the mean
    /// squared error to the clean `x`, with Adam.
    /// - Returns: the mean batch loss of each epoch.
    /// - Throws: `BaselineError` when a setting is out of range or there are no images.
    @discardableResult
    public func train(
        on images: Tensor, settings: TrainingSettings = TrainingSettings(),
        noiseStandardDeviation: Float = 0.1, using generator: inout SeededGenerator
    ) throws -> [Float] {
        checkShape(images)
        guard noiseStandardDeviation >= 0, noiseStandardDeviation.isFinite else {
            throw BaselineError("autoencoder noise must be a non-negative number, got \(noiseStandardDeviation)")
        }
        return try trainWithAdam(
            parameters: network.namedParameters, sampleCount: images.batchSize,
            settings: settings, using: &generator
        ) { tape, batch, generator in
            let clean = images.gather(batch)
            let noise = Tensor.normal(clean.shape, standardDeviation: noiseStandardDeviation, using: &generator)
            let noisy = (clean + noise).clamped(0, 1)
            return meanSquaredError(network(tape.constant(noisy)), tape.constant(clean))
        }
    }

    private func checkShape(_ images: Tensor) {
        preconditionImages(images, "MagNet autoencoder")
        precondition(
            Array(images.shape.dropFirst()) == imageShape,
            "MagNet autoencoder for images \(imageShape) got a batch of shape \(images.shape)")
    }

    // MARK: - Files

    /// Tensor-name prefix in files (`autoencoder.0.weight`).
    static let prefix = "autoencoder"

    /// Writes the weights to a safetensors file (atomically), with `image_shape`,
    /// `filters` and `baseline = magnet-autoencoder` in the metadata plus `metadata`.
    public func save(to url: URL, metadata: [String: String] = [:]) throws {
        var archive = SafetensorsArchive(
            metadata: metadata.merging([
                "baseline": "magnet-autoencoder",
                "image_shape": imageShape.map(String.init).joined(separator: ","),
                "filters": String(filters)
            ]) { _, ours in ours })
        archive.add(network.namedParameters, prefix: Self.prefix)
        try archive.write(to: url)
    }

    /// Reads an autoencoder written by `save(to:)`.
    /// - Throws: `SafetensorsError` for an unreadable file, `BaselineError` (exit 65) when
    ///   it is not a MagNet autoencoder file.
    public static func load(from url: URL) throws -> MagNetAutoencoder {
        let archive = try SafetensorsArchive(contentsOf: url)
        guard archive.metadata["baseline"] == "magnet-autoencoder" else {
            throw BaselineError(
                "\(url.path) is not a MagNet autoencoder file (metadata 'baseline' is "
                    + "'\(archive.metadata["baseline"] ?? "missing")')", cause: .invalidData)
        }
        let shape = try parseImageShape(archive.metadata["image_shape"], file: url)
        guard let filters = archive.metadata["filters"].flatMap({ Int($0) }), filters > 0 else {
            throw BaselineError("\(url.path) has no valid 'filters' entry in its metadata", cause: .invalidData)
        }
        var generator = SeededGenerator(seed: 0)
        let autoencoder = MagNetAutoencoder(imageShape: shape, filters: filters, using: &generator)
        try archive.load(into: autoencoder.network.namedParameters, prefix: prefix)
        return autoencoder
    }
}

/// `"C,H,W"` from a file's metadata as `[C, H, W]` (positive, H and W >= 2), or a `BaselineError`.
func parseImageShape(_ text: String?, file url: URL) throws -> [Int] {
    let shape = (text ?? "").split(separator: ",").compactMap { Int($0) }
    guard shape.count == 3, shape.allSatisfy({ $0 > 0 }), shape[1] >= 2, shape[2] >= 2 else {
        throw BaselineError(
            "\(url.path) has no valid 'image_shape' (C,H,W) in its metadata, got '\(text ?? "missing")'",
            cause: .invalidData)
    }
    return shape
}
