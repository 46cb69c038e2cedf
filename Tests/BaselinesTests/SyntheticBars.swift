import Autodiff
import NeuralNetworks
import Tensors
@testable import Baselines

/// Seeded synthetic data for the baseline tests: 1x8x8 images of a bright bar, 1 to 3
/// pixels thick, on a dark background, horizontal (class 0) or vertical (class 1), with
/// slight pixel noise. (Varied thickness keeps the 2x2 median's 1-pixel thickening in
/// distribution, so the tiny classifier does not flip on squeezed clean images.)
enum SyntheticBars {
    static let side = 8

    /// `[count, 1, 8, 8]` images and their labels (alternating 0, 1).
    static func make(count: Int, using generator: inout SeededGenerator) -> (images: Tensor, labels: [Int]) {
        var storage = [Float](repeating: 0, count: count * side * side)
        var labels = [Int]()
        for i in 0..<count {
            let label = i % 2
            let thickness = 1 + Int(generator.next() % 3)  // 1 to 3 rows or columns
            let position = 1 + Int(generator.next() % UInt64(side - 1 - thickness))  // first row/column of the bar
            let background = 0.05 + 0.1 * generator.nextUniform()
            let bright = 0.8 + 0.15 * generator.nextUniform()
            for y in 0..<side {
                for x in 0..<side {
                    let along = label == 0 ? y : x
                    let base = (position..<(position + thickness)).contains(along) ? bright : background
                    storage[i * side * side + y * side + x] = base + 0.04 * (generator.nextUniform() - 0.5)
                }
            }
            labels.append(label)
        }
        return (Tensor(shape: [count, 1, side, side], storage: storage), labels)
    }

    /// `clip(x + strength * s, 0, 1)` with a random sign `s = +-1` per pixel: a heavy perturbation.
    static func perturbed(_ images: Tensor, strength: Float = 0.5, using generator: inout SeededGenerator) -> Tensor {
        let signs = Tensor(shape: images.shape, storage: (0..<images.count).map { _ in generator.next() & 1 == 0 ? -1 : 1 })
        return images.zipMap(signs) { min(max($0 + strength * $1, 0), 1) }
    }
}

/// A tiny classifier trained once on the synthetic bars and shared by the tests that need one.
final class TrainedFixture: @unchecked Sendable {  // built once, then only read by the tests
    static let shared = TrainedFixture()

    let training: (images: Tensor, labels: [Int])
    let validation: Tensor
    let test: Tensor
    let testLabels: [Int]
    let network: Sequential
    let classifier: ClassifierFunction

    private init() {
        var generator = SeededGenerator(seed: 2017)
        training = SyntheticBars.make(count: 256, using: &generator)
        validation = SyntheticBars.make(count: 200, using: &generator).images
        let test = SyntheticBars.make(count: 200, using: &generator)
        self.test = test.images
        testLabels = test.labels
        network = Sequential([
            Conv2D(inputChannels: 1, outputChannels: 4, kernelSize: 3, padding: 1, using: &generator), ReLU(),
            MaxPool2D(size: 2), Flatten(),
            Dense(inputSize: 4 * 4 * 4, outputSize: 2, using: &generator)
        ])
        let (images, labels) = (training.images, training.labels)
        _ = try! trainWithAdam(
            parameters: network.namedParameters, sampleCount: images.batchSize,
            settings: TrainingSettings(epochs: 20, batchSize: 32, learningRate: 1e-2),
            using: &generator
        ) { [network] tape, batch, _ in
            softmaxCrossEntropy(logits: network(tape.constant(images.gather(batch))), labels: batch.map { labels[$0] })
        }
        classifier = ClassifierFunction(network)
    }
}
