import Foundation
import Tensors

/// Sums of gradients that do not depend on how they were grouped or in which order they were added:
/// what makes a data-parallel run give the same model on any number of ranks.
///
/// Float addition is not associative, so the sum of the same gradients computed on 1, 2 or 8 ranks
/// differs in its last bits, and Adam turns such differences into different models. Here every
/// group's gradient is first cut once to fixed point (truncated) (a 64-bit integer per value, on a scale per
/// tensor shared by all ranks: the largest magnitude of that tensor over every group and rank, found
/// by one max all-reduce, leaves `ceil(log2(groups))` bits of head room below 2^62), then the
/// integers are summed, locally and by one integer all-reduce: integer sums are exact, so the result
/// is the same for any split of the groups over the ranks and any order of the reduction. The result
/// is converted back to Float once. Values more than about 2^-38 below their tensor's largest one
/// keep fewer than 24 significant bits; against the gradient's own scale that error is below 2^-60.
///
/// Statistics travel as one-value slots with their own scales. A slot with a NaN or infinite value in
/// any group becomes all NaN (so that the trainers' non-finite checks fire on every rank alike); a
/// gradient slot that no group of any rank has stays nil, as in one process.
public final class ExactGradientSum {
    /// The ranks the groups are spread over.
    public let world: any Communicator
    /// The shapes of the gradients, in order.
    public let shapes: [[Int]]
    private let counts: [Int]
    private var extremes: [Float] = []
    private var integers: [Int64] = []
    /// Seconds spent in the two all-reduces (waiting for the other ranks included), summed.
    public private(set) var seconds = 0.0
    /// Number of sums so far.
    public private(set) var calls = 0

    /// A summer for gradients of `shapes` over `world`.
    public init(world: any Communicator, shapes: [[Int]]) {
        self.world = world
        self.shapes = shapes
        counts = shapes.map { $0.reduce(1, *) }
    }

    /// Bytes the integer all-reduce moves per rank and step (8 per gradient value and statistic).
    public func bytesPerStep(statistics: Int) -> Int { (counts.reduce(0, +) + statistics) * MemoryLayout<Int64>.size }

    /// The exact sum of this rank's `groups` and every other rank's, over `totalGroups` groups in all
    /// (the same number on every rank, at least the number of groups any rank passes). Each group
    /// holds one gradient per shape (nil: none) and `statistics` values. A collective: every rank
    /// calls it, also one with no groups.
    public func sum(_ groups: [(gradients: [Tensor?], statistics: [Float])], statistics: Int, totalGroups: Int) -> (
        gradients: [Tensor?], statistics: [Float]
    ) {
        precondition(totalGroups >= max(1, groups.count), "exact gradient sum: \(groups.count) groups here, \(totalGroups) in all")
        let slots = shapes.count + statistics
        let sizes = counts + [Int](repeating: 1, count: statistics)
        var offsets: [Int] = [], total = 0
        for size in sizes {
            offsets.append(total)
            total += size
        }
        // 1. every group's values in one flat row (absent gradients as zeros); per slot the largest
        // magnitude (+infinity when any value is not finite), then a presence flag per gradient slot
        extremes = [Float](repeating: 0, count: slots + shapes.count)
        var staged = [Float](repeating: 0, count: groups.count * total)
        staged.withUnsafeMutableBufferPointer { rows in
            for (row, group) in groups.enumerated() {
                precondition(
                    group.gradients.count == shapes.count,
                    "exact gradient sum: \(group.gradients.count) gradients for \(shapes.count) slots")
                precondition(
                    group.statistics.count == statistics, "exact gradient sum: \(group.statistics.count) statistics, expected \(statistics)"
                )
                let base = rows.baseAddress! + row * total
                for (slot, gradient) in group.gradients.enumerated() {
                    guard let gradient else { continue }
                    precondition(
                        gradient.shape == shapes[slot],
                        "exact gradient sum: slot \(slot) has shape \(gradient.shape), expected \(shapes[slot])")
                    gradient.storage.withUnsafeBufferPointer { (base + offsets[slot]).update(from: $0.baseAddress!, count: counts[slot]) }
                    extremes[slots + slot] = 1
                }
                for (index, value) in group.statistics.enumerated() { base[offsets[shapes.count + index]] = value }
                for slot in 0..<slots {
                    let values = UnsafeBufferPointer(start: base + offsets[slot], count: sizes[slot])
                    extremes[slot] = max(extremes[slot], Self.largestMagnitude(values))
                }
            }
        }
        let start = DispatchTime.now().uptimeNanoseconds
        extremes.withUnsafeMutableBufferPointer { world.allReduceMax($0) }
        seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9

        // 2. fixed point on the shared scales (|value| < 2^(exponent + 1) of the largest), summed here and over the ranks
        let headroom = totalGroups <= 1 ? 0 : Int.bitWidth - (totalGroups - 1).leadingZeroBitCount
        let scales = (0..<slots).map { slot -> Int in
            let largest = extremes[slot]
            return largest > 0 && largest.isFinite ? 62 - headroom - (Int(largest.exponent) + 1) : 0
        }
        // the slot each element belongs to, by chunk of the flat row: both passes below walk slot segments
        func segments(_ range: Range<Int>, _ body: (_ slot: Int, _ elements: Range<Int>) -> Void) {
            var slot = offsets.lastIndex { $0 <= range.lowerBound } ?? 0
            var position = range.lowerBound
            while position < range.upperBound {
                while offsets[slot] + sizes[slot] <= position { slot += 1 }
                let end = min(range.upperBound, offsets[slot] + sizes[slot])
                body(slot, position..<end)
                position = end
            }
        }
        if integers.count != total { integers = [Int64](repeating: 0, count: total) }
        integers.withUnsafeMutableBufferPointer { sums in
            staged.withUnsafeBufferPointer { rows in
                Parallel.forEachChunk(total, minimumPerChunk: 1 << 16) { range in
                    (sums.baseAddress! + range.lowerBound).update(repeating: 0, count: range.count)
                    segments(range) { slot, elements in
                        guard extremes[slot].isFinite else { return }
                        let factor = Double(sign: .plus, exponent: scales[slot], significand: 1)
                        for row in 0..<groups.count {
                            let values = rows.baseAddress! + row * total
                            for index in elements { sums[index] &+= Int64(Double(values[index]) * factor) }
                        }
                    }
                }
            }
        }
        let reduceStart = DispatchTime.now().uptimeNanoseconds
        integers.withUnsafeMutableBufferPointer { world.allReduceSum($0) }
        seconds += Double(DispatchTime.now().uptimeNanoseconds - reduceStart) / 1e9
        calls += 1

        // 3. back to Float, once
        let flat = [Float](unsafeUninitializedCapacity: total) { output, initialized in
            integers.withUnsafeBufferPointer { sums in
                Parallel.forEachChunk(total, minimumPerChunk: 1 << 16) { range in
                    segments(range) { slot, elements in
                        guard extremes[slot].isFinite else {
                            for index in elements { output[index] = .nan }
                            return
                        }
                        let unscale = Double(sign: .plus, exponent: -scales[slot], significand: 1)
                        for index in elements { output[index] = Float(Double(Float(sums[index])) * unscale) }
                    }
                }
            }
            initialized = total
        }
        let gradients: [Tensor?] = shapes.indices.map { slot in
            extremes[slots + slot] > 0
                ? Tensor(shape: shapes[slot], storage: Array(flat[offsets[slot]..<(offsets[slot] + counts[slot])])) : nil
        }
        return (gradients, (0..<statistics).map { flat[offsets[shapes.count + $0]] })
    }

    /// The largest magnitude of `values`, or +infinity when one of them is NaN or infinite: the
    /// largest of the bit patterns without sign, an integer maximum that vectorises (IEEE order of
    /// non-negative floats is the order of their bits; NaN and infinity lie above every finite value).
    private static func largestMagnitude(_ values: UnsafeBufferPointer<Float>) -> Float {
        var largest: UInt32 = 0
        values.withMemoryRebound(to: UInt32.self) { bits in
            for pattern in bits { largest = max(largest, pattern & 0x7FFF_FFFF) }
        }
        return largest >= Float.infinity.bitPattern ? .infinity : Float(bitPattern: largest)
    }
}
