import Tensors

/// An input transformation of Feature Squeezing (Xu, Evans and Qi 2018).
public enum Squeezer: Hashable, Sendable, CustomStringConvertible {
    /// `round(x * (2^bits - 1)) / (2^bits - 1)` (see `bitDepthReduction`).
    case bitDepth(bits: Int)
    /// `size x size` median filter with a reflect border (see `medianFilter`).
    case median(size: Int)

    /// Xu et al.'s joint detector: 1-bit depth and 2x2 median for 1-channel images
    /// (MNIST), 5-bit depth and 2x2 median for colour images. Their CIFAR-10 detector
    /// also used non-local means (13-3-4), which is not implemented here.
    public static func standard(channels: Int) -> [Squeezer] {
        [.bitDepth(bits: channels == 1 ? 1 : 5), .median(size: 2)]
    }

    /// The squeezed images, same shape as `images` `[N, C, H, W]`.
    public func callAsFunction(_ images: Tensor) -> Tensor {
        switch self {
        case .bitDepth(let bits): return bitDepthReduction(images, bits: bits)
        case .median(let size): return medianFilter(images, size: size)
        }
    }

    /// `bit-depth-1`, `median-2x2`.
    public var description: String {
        switch self {
        case .bitDepth(let bits): return "bit-depth-\(bits)"
        case .median(let size): return "median-\(size)x\(size)"
        }
    }
}

/// Feature Squeezing's detector: the largest change of the classifier's prediction
/// vector under any squeezer,
/// `score(x) = max_s || softmax(F(x)) - softmax(F(s(x))) ||_1`,
/// thresholded on clean validation images (Xu et al. use 5 % false positives).
public struct FeatureSqueezing: BaselineDetector {
    /// The protected classifier `F`.
    public let classifier: ClassifierFunction
    /// The squeezers `s`.
    public let squeezers: [Squeezer]
    /// Images per model call.
    public var batchSize = Tensor.defaultInferenceBatchSize

    /// Creates the detector. - Precondition: at least one squeezer.
    public init(classifier: ClassifierFunction, squeezers: [Squeezer]) {
        precondition(!squeezers.isEmpty, "Feature Squeezing needs at least one squeezer")
        self.classifier = classifier
        self.squeezers = squeezers
    }

    /// The standard squeezers for images with `channels` channels (`Squeezer.standard`).
    public init(classifier: ClassifierFunction, channels: Int) {
        self.init(classifier: classifier, squeezers: Squeezer.standard(channels: channels))
    }

    public var name: String { "feature-squeezing" }

    /// The L1 distance of each squeezer, `[squeezers.count][N]` (the score is their maximum).
    public func squeezerDistances(_ images: Tensor) -> [[Float]] {
        preconditionImages(images, "Feature Squeezing")
        var table = [[Float]](repeating: [], count: squeezers.count)
        for range in images.batchRanges(size: batchSize) {
            let batch = range.count == images.batchSize ? images : images.slice(range)
            let original = classifier.logits(batch).softmaxRows()
            for (i, squeeze) in squeezers.enumerated() {
                table[i] += l1DistancePerRow(original, classifier.logits(squeeze(batch)).softmaxRows())
            }
        }
        return table
    }

    public func scores(_ images: Tensor) -> [Float] {
        let table = squeezerDistances(images)
        return (0..<images.batchSize).map { r in table.map { $0[r] }.max() ?? 0 }
    }

    /// The false-positive rate Xu et al. fit the threshold at: 5 %.
    public static let defaultFalsePositiveRate = 0.05
}

/// `sum_j |a_ij - b_ij|` for each row of two `[N, K]` tensors: `[N]`.
func l1DistancePerRow(_ a: Tensor, _ b: Tensor) -> [Float] {
    precondition(a.rank == 2 && a.shape == b.shape, "L1 distance needs two [N, K] tensors of one shape, got \(a.shape) and \(b.shape)")
    let k = a.shape[1]
    return (0..<a.shape[0]).map { r in
        var total: Float = 0
        for j in 0..<k { total += abs(a.storage[r * k + j] - b.storage[r * k + j]) }
        return total
    }
}
