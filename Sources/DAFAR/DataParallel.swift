import Autodiff
import Distributed
import NeuralNetworks
import Tensors

/// One data-parallel training step of DAFAR's trainers over the ranks of a communicator.
///
/// Every rank holds the whole model and sees the same global batch (same images, same order, same
/// augmentation as one process). With a group size g > 0 (the default, 32) the batch is cut into
/// `ceil(B / g)` contiguous groups of nearly equal size, the ranks share out the groups
/// (`localPart(of: groups, rank:, size:)`), each group's gradient is computed on a tape of its own,
/// and `ExactGradientSum` adds them up exactly: the gradients, so the model, are then the same for
/// one process and for any number of ranks (given the same seed and group size; any thread count up to 8).
/// With g = 0 each rank computes its whole part at once and one Float all-reduce sums the parts:
/// slightly faster, but the sums then depend on the number of ranks.
///
/// Each group's (part's) loss is its mean times `count / B`, so that the summed gradients are those
/// of the global batch's mean loss. One exchange per step carries the gradients and the statistics;
/// every rank then takes the same optimizer step, so the weights stay identical.
final class DataParallelStep {
    let world: any Communicator
    let parameters: [NamedParameter]
    /// Examples per gradient group (0: one part per rank, Float all-reduce).
    let groupSize: Int
    let reducer: GradientAllReduce
    let exact: ExactGradientSum

    init(world: any Communicator, parameters: [NamedParameter], groupSize: Int) {
        precondition(groupSize >= 0, "gradient group size must be at least 0, got \(groupSize)")
        self.world = world
        self.parameters = parameters
        self.groupSize = groupSize
        let shapes = parameters.map(\.parameter.value.shape)
        reducer = GradientAllReduce(world: world, shapes: shapes)
        exact = ExactGradientSum(world: world, shapes: shapes)
    }

    /// Seconds spent in the step's collectives so far and their number (0 calls in one process without groups).
    var exchangeTime: (seconds: Double, calls: Int) {
        (reducer.seconds + exact.seconds, reducer.calls + (world.size > 1 ? exact.calls : 0))
    }

    static func groupCount(_ count: Int, _ groupSize: Int) -> Int { max(1, (count + groupSize - 1) / groupSize) }

    /// Runs `body` on each of this rank's groups (or its part, group size 0; nothing when it has
    /// none: the rank adds zeros) and returns the gradients of the global batch's mean loss and the
    /// statistics summed over all ranks. `body(tape, range)` returns the mean loss over `range` and
    /// its statistics (the same count on every rank); its loss is scaled by `range.count / count` here.
    func gradients(count: Int, statistics: Int, _ body: (Tape, Range<Int>) -> (loss: Variable, statistics: [Float]))
        -> (gradients: Gradients, statistics: [Float])
    {
        func run(_ range: Range<Int>) -> (gradients: [Tensor?], statistics: [Float]) {
            let tape = Tape()
            let (loss, stats) = body(tape, range)
            precondition(stats.count == statistics, "data-parallel step: \(stats.count) statistics, expected \(statistics)")
            let gradients = tape.gradients(of: loss * (Float(range.count) / Float(count)))
            return (parameters.map { gradients[object: $0.parameter] }, stats)
        }
        let summed: [Tensor?], totals: [Float]
        if groupSize > 0 {
            let groups = Self.groupCount(count, groupSize)
            let mine = localPart(of: groups, rank: world.rank, size: world.size).map { localPart(of: count, rank: $0, size: groups) }
            (summed, totals) = exact.sum(Self.map(mine, run), statistics: statistics, totalGroups: groups)
        } else {
            let part = localPart(of: count, rank: world.rank, size: world.size)
            let local =
                part.isEmpty ? ([Tensor?](repeating: nil, count: parameters.count), [Float](repeating: 0, count: statistics)) : run(part)
            (summed, totals) = reducer.sum(local.0, statistics: local.1)
        }
        return (Gradients(objects: zip(parameters, summed).map { (object: $0.0.parameter, gradient: $0.1) }), totals)
    }

    /// `ranges.map(body)`, side by side when there are threads to spare: with a multiple of
    /// `Parallel.threadCount` ranges (2 groups of 32 of a batch of 64 on 2 threads), each range runs on one
    /// thread with its kernels on that thread (`Parallel.onCallingThread`), the threads taking ranges as
    /// they finish; else one after the other, each kernel split across the threads. The kernels give the
    /// same bits either way, so the schedule changes the speed only: a group's small products keep one
    /// core busy with no hand-over between the threads at every operation.
    static func map<T>(_ ranges: [Range<Int>], _ body: (Range<Int>) -> T) -> [T] {
        let threads = Parallel.threadCount
        guard threads > 1, ranges.count >= threads, ranges.count % threads == 0 else { return ranges.map(body) }
        var results = [T?](repeating: nil, count: ranges.count)
        results.withUnsafeMutableBufferPointer { results in
            Parallel.forEach(chunks: ranges.count, of: ranges.count) { _, indices in
                for i in indices { results[i] = Parallel.onCallingThread { body(ranges[i]) } }
            }
        }
        return results.map { $0! }
    }

    /// Throws `ReplicaDivergenceError` on a rank whose weights or optimizer state differ from rank 0's.
    func checkReplicas(optimizer: Optimizer, when: String) throws {
        let state = optimizer.state.sorted { $0.key < $1.key }.map(\.value)
        try world.checkReplicasAgree(parameters.map(\.parameter.value) + state, when: when)
    }
}
