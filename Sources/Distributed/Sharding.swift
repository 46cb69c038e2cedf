import Tensors

/// How `count` images are split into contiguous shards, one per rank, on batch boundaries.
///
/// Shards hold whole batches of `batchSize` (only the last shard may end with a short batch), so
/// every batch an attack sees is the batch one process would see: results that depend on a batch's
/// other images (CW-L2's early abort, summation order in GEMMs) stay the same for any rank count.
/// The batches are dealt out as evenly as possible: shard sizes differ by at most one batch.
public struct ShardPlan: Equatable, Sendable {
    /// Number of images in all.
    public let count: Int
    /// Images per batch.
    public let batchSize: Int
    /// Number of shards (ranks).
    public let shards: Int

    /// A plan for `count` images in batches of `batchSize` over `shards` ranks.
    public init(count: Int, batchSize: Int, shards: Int) {
        precondition(count >= 0, "shard plan: negative image count \(count)")
        precondition(batchSize >= 1, "shard plan: batch size must be positive, got \(batchSize)")
        precondition(shards >= 1, "shard plan: at least one shard, got \(shards)")
        self.count = count
        self.batchSize = batchSize
        self.shards = shards
    }

    /// Number of batches in all.
    public var batchCount: Int { (count + batchSize - 1) / batchSize }

    /// The image indices of shard `index` (possibly empty when there are fewer batches than shards).
    public func range(of index: Int) -> Range<Int> {
        precondition((0..<shards).contains(index), "shard plan: shard \(index) outside 0..<\(shards)")
        let firstBatch = batchCount * index / shards, endBatch = batchCount * (index + 1) / shards
        return min(count, firstBatch * batchSize)..<min(count, endBatch * batchSize)
    }

    /// The largest number of batches any shard holds (the rounds every rank takes part in).
    public var maxBatchesPerShard: Int { (batchCount + shards - 1) / shards }
}

extension Tensor {
    /// The storage as little-endian bytes (what `gather` moves), shape not included.
    public var storageBytes: [UInt8] {
        storage.withUnsafeBytes { Array($0) }
    }

    /// A tensor of `shape` from bytes written by `storageBytes`.
    public init(shape: [Int], storageBytes bytes: [UInt8]) {
        precondition(
            bytes.count == shape.reduce(1, *) * MemoryLayout<Float>.size,
            "tensor bytes: \(bytes.count) bytes for shape \(shape)")
        var values = [Float](repeating: 0, count: bytes.count / MemoryLayout<Float>.size)
        values.withUnsafeMutableBytes { $0.copyBytes(from: bytes) }
        self.init(shape: shape, storage: values)
    }
}

extension Communicator {
    /// `body` applied to consecutive slices of at most `batchSize` rows of `input`, joined in row
    /// order (each output row of shape `rowShape`), known to every rank: each rank computes the slices
    /// of its `ShardPlan` shard, rank 0 collects them and broadcasts the whole. Every slice is the one
    /// `input.mapBatches(size:)` gives one process, so the result is the same bits for any rank count.
    /// A collective: every rank calls it with the same input. One process: `mapBatches`.
    public func shardedMapBatches(
        _ input: Tensor, rowShape: [Int], size batchSize: Int = Tensor.defaultInferenceBatchSize, _ body: (Tensor) -> Tensor
    ) -> Tensor {
        guard size > 1 else { return input.mapBatches(size: batchSize, body) }
        let shard = ShardPlan(count: input.batchSize, batchSize: batchSize, shards: size).range(of: rank)
        var bytes: [UInt8] = []
        for start in stride(from: shard.lowerBound, to: shard.upperBound, by: batchSize) {
            let output = body(input.slice(start..<min(start + batchSize, shard.upperBound)))
            precondition(
                Array(output.shape.dropFirst()) == rowShape, "sharded map: rows of shape \(output.shape.dropFirst()), expected \(rowShape)")
            bytes += output.storageBytes
        }
        var whole = gather(bytes).map { Array($0.joined()) } ?? []
        broadcast(&whole, from: 0)
        return Tensor(shape: [input.batchSize] + rowShape, storageBytes: whole)
    }
}
