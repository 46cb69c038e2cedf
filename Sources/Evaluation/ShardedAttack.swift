import Attacks
import Distributed
import Foundation
import Tensors

/// An attack run over the ranks of a communicator: every rank attacks a contiguous shard of whole
/// batches (`ShardPlan`), the images' random streams come from (seed, image index), so the
/// adversarial images equal those one process makes with the same seed and `--threads 1`.
public enum ShardedAttack {
    /// Where the gathered adversarial images end up.
    public enum Destination: Sendable {
        /// Rank 0 only (it writes the file); the other ranks get nil.
        case root
        /// Every rank (each goes on with the same images, as `dafar-eval` does).
        case everyRank
    }

    /// The adversarial images `[N, C, H, W]` of `images`, attacked in batches of `batchSize` over
    /// the ranks of `communicator`, or nil on the ranks `destination` leaves out. `onProgress`
    /// receives the number of images done on all ranks together after each round of batches
    /// (one Float all-reduce per round, which every rank takes part in). With one rank this is
    /// `AttackRunner.perturb` and makes no MPI call.
    public static func perturb(
        _ attack: any Attack, images: Tensor, attackLabels: [Int], targets: [Int]?,
        model: DifferentiableClassifier, batchSize: Int, randomness: ImageRandomness,
        communicator world: any Communicator, destination: Destination,
        onProgress: (Int) -> Void = { _ in }
    ) -> Tensor? {
        guard world.size > 1 else {
            return AttackRunner.perturb(
                attack, images: images, attackLabels: attackLabels, targets: targets, model: model,
                batchSize: batchSize, randomness: randomness, onBatch: onProgress)
        }
        let count = images.batchSize
        let plan = ShardPlan(count: count, batchSize: batchSize, shards: world.size)
        let shard = plan.range(of: world.rank)
        var rounds = 0
        func round(_ doneHere: Int) {
            rounds += 1
            var done = [Float(doneHere)]
            world.allReduceSum(&done)
            onProgress(Int(done[0]))
        }
        let shardImages = shard.isEmpty ? Tensor(shape: [0] + Array(images.shape.dropFirst())) : images.slice(shard)
        let adversarial = AttackRunner.perturb(
            attack, images: shardImages, attackLabels: Array(attackLabels[shard]),
            targets: targets.map { Array($0[shard]) }, model: model, batchSize: batchSize,
            randomness: randomness.advanced(by: shard.lowerBound)
        ) { round($0) }
        while rounds < plan.maxBatchesPerShard { round(shard.count) }
        let gathered = world.gather(adversarial.storageBytes)
        switch destination {
        case .root:
            return gathered.map { Tensor(shape: images.shape, storageBytes: Array($0.joined())) }
        case .everyRank:
            var bytes = gathered.map { Array($0.joined()) } ?? []
            world.broadcast(&bytes, from: 0)
            return Tensor(shape: images.shape, storageBytes: bytes)
        }
    }
}
