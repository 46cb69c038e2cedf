import Foundation
import Tensors
import _VectorKernels

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
        // The slots' values of one group, read in place (absent gradients count as zeros).
        for group in groups {
            precondition(
                group.gradients.count == shapes.count, "exact gradient sum: \(group.gradients.count) gradients for \(shapes.count) slots")
            precondition(
                group.statistics.count == statistics, "exact gradient sum: \(group.statistics.count) statistics, expected \(statistics)")
            for (slot, gradient) in group.gradients.enumerated() where gradient != nil {
                precondition(
                    gradient!.shape == shapes[slot],
                    "exact gradient sum: slot \(slot) has shape \(gradient!.shape), expected \(shapes[slot])")
            }
        }
        func withValues(_ group: Int, _ slot: Int, _ body: (UnsafePointer<Float>) -> Void) {
            if slot < shapes.count {
                groups[group].gradients[slot]?.storage.withUnsafeBufferPointer { body($0.baseAddress!) }
            } else {
                withUnsafePointer(to: groups[group].statistics[slot - shapes.count]) { body($0) }
            }
        }
        // the slot each element belongs to, by chunk of the flat index space: every pass walks slot segments
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
        let chunks = max(1, min(Parallel.threadCount, total >> 16))

        // 1. per slot the largest magnitude (+infinity when any value is not finite), then a presence flag per gradient slot
        var largest = [UInt32](repeating: 0, count: chunks * slots)
        largest.withUnsafeMutableBufferPointer { largest in
            Parallel.forEach(chunks: chunks, of: total) { chunk, range in
                segments(range) { slot, elements in
                    for group in groups.indices {
                        withValues(group, slot) { values in
                            let bits = fixed_point_largest_bits(values + (elements.lowerBound - offsets[slot]), elements.count)
                            largest[chunk * slots + slot] = max(largest[chunk * slots + slot], bits)
                        }
                    }
                }
            }
        }
        extremes = (0..<slots).map { slot in
            let bits = (0..<chunks).map { largest[$0 * slots + slot] }.max() ?? 0
            return bits >= Float.infinity.bitPattern ? .infinity : Float(bitPattern: bits)
        }
        extremes += (0..<shapes.count).map { slot in groups.contains { $0.gradients[slot] != nil } ? 1 : 0 }
        let start = DispatchTime.now().uptimeNanoseconds
        extremes.withUnsafeMutableBufferPointer { world.allReduceMax($0) }
        seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9

        // 2. fixed point on the shared scales (|value| < 2^(exponent + 1) of the largest), summed here and over the ranks
        let headroom = totalGroups <= 1 ? 0 : Int.bitWidth - (totalGroups - 1).leadingZeroBitCount
        let scales = (0..<slots).map { slot -> Int in
            let largest = extremes[slot]
            return largest > 0 && largest.isFinite ? 62 - headroom - (Int(largest.exponent) + 1) : 0
        }
        // The present groups' values of `slot` (absent gradients add zeros), valid inside `body`.
        func withGroupValues(_ slot: Int, _ body: ([UnsafePointer<Float>]) -> Void) {
            func nest(_ group: Int, _ pointers: [UnsafePointer<Float>]) {
                guard group < groups.count else { return body(pointers) }
                guard slot < shapes.count else {
                    return withUnsafePointer(to: groups[group].statistics[slot - shapes.count]) { nest(group + 1, pointers + [$0]) }
                }
                guard let gradient = groups[group].gradients[slot] else { return nest(group + 1, pointers) }
                gradient.storage.withUnsafeBufferPointer { nest(group + 1, pointers + [$0.baseAddress!]) }
            }
            nest(0, [])
        }
        // `body(range)` over a slot's elements, in chunks on the threads when the slot is large enough
        func forEachChunk(of slot: Int, _ body: (Range<Int>) -> Void) {
            Parallel.forEach(chunks: max(1, min(Parallel.threadCount, sizes[slot] >> 13)), of: sizes[slot]) { body($1) }
        }
        func factor(_ slot: Int) -> Double { Double(sign: .plus, exponent: scales[slot], significand: 1) }
        func unscale(_ slot: Int) -> Double { Double(sign: .plus, exponent: -scales[slot], significand: 1) }
        // Each slot's Float values: all NaN when some value was not finite, else `fill(output, range)` over its chunks.
        func floats(_ fill: (_ slot: Int, _ output: UnsafeMutablePointer<Float>, _ range: Range<Int>) -> Void) -> [[Float]] {
            (0..<slots).map { slot in
                guard extremes[slot].isFinite else { return [Float](repeating: .nan, count: sizes[slot]) }
                return [Float](unsafeUninitializedCapacity: sizes[slot]) { output, initialized in
                    forEachChunk(of: slot) { fill(slot, output.baseAddress!, $0) }
                    initialized = sizes[slot]
                }
            }
        }
        let values: [[Float]]
        if world.size == 1 {
            // one process: no integer all-reduce between the fixed-point sum and the conversion back, so both
            // happen block by block without an array of sums
            values = floats { slot, output, range in
                withGroupValues(slot) { pointers in
                    let rows: [UnsafePointer<Float>?] = pointers.map { $0 + range.lowerBound }
                    fixed_point_sum_to_float(output + range.lowerBound, rows, rows.count, range.count, factor(slot), unscale(slot))
                }
            }
        } else {
            if integers.count != total { integers = [Int64](repeating: 0, count: total) }
            integers.withUnsafeMutableBufferPointer { sums in
                for slot in 0..<slots {
                    let slotSums = sums.baseAddress! + offsets[slot]
                    guard extremes[slot].isFinite else {
                        slotSums.update(repeating: 0, count: sizes[slot])
                        continue
                    }
                    withGroupValues(slot) { pointers in
                        forEachChunk(of: slot) { range in
                            let rows: [UnsafePointer<Float>?] = pointers.map { $0 + range.lowerBound }
                            fixed_point_sum(slotSums + range.lowerBound, rows, rows.count, range.count, factor(slot))
                        }
                    }
                }
            }
            let reduceStart = DispatchTime.now().uptimeNanoseconds
            integers.withUnsafeMutableBufferPointer { world.allReduceSum($0) }
            seconds += Double(DispatchTime.now().uptimeNanoseconds - reduceStart) / 1e9

            // 3. back to Float, once
            values = integers.withUnsafeBufferPointer { sums in
                floats { slot, output, range in
                    fixed_point_to_float(
                        output + range.lowerBound, sums.baseAddress! + offsets[slot] + range.lowerBound, range.count, unscale(slot))
                }
            }
        }
        calls += 1

        let gradients: [Tensor?] = shapes.indices.map { slot in
            extremes[slots + slot] > 0 ? Tensor(shape: shapes[slot], storage: values[slot]) : nil
        }
        return (gradients, (0..<statistics).map { values[shapes.count + $0][0] })
    }
}
