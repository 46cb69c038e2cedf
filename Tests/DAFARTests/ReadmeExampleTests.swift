import Autodiff
import Foundation
import NeuralNetworks
import Tensors
import XCTest
@testable import DAFAR

/// The README's code examples, compiled and run (keep them in step).
final class ReadmeExampleTests: XCTestCase {
    func testToolkitExample() throws {
        // README: "The toolkit"
        var generator = SeededGenerator(seed: 42)
        let model = Sequential([
            Conv2D(inputChannels: 1, outputChannels: 8, kernelSize: 3, using: &generator), ReLU(),
            MaxPool2D(size: 2), Flatten(), Dense(inputSize: 8 * 13 * 13, outputSize: 10, using: &generator)
        ])
        let optimizer = try Adam(learningRate: 1e-3)
        let images = Tensor.uniform([16, 1, 28, 28], using: &generator)
        let labels = (0..<16).map { $0 % 10 }

        let tape = Tape()
        let x = tape.watch(images)  // watched: we also get d loss / d x
        let loss = softmaxCrossEntropy(logits: model(x), labels: labels)
        let gradients = tape.gradients(of: loss)
        optimizer.step(model.namedParameters, gradients: gradients)
        let inputGradient = gradients[x]!  // [16, 1, 28, 28], what FGSM needs
        // end of README example
        XCTAssertEqual(inputGradient.shape, [16, 1, 28, 28])
        XCTAssertTrue(inputGradient.storage.contains { $0 != 0 })
    }

    func testEmbeddingExample() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("readme-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let network = JointNetwork(architecture: .mnist, seed: 1)
        try network.archive(metadata: [:]).write(to: folder.appendingPathComponent("model.safetensors"))
        let hash = try SafetensorsArchive.sha256Hex(of: folder.appendingPathComponent("model.safetensors"))
        let trainedDetector = AnomalyDetector(inputSize: 784, hiddenSizes: [16], seed: 1)
        let cleanImages = syntheticDigits(count: 20, seed: 4).images
        let scores = DetectorTraining.scores(trainedDetector, residuals: DetectorTraining.residuals(network, images: cleanImages))
        DetectorTraining.calibrate(trainedDetector, statisticsScores: scores, source: "validation", validationScores: scores, z: 3)
        try trainedDetector.archive(modelHash: hash).write(to: folder.appendingPathComponent("detector.safetensors"))
        let images = cleanImages
        let previousDirectory = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(folder.path)
        defer { FileManager.default.changeCurrentDirectoryPath(previousDirectory) }

        // README: "Embedding DAFAR in your Swift code"
        let dafar = try DAFARModel(
            contentsOf: URL(fileURLWithPath: "model.safetensors"),
            detector: URL(fileURLWithPath: "detector.safetensors"))
        let verdicts = dafar.inspect(images)  // images: Tensor [N, 1, 28, 28] in [0, 1]
        for (i, verdict) in verdicts.enumerated() where verdict.isAdversarial {
            print("image \(i): class \(verdict.predictedClass), score \(verdict.score) > \(dafar.threshold!)")
        }
        // end of README example
        XCTAssertEqual(verdicts.count, 20)
        XCTAssertEqual(verdicts.filter(\.isAdversarial).count, scores.filter { $0 > dafar.threshold! }.count)
    }
}
