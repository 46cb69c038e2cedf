/// Batched work over the first axis of a tensor: the one place where a large input is cut into
/// slices of at most `size` images (bounding the im2col buffers and activations of a forward pass).
extension Tensor {
    /// Images per slice in batched inference unless a caller says otherwise.
    public static let defaultInferenceBatchSize = 256

    /// The half-open row ranges `[0, size), [size, 2 size), ...` covering `batchSize` rows.
    public func batchRanges(size: Int = Tensor.defaultInferenceBatchSize) -> [Range<Int>] {
        precondition(size > 0, "batch size must be positive, got \(size)")
        let n = batchSize
        return stride(from: 0, to: n, by: size).map { $0..<Swift.min($0 + size, n) }
    }

    /// Applies `body` to consecutive slices `[<= size, ...]` of this `[N, ...]` tensor and
    /// concatenates the results along the first axis (one call, no copy, when `N <= size`).
    public func mapBatches(size: Int = Tensor.defaultInferenceBatchSize, _ body: (Tensor) -> Tensor) -> Tensor {
        precondition(size > 0, "batch size must be positive, got \(size)")
        return mapBatches(batchRanges(size: size)) { batch, _ in body(batch) }
    }

    /// Applies `body(slice, rows)` to the slices `ranges` (consecutive, covering the batch in order) and
    /// concatenates the results along the first axis (one call on `self`, no copy, for a single range).
    public func mapBatches(_ ranges: [Range<Int>], _ body: (Tensor, Range<Int>) -> Tensor) -> Tensor {
        if ranges.count <= 1 { return body(self, 0..<batchSize) }
        return Tensor.concatenate(ranges.map { body(slice($0), $0) })
    }

    /// Applies `body` to consecutive slices of at most `size` rows and joins the per-row values
    /// it returns (scores, classes) in row order.
    public func mapBatches<Value>(size: Int = Tensor.defaultInferenceBatchSize, _ body: (Tensor) -> [Value]) -> [Value] {
        precondition(size > 0, "batch size must be positive, got \(size)")
        if batchSize <= size { return body(self) }
        return batchRanges(size: size).flatMap { body(slice($0)) }
    }
}
