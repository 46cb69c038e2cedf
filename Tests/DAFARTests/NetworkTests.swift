import Foundation
import Autodiff
import Datasets
import NeuralNetworks
import Tensors
import XCTest
@testable import DAFAR

final class NetworkTests: XCTestCase {
    func testMNISTStateDictNamesAndShapes() {
        let net = JointNetwork(architecture: .mnist, seed: 1)
        let shapes = Dictionary(uniqueKeysWithValues: net.namedParameters.map { ($0.name, $0.parameter.value.shape) })
        XCTAssertEqual(shapes["target.features.0.weight"], [32, 1, 3, 3])
        XCTAssertEqual(shapes["target.features.2.weight"], [32, 32, 3, 3])
        XCTAssertEqual(shapes["target.features.5.weight"], [64, 32, 3, 3])
        XCTAssertEqual(shapes["target.features.7.bias"], [64])
        XCTAssertEqual(shapes["target.classifier.1.weight"], [200, 1024])
        XCTAssertEqual(shapes["target.classifier.3.weight"], [200, 200])
        XCTAssertEqual(shapes["target.classifier.5.weight"], [10, 200])
        XCTAssertEqual(shapes["decoder.1.weight"], [64, 64, 3, 3], "ConvTranspose2d weight is [in, out, k, k]")
        XCTAssertEqual(shapes["decoder.8.weight"], [32, 1, 3, 3])
        XCTAssertEqual(net.feedbackLayer, 10)
        let out = net(Variable(Tensor.zeros([2, 1, 28, 28])))
        XCTAssertEqual(out.logits.shape, [2, 10])
        XCTAssertEqual(out.reconstruction.shape, [2, 1, 28, 28])
        XCTAssertTrue(out.reconstruction.value.storage.allSatisfy { $0 > 0 && $0 < 1 }, "sigmoid output")
    }

    func testCIFARShapesAndNames() {
        let net = JointNetwork(architecture: .cifar, seed: 1)
        let shapes = Dictionary(uniqueKeysWithValues: net.namedParameters.map { ($0.name, $0.parameter.value.shape) })
        XCTAssertEqual(shapes["target.features.0.weight"], [96, 3, 3, 3])
        XCTAssertEqual(shapes["target.features.11.weight"], [192, 192, 3, 3])
        XCTAssertEqual(shapes["target.classifier.0.weight"], [192, 192, 3, 3])
        XCTAssertEqual(shapes["target.classifier.4.weight"], [10, 192, 1, 1])
        XCTAssertEqual(shapes["target.classifier.7.weight"], [200, 10])
        let out = net(Variable(Tensor.zeros([1, 3, 32, 32])))
        XCTAssertEqual(out.logits.shape, [1, 10])
        XCTAssertEqual(out.reconstruction.shape, [1, 3, 32, 32])
    }

    func testEarlierFeedbackLayerStillReconstructsInputShape() {
        let net = JointNetwork(architecture: .mnist, feedbackLayer: 5, seed: 3)
        XCTAssertEqual(net.reconstruct(Variable(Tensor.zeros([1, 1, 28, 28]))).shape, [1, 1, 28, 28])
    }

    func testDetectorNamesFollowThePaper() {
        let detector = AnomalyDetector(inputSize: 784, seed: 0)
        let shapes = detector.namedParameters.map { "\($0.name) \($0.parameter.value.shape)" }
        XCTAssertEqual(
            shapes,
            [
                "detector.0.weight [256, 784]", "detector.0.bias [256]", "detector.2.weight [128, 256]", "detector.2.bias [128]",
                "detector.4.weight [64, 128]", "detector.4.bias [64]", "detector.6.weight [128, 64]", "detector.6.bias [128]",
                "detector.8.weight [256, 128]", "detector.8.bias [256]", "detector.10.weight [784, 256]", "detector.10.bias [784]"
            ])
        XCTAssertEqual(AnomalyDetector.defaultHiddenSizes(inputSize: 3072), [512, 256, 100])
    }

    func testDecoderStartsAtTheMeanIntensityOfEachChannel() {
        // Channel 0 has mean 0.1, channel 1 mean 0.5, channel 2 mean 0.8.
        var images = Tensor.zeros([2, 3, 32, 32])
        let plane = 32 * 32
        for n in 0..<2 {
            for c in 0..<3 {
                for p in 0..<plane {
                    images.storage[(n * 3 + c) * plane + p] = [Float(0.1), 0.5, 0.8][c] + (p % 2 == 0 ? 0.05 : -0.05)
                }
            }
        }
        let network = JointNetwork(architecture: .cifar, seed: 3)
        let last = network.decoder.layers.last { $0 is ConvTranspose2D } as! ConvTranspose2D
        let before = last.weight.value
        network.startDecoderAtMean(of: images)
        for (c, mean) in [Float(0.1), 0.5, 0.8].enumerated() {
            XCTAssertEqual(last.bias.value.storage[c], log(mean / (1 - mean)), accuracy: 1e-4)
        }
        XCTAssertEqual(last.weight.value.storage, before.storage.map { $0 * 0.1 })
        // The first reconstruction is close to the channel means.
        let reconstruction = network.reconstruct(Variable(images)).value
        for c in 0..<3 {
            let values = reconstruction.storage[(c * plane)..<((c + 1) * plane)]
            let mean = values.reduce(0, +) / Float(plane)
            XCTAssertEqual(mean, [Float(0.1), 0.5, 0.8][c], accuracy: 0.1, "channel \(c)")
        }
    }
}
