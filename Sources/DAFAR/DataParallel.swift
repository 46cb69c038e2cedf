import Autodiff
import Distributed
import NeuralNetworks
import Tensors

/// One data-parallel training step of DAFAR's trainers over the ranks of a communicator.
///
/// Every rank holds the whole model and sees the same global batch (same images, same order, same
/// augmentation as one process); rank r computes the contiguous part `localPart(of: B, rank: r,
/// size: N)` of it. Its loss is the mean over its part times `part / B`, so that the gradients
/// summed over the ranks are the gradients of the global batch's mean loss, as one process computes
/// them (up to float summation order). One all-reduce per step carries the gradients and the
/// statistics; every rank then takes the same optimizer step, so the weights stay identical.
final class DataParallelStep {
    let world: any Communicator
    let parameters: [NamedParameter]
    let reducer: GradientAllReduce

    init(world: any Communicator, parameters: [NamedParameter]) {
        self.world = world
        self.parameters = parameters
        reducer = GradientAllReduce(world: world, shapes: parameters.map(\.parameter.value.shape))
    }

    /// This rank's share of a global batch of `count` examples.
    func part(of count: Int) -> Range<Int> { localPart(of: count, rank: world.rank, size: world.size) }

    /// Runs `body` on this rank's part (skipped when the part is empty: the rank adds zeros) and
    /// returns the gradients of the global batch's mean loss and the statistics summed over all ranks.
    /// `body(tape, part)` returns the mean loss over the part and this rank's statistics (the same
    /// count on every rank); its loss is scaled by `part.count / count` here.
    func gradients(count: Int, statistics: Int, _ body: (Tape, Range<Int>) -> (loss: Variable, statistics: [Float]))
        -> (gradients: Gradients, statistics: [Float])
    {
        let part = self.part(of: count)
        var local = [Tensor?](repeating: nil, count: parameters.count)
        var values = [Float](repeating: 0, count: statistics)
        if !part.isEmpty {
            let tape = Tape()
            let (loss, stats) = body(tape, part)
            precondition(stats.count == statistics, "data-parallel step: \(stats.count) statistics, expected \(statistics)")
            values = stats
            let gradients = tape.gradients(of: loss * (Float(part.count) / Float(count)))
            local = parameters.map { gradients[object: $0.parameter] }
        }
        let (summed, totals) = reducer.sum(local, statistics: values)
        return (Gradients(objects: zip(parameters, summed).map { (object: $0.0.parameter, gradient: $0.1) }), totals)
    }

    /// Throws `ReplicaDivergenceError` on a rank whose weights or optimizer state differ from rank 0's.
    func checkReplicas(optimizer: Optimizer, when: String) throws {
        let state = optimizer.state.sorted { $0.key < $1.key }.map(\.value)
        try world.checkReplicasAgree(parameters.map(\.parameter.value) + state, when: when)
    }
}
