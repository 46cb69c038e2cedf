import Tensors

/// A set of images with integer class labels.
public struct LabeledImages: Sendable {
    /// `[N, C, H, W]`, values in [0, 1].
    public var images: Tensor
    /// One label per image, in `0..<classCount`.
    public var labels: [Int]
    /// Number of classes.
    public var classCount: Int

    /// Creates a labelled set. - Precondition: one label per image, labels in range.
    public init(images: Tensor, labels: [Int], classCount: Int) {
        precondition(images.rank == 4, "images must be [N, C, H, W], got shape \(images.shape)")
        precondition(images.shape[0] == labels.count, "\(images.shape[0]) images but \(labels.count) labels")
        precondition(labels.allSatisfy { $0 >= 0 && $0 < classCount }, "a label is outside 0..<\(classCount)")
        self.images = images
        self.labels = labels
        self.classCount = classCount
    }

    /// Number of images.
    public var count: Int { labels.count }
    /// `[C, H, W]` of one image.
    public var imageShape: [Int] { Array(images.shape.dropFirst()) }

    /// The images and labels at `indices`, in that order.
    public func subset(_ indices: [Int]) -> LabeledImages {
        LabeledImages(images: images.gather(indices), labels: indices.map { labels[$0] }, classCount: classCount)
    }

    /// The first `n` images (all when `n` is nil or larger than the set).
    public func prefix(_ n: Int?) -> LabeledImages {
        guard let n, n < count else { return self }
        return LabeledImages(images: images.slice(0..<n), labels: Array(labels[0..<n]), classCount: classCount)
    }

    /// Index batches of `size` covering the set once, shuffled by `generator` when given.
    /// The last batch may be smaller.
    public func batchIndices(size: Int, shuffledBy generator: inout SeededGenerator?) -> [[Int]] {
        precondition(size > 0, "batch size must be positive, got \(size)")
        let order = generator != nil ? generator!.permutation(count) : Array(0..<count)
        return stride(from: 0, to: count, by: size).map { Array(order[$0..<min($0 + size, count)]) }
    }
}
