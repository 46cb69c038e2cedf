import Autodiff
import DAFAR
import Tensors

/// Why DAFAR gave its verdict on one image: the four pictures `dafar-inspect --explain` draws
/// and `dafar-serve`'s `POST /v1/explain` answers.
///
///     [ x | D(E(x)) | residual x - D(E(x)) | C's reconstruction of the residual ]
///
/// The two residual pictures share one scale so that they can be compared: with
/// `m = max |x - D(E(x))|` over the image (`residualMaximum`), a value `r` is shown as
/// `0.5 + 0.5 * r / m` clamped to [0, 1], so mid grey is 0, white is +m and black is -m (all mid
/// grey when m = 0). Where the detector sees an anomaly, the residual picture has structure that
/// C's picture does not reproduce.
public struct ImageExplanation: Equatable, Sendable {
    /// x, `[C, H, W]`.
    public let input: Tensor
    /// D(E(x)), `[C, H, W]`.
    public let reconstruction: Tensor
    /// x - D(E(x)), `[C, H, W]`.
    public let residual: Tensor
    /// C(x - D(E(x))) reshaped to `[C, H, W]`.
    public let detectorReconstruction: Tensor

    /// The names of the four pictures in `pictures`' order (also the JSON keys of `/v1/explain`).
    public static let pictureNames = ["input", "reconstruction", "residual", "detector_reconstruction"]

    /// Enlarged pixels between the panels of a strip.
    public static let gap = 2

    /// The explanations of `images` (`[N, C, H, W]`, fitting the model), in order. The model
    /// needs a detector. D(E(x)) comes from `DAFARModel.reconstruct` (in its inference chunks),
    /// C's output from the detector in chunks of `Tensor.defaultInferenceBatchSize`.
    public static func explain(_ dafar: DAFARModel, _ images: Tensor) -> [ImageExplanation] {
        guard let detector = dafar.detector else { preconditionFailure("an explanation needs a detector") }
        let imageShape = dafar.inputShape
        let reconstruction = dafar.reconstruct(images)  // [N, C, H, W]
        let residual = images - reconstruction  // [N, C, H, W]
        let detectorOutput = residual.mapBatches { detector.reconstruct(Variable($0)).value }  // [N, C * H * W]
        return (0..<images.batchSize).map { n in
            func item(_ tensor: Tensor) -> Tensor { tensor.slice(n..<(n + 1)).reshaped(imageShape) }
            return ImageExplanation(
                input: item(images), reconstruction: item(reconstruction), residual: item(residual),
                detectorReconstruction: item(detectorOutput))
        }
    }

    /// Wraps four `[C, H, W]` tensors of one shape.
    public init(input: Tensor, reconstruction: Tensor, residual: Tensor, detectorReconstruction: Tensor) {
        precondition(input.rank == 3, "an explanation holds [C, H, W] images, got \(input.shape)")
        precondition(
            [reconstruction, residual, detectorReconstruction].allSatisfy { $0.shape == input.shape },
            "the four pictures must share the shape \(input.shape)")
        self.input = input
        self.reconstruction = reconstruction
        self.residual = residual
        self.detectorReconstruction = detectorReconstruction
    }

    /// m = max |x - D(E(x))| over the image: the residual pictures show +-m as white / black.
    public var residualMaximum: Float { residual.storage.reduce(Float(0)) { max($0, abs($1)) } }

    /// The four pictures as drawn, `[C, H, W]` each with values in [0, 1], in `pictureNames`' order:
    /// x and D(E(x)) as they are, both residuals as `0.5 + 0.5 * r / m` (see the type's summary).
    public var pictures: [Tensor] {
        let m = residualMaximum
        func shown(_ r: Float) -> Float { m > 0 ? min(1, max(0, 0.5 + 0.5 * r / m)) : 0.5 }
        return [input, reconstruction, residual.map(shown), detectorReconstruction.map(shown)]
    }

    /// The strip of `dafar-inspect --explain`: the four pictures side by side, each `scale` times
    /// enlarged (nearest neighbour), `gap` white enlarged pixels between them.
    /// Returns `[C, scale * H, 4 * scale * W + 3 * gap]` with values in [0, 1].
    public func strip(scale: Int) -> Tensor {
        precondition(scale >= 1, "the scale of a strip must be at least 1, got \(scale)")
        let (c, h, w) = (input.shape[0], input.shape[1], input.shape[2])
        let panels = pictures
        let (height, panelWidth) = (scale * h, scale * w)
        let width = 4 * panelWidth + 3 * Self.gap
        var strip = Tensor(shape: [c, height, width], repeating: 1)
        strip.withUnsafeMutableBufferPointer { out in  // out: [C, height, width]
            for (p, panel) in panels.enumerated() {
                let left = p * (panelWidth + Self.gap)
                for channel in 0..<c {
                    for y in 0..<height {
                        for x in 0..<panelWidth {
                            out[(channel * height + y) * width + left + x] = panel.storage[(channel * h + y / scale) * w + x / scale]
                        }
                    }
                }
            }
        }
        return strip
    }
}
