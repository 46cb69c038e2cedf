import Autodiff
import NeuralNetworks
import Tensors
import XCTest
@testable import Attacks

/// Seeded synthetic data and tiny models trained in-test.
///
/// Images are `[N, 1, 8, 8]`: every pixel uniform in [0, 0.25], and the pixels of
/// quadrant `k` (of 4) brightened by a uniform amount in [0.15, 0.35] for class `k`.
/// The classes are separable but close, so small perturbations matter.
enum Fixtures {
    static let side = 8
    static let classCount = 4

    /// `count` images with labels cycling through the classes.
    static func quadrantImages(count: Int, seed: UInt64) -> (images: Tensor, labels: [Int]) {
        var generator = SeededGenerator(seed: seed)
        let labels = (0..<count).map { $0 % classCount }
        var storage = [Float](repeating: 0, count: count * side * side)
        for (n, label) in labels.enumerated() {
            for row in 0..<side {
                for column in 0..<side {
                    var value = 0.25 * generator.nextUniform()
                    let quadrant = (row < side / 2 ? 0 : 2) + (column < side / 2 ? 0 : 1)
                    if quadrant == label { value += 0.15 + 0.2 * generator.nextUniform() }
                    storage[n * side * side + row * side + column] = value
                }
            }
        }
        return (Tensor(shape: [count, 1, side, side], storage: storage), labels)
    }

    /// A classifier over a network on flattened images.
    static func classifier(_ network: any Layer) -> DifferentiableClassifier {
        DifferentiableClassifier { network($0.flattened()) }
    }

    /// A 64-32-4 ReLU network trained with Adam (full batch, 300 steps) on 512 images.
    static let trainedNetwork: Sequential = {
        var generator = SeededGenerator(seed: 7)
        let network = Sequential([
            Dense(inputSize: side * side, outputSize: 32, using: &generator), ReLU(),
            Dense(inputSize: 32, outputSize: classCount, using: &generator)
        ])
        let (images, labels) = quadrantImages(count: 512, seed: 11)
        let optimizer = try! Adam(learningRate: 1e-2)
        for _ in 0..<300 {
            let tape = Tape()
            let logits = network(tape.constant(images).flattened())
            let gradients = tape.gradients(of: softmaxCrossEntropy(logits: logits, labels: labels))
            optimizer.step(network.namedParameters, gradients: gradients)
        }
        return network
    }()

    static var trainedClassifier: DifferentiableClassifier { classifier(trainedNetwork) }

    /// Held-out images the trained network classifies correctly (`count` of them at most).
    static func correctlyClassified(count: Int, seed: UInt64 = 99) -> (images: Tensor, labels: [Int]) {
        let (images, labels) = quadrantImages(count: count * 2, seed: seed)
        let predicted = trainedClassifier.predictions(images)
        let keep = Array(labels.indices.filter { predicted[$0] == labels[$0] }.prefix(count))
        return (images.gather(keep), keep.map { labels[$0] })
    }

    /// Fraction of true values.
    static func rate(_ flags: [Bool]) -> Float { Float(flags.filter { $0 }.count) / Float(max(1, flags.count)) }
}
