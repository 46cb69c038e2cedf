import Tensors

/// The random streams of an attack run: one independent generator per image and purpose, seeded
/// from the run's seed and the image's index in the whole run only.
///
/// An image's random start or random target therefore does not depend on which batch or which
/// shard (rank) it was attacked in: `AttackRunner` hands each batch `advanced(by: firstIndex)`, and
/// `mpirun -np N dafar-attack` draws exactly what one process draws.
public struct ImageRandomness: Sendable, Equatable {
    /// The run's seed.
    public let seed: UInt64
    /// The run index of the batch's first image.
    public let firstIndex: Int

    /// Streams for images `firstIndex, firstIndex + 1, ...` of a run with `seed`.
    public init(seed: UInt64, firstIndex: Int = 0) {
        precondition(firstIndex >= 0, "image randomness: negative first index \(firstIndex)")
        self.seed = seed
        self.firstIndex = firstIndex
    }

    /// The streams of the images `offset` places further on (a later batch of the same run).
    public func advanced(by offset: Int) -> ImageRandomness { ImageRandomness(seed: seed, firstIndex: firstIndex + offset) }

    /// The generator of the image `offset` places after `firstIndex`, for one purpose (`stream`: the
    /// restart number for random starts, `ImageRandomness.targetStream` for random targets).
    public func generator(forImage offset: Int, stream: UInt64) -> SeededGenerator {
        let index = UInt64(firstIndex + offset)
        return SeededGenerator(seed: Self.mix(Self.mix(seed ^ Self.mix(stream &+ 0x5354_5245_414D)) &+ index))
    }

    /// The stream random targets are drawn from (apart from every restart's stream).
    public static let targetStream: UInt64 = 0x7461_7267_6574

    /// SplitMix64's finaliser: a bijection of 64-bit words that spreads every input bit.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension AttackGoal {
    /// A target class `!= label` for each image (uniform over the other `classCount - 1` classes, as
    /// cleverhans' `random_targets`), image `i` drawing from its own stream of `randomness`.
    public static func randomTargets(labels: [Int], classCount: Int, randomness: ImageRandomness) -> [Int] {
        labels.indices.map { i in
            var generator = randomness.generator(forImage: i, stream: ImageRandomness.targetStream)
            return randomTargets(labels: [labels[i]], classCount: classCount, generator: &generator)[0]
        }
    }
}

extension PerturbationNorm {
    /// `randomPoint(shape:radius:using:)` drawn image by image: sample `i` of the batch `[N, ...]`
    /// from image `i`'s generator for `stream`.
    func randomPoint(shape: [Int], radius: Float, randomness: ImageRandomness, stream: UInt64) -> Tensor {
        let n = shape.first ?? 0
        guard n > 0 else { return Tensor(shape: shape) }
        let sampleShape = [1] + shape.dropFirst()
        return Tensor.concatenate(
            (0..<n).map { i in
                var generator = randomness.generator(forImage: i, stream: stream)
                return randomPoint(shape: sampleShape, radius: radius, using: &generator)
            })
    }
}
