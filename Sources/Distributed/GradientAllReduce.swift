import Foundation
import Tensors
import ToolkitCore

/// Data-parallel training's one collective per step: every rank's gradients and a few statistics
/// summed over all ranks in a single all-reduce of one flat Float buffer.
///
/// Layout of the buffer (reused from step to step): the gradients one after another in the order
/// given, then one presence slot per gradient (1 when this rank has it, so that a parameter no rank
/// touched stays without a gradient, as in one process), then the statistics. With a
/// `SingleProcessCommunicator` nothing is copied: `sum` returns its inputs unchanged.
public final class GradientAllReduce {
    /// The ranks the gradients are summed over.
    public let world: any Communicator
    /// The shapes of the gradients, in buffer order.
    public let shapes: [[Int]]
    private let offsets: [Int]
    private let gradientElements: Int
    private var buffer: [Float] = []
    /// Seconds spent in the all-reduce itself (the MPI call, waiting for the other ranks included), summed.
    public private(set) var seconds = 0.0
    /// Number of all-reduces so far.
    public private(set) var calls = 0

    /// A reducer for gradients of `shapes` over `world`.
    public init(world: any Communicator, shapes: [[Int]]) {
        self.world = world
        self.shapes = shapes
        var offsets: [Int] = [], total = 0
        for shape in shapes {
            offsets.append(total)
            total += shape.reduce(1, *)
        }
        self.offsets = offsets
        gradientElements = total
    }

    /// Bytes one all-reduce moves per rank: the gradients, the presence slots and `statistics` Floats.
    public func bytesPerStep(statistics: Int) -> Int { (gradientElements + shapes.count + statistics) * MemoryLayout<Float>.size }

    /// The sums over all ranks of `gradients` (nil: this rank has none for that slot) and of
    /// `statistics`. A slot is nil in the result only when it was nil on every rank.
    public func sum(_ gradients: [Tensor?], statistics: [Float]) -> (gradients: [Tensor?], statistics: [Float]) {
        precondition(gradients.count == shapes.count, "gradient all-reduce: \(gradients.count) gradients for \(shapes.count) slots")
        guard world.size > 1 else { return (gradients, statistics) }
        let total = gradientElements + shapes.count + statistics.count
        if buffer.count != total { buffer = [Float](repeating: 0, count: total) }
        buffer.withUnsafeMutableBufferPointer { flat in
            let base = flat.baseAddress!
            for (index, gradient) in gradients.enumerated() {
                let count = shapes[index].reduce(1, *)
                if let gradient {
                    precondition(
                        gradient.shape == shapes[index],
                        "gradient all-reduce: slot \(index) has shape \(gradient.shape), expected \(shapes[index])")
                    gradient.storage.withUnsafeBufferPointer { (base + offsets[index]).update(from: $0.baseAddress!, count: count) }
                    base[gradientElements + index] = 1
                } else {
                    (base + offsets[index]).update(repeating: 0, count: count)
                    base[gradientElements + index] = 0
                }
            }
            for (index, value) in statistics.enumerated() { base[gradientElements + shapes.count + index] = value }
            let start = DispatchTime.now().uptimeNanoseconds
            world.allReduceSum(flat)
            seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            calls += 1
        }
        var summed: [Tensor?] = []
        summed.reserveCapacity(shapes.count)
        for (index, shape) in shapes.enumerated() {
            guard buffer[gradientElements + index] > 0 else { summed.append(nil); continue }
            summed.append(Tensor(shape: shape, storage: Array(buffer[offsets[index]..<(offsets[index] + shape.reduce(1, *))])))
        }
        return (summed, Array(buffer[(gradientElements + shapes.count)...]))
    }
}

/// The part of a global batch of `count` examples that `rank` of `size` computes: contiguous, in
/// order, the sizes differing by at most one (`[count * rank / size, count * (rank + 1) / size)`).
public func localPart(of count: Int, rank: Int, size: Int) -> Range<Int> {
    precondition(size >= 1 && (0..<size).contains(rank), "local part: rank \(rank) is not in 0..<\(size)")
    return (count * rank / size)..<(count * (rank + 1) / size)
}

/// The replicas of a data-parallel model no longer hold the same weights.
public struct ReplicaDivergenceError: ToolkitError {
    /// The rank whose weights differ from rank 0's.
    public let rank: Int
    /// Where in the run the check was made, such as "after epoch 3".
    public let when: String
    public var description: String {
        "the weights on rank \(rank) differ from rank 0's \(when); the ranks did not take the same steps (a different build, "
            + "OpenBLAS or CPU on some host?); nothing was written for this epoch"
    }
    public var cause: ErrorCause { .internalFailure }
}

extension Communicator {
    /// Checks that every rank holds bit-identical `tensors` (a 64-bit FNV-1a hash of their bytes,
    /// rank 0's broadcast to all, then the verdicts shared): when some rank differs, every rank throws
    /// `ReplicaDivergenceError` naming the first such rank, so that all stop together.
    /// A collective: every rank must call it. With one rank it does nothing.
    public func checkReplicasAgree(_ tensors: [Tensor], when: String) throws {
        guard size > 1 else { return }
        let mine = withUnsafeBytes(of: replicaHash(tensors)) { Array($0) }
        var rootHash = mine
        broadcast(&rootHash, from: 0)
        if let differing = statuses(rootHash == mine ? 0 : 1).firstIndex(where: { $0 != 0 }) {
            throw ReplicaDivergenceError(rank: differing, when: when)
        }
    }
}

/// FNV-1a (64 bit) over the storage bytes of `tensors`, in order, shapes included.
public func replicaHash(_ tensors: [Tensor]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    func mix(_ raw: UnsafeRawBufferPointer) {
        for byte in raw { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    }
    for tensor in tensors {
        let dims = tensor.shape.map { Int64($0) }
        dims.withUnsafeBytes(mix)
        tensor.storage.withUnsafeBytes(mix)
    }
    return hash
}
