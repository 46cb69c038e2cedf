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

// MARK: - Class-aware selection (stratified splits and prefixes)

extension LabeledImages {
    /// Number of images of each class, `[classCount]`.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for label in labels { counts[label] += 1 }
        return counts
    }

    /// The indices of each class's images, in file order, `[classCount][...]`.
    public func indicesByClass() -> [[Int]] {
        var groups = [[Int]](repeating: [], count: classCount)
        for (index, label) in labels.enumerated() { groups[label].append(index) }
        return groups
    }

    /// Merges per-class index lists round-robin (class 0, 1, ..., then again),
    /// keeping each list's order; classes that run out drop out.
    ///
    /// Any prefix of the result is as balanced over classes as it can be.
    public static func roundRobin(_ groups: [[Int]]) -> [Int] {
        var order = [Int]()
        order.reserveCapacity(groups.reduce(0) { $0 + $1.count })
        let longest = groups.map(\.count).max() ?? 0
        for position in 0..<longest {
            for group in groups where position < group.count { order.append(group[position]) }
        }
        return order
    }

    /// At most `n` images chosen round-robin over classes (so every class appears
    /// when `n >= classCount` and each class has an image), kept in their original order.
    /// Returns `self` when `n` is nil or not smaller than `count`.
    public func stratifiedPrefix(_ n: Int?) -> LabeledImages {
        guard let n, n < count else { return self }
        let chosen = Self.roundRobin(indicesByClass()).prefix(max(0, n)).sorted()
        return subset(chosen)
    }

    /// Holds out a seeded random `fraction` of each class.
    ///
    /// For a class with `n` images, `round(fraction * n)` are held out, but at most
    /// `n - 1`, so every class keeps a training image. Both parts keep the original order.
    /// - Returns: `kept` (the rest) and `heldOut`.
    public func stratifiedSplit(
        heldOutFraction fraction: Double,
        using generator: inout SeededGenerator
    ) -> (kept: LabeledImages, heldOut: LabeledImages) {
        var kept = self
        let heldOut = kept.removeStratifiedSample(fraction: fraction, using: &generator)
        return (kept, heldOut)
    }

    /// Removes a seeded random `fraction` of each class from the set and returns it:
    /// the in-place form of `stratifiedSplit` (same choice for the same generator),
    /// which compacts the kept images within their own storage when it is not shared.
    public mutating func removeStratifiedSample(fraction: Double, using generator: inout SeededGenerator) -> LabeledImages {
        precondition(fraction >= 0 && fraction < 1, "held-out fraction must be in [0, 1), got \(fraction)")
        var isHeldOut = [Bool](repeating: false, count: count)
        for group in indicesByClass() where !group.isEmpty {
            let wanted = min(Int((fraction * Double(group.count)).rounded()), group.count - 1)
            let order = generator.permutation(group.count)
            for position in order.prefix(wanted) { isHeldOut[group[position]] = true }
        }
        let heldOut = subset((0..<count).filter { isHeldOut[$0] })
        guard heldOut.count > 0 else { return heldOut }
        let kept = (0..<count).filter { !isHeldOut[$0] }
        let item = images.itemCount
        var shape = images.shape
        shape[0] = kept.count
        var storage = [Float]()
        swap(&storage, &images.storage)  // unique now unless another value shares it
        storage.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            for (row, index) in kept.enumerated() where row != index {  // row <= index: moves go forward
                (base + row * item).update(from: base + index * item, count: item)
            }
        }
        storage.removeLast((count - kept.count) * item)
        self = LabeledImages(
            images: Tensor(shape: shape, storage: storage), labels: kept.map { labels[$0] },
            classCount: classCount)
        return heldOut
    }
}
