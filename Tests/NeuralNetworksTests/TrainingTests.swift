import Autodiff
import Foundation
import NeuralNetworks
import Tensors
import XCTest

/// A tiny CNN must learn a seeded synthetic task, and the same seed must give the same weights.
final class TrainingTests: XCTestCase {
    /// 8x8 images with uniform noise in [0, 0.3] and a bright 2x2 blob; the class is the
    /// quadrant that holds the blob (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right).
    static func quadrantImages(count: Int, using g: inout SeededGenerator) -> (images: Tensor, labels: [Int]) {
        var pixels = [Float](repeating: 0, count: count * 64), labels = [Int]()
        for n in 0..<count {
            let label = Int(g.next() % 4)
            labels.append(label)
            for i in 0..<64 { pixels[n * 64 + i] = 0.3 * g.nextUniform() }
            let top = (label / 2) * 4 + Int(g.next() % 3), left = (label % 2) * 4 + Int(g.next() % 3)
            for dy in 0..<2 { for dx in 0..<2 { pixels[n * 64 + (top + dy) * 8 + left + dx] = 1 } }
        }
        return (Tensor(shape: [count, 1, 8, 8], storage: pixels), labels)
    }

    /// Trains Conv2D -> ReLU -> MaxPool -> Flatten -> Dense with Adam for a fixed number of steps.
    func train(seed: UInt64, steps: Int = 120) throws -> (model: Sequential, accuracy: Float, firstLoss: Float, lastLoss: Float) {
        var g = SeededGenerator(seed: seed)
        let model = Sequential([
            Conv2D(inputChannels: 1, outputChannels: 4, kernelSize: 3, padding: 1, using: &g), ReLU(), MaxPool2D(size: 2), Flatten(),
            Dense(inputSize: 64, outputSize: 4, using: &g)
        ])
        let train = Self.quadrantImages(count: 256, using: &g), test = Self.quadrantImages(count: 200, using: &g)
        let optimizer = try Adam(learningRate: 0.01)
        let batch = 32
        var order = g.permutation(256), position = 0
        var firstLoss: Float = .nan, lastLoss: Float = .nan
        for _ in 0..<steps {
            if position + batch > 256 { order = g.permutation(256); position = 0 }
            let indices = Array(order[position..<(position + batch)])
            position += batch
            let tape = Tape()
            let loss = softmaxCrossEntropy(
                logits: model(tape.constant(train.images.gather(indices))),
                labels: indices.map { train.labels[$0] })
            if firstLoss.isNaN { firstLoss = loss.value.scalar }
            lastLoss = loss.value.scalar
            optimizer.step(model.namedParameters, gradients: tape.gradients(of: loss))
        }
        let predictions = model(test.images).argmaxRows()
        let correct = zip(predictions, test.labels).filter { $0 == $1 }.count
        return (model, Float(correct) / Float(test.labels.count), firstLoss, lastLoss)
    }

    func testSmallCNNLearnsQuadrants() throws {
        let started = Date()
        let run = try train(seed: 2024)
        XCTAssertGreaterThanOrEqual(
            run.accuracy, 0.95, "held-out accuracy \(run.accuracy) after 120 Adam steps must reach 0.95 (chance is 0.25)")
        XCTAssertLessThan(run.lastLoss, 0.5 * run.firstLoss, "the loss falls from \(run.firstLoss) to \(run.lastLoss)")
        XCTAssertLessThan(Date().timeIntervalSince(started), 20, "training should stay fast")
    }

    func testSameSeedGivesBitIdenticalWeights() throws {
        let a = try train(seed: 7, steps: 40), b = try train(seed: 7, steps: 40), c = try train(seed: 8, steps: 40)
        let pa = a.model.namedParameters, pb = b.model.namedParameters
        XCTAssertEqual(pa.map(\.name), pb.map(\.name))
        for (x, y) in zip(pa, pb) {
            XCTAssertEqual(x.parameter.value.storage, y.parameter.value.storage, "\(x.name) differs between two runs with seed 7")
        }
        XCTAssertNotEqual(pa[0].parameter.value.storage, c.model.namedParameters[0].parameter.value.storage, "another seed, other weights")
    }
}
