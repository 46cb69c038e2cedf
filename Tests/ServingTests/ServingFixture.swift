import DAFAR
import Foundation
import Hummingbird
import HummingbirdTesting
import ImageFiles
import NeuralNetworks
import Serving
import Tensors
import XCTest

/// A tiny untrained DAFAR system built in memory (the same seeds give the same weights, so a
/// test keeps one copy as the reference while the service owns another), images and bodies.
enum ServingFixture {
    /// A fresh MNIST-architecture model with a detector calibrated at z = 0 on 16 noise images,
    /// so that about half of such images are flagged.
    static func makeModel() -> DAFARModel {
        Parallel.setThreadCount(1)
        let network = JointNetwork(architecture: .mnist, seed: 11)
        let detector = AnomalyDetector(inputSize: 784, hiddenSizes: [16, 8], seed: 12)
        let scores = DAFARModel(network: network, detector: detector).scores(noise(16, seed: 13))
        DetectorTraining.calibrate(detector, statisticsScores: scores, source: "validation", validationScores: scores, z: 0)
        return DAFARModel(network: network, detector: detector)
    }

    /// `count` images of byte-valued noise `[count, 1, 28, 28]` (exactly representable in a PNG).
    static func noise(_ count: Int, seed: UInt64, height: Int = 28, width: Int = 28) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return Tensor(
            shape: [count, 1, height, width],
            storage: (0..<(count * height * width)).map { _ in Float(UInt8.random(in: 0...255, using: &generator)) / 255 })
    }

    /// A PNG file of image `index` of `images`.
    static func png(_ images: Tensor, _ index: Int) throws -> [UInt8] {
        try PNGFormat.encode(PixelImage(tensor: images.slice(index..<(index + 1)).reshaped(Array(images.shape.dropFirst()))))
    }

    /// `{"images": [...]}` (or `{"pixels": ...}` for one image) with `[H][W]` arrays.
    static func json(_ images: Tensor, single: Bool = false) -> [UInt8] {
        let (h, w) = (images.shape[2], images.shape[3])
        let arrays = (0..<images.batchSize).map { n in
            "["
                + (0..<h).map { y in "[" + (0..<w).map { x in "\(images.storage[(n * h + y) * w + x])" }.joined(separator: ",") + "]" }
                .joined(separator: ",") + "]"
        }
        return Array((single ? "{\"pixels\": \(arrays[0])}" : "{\"images\": [\(arrays.joined(separator: ", "))]}").utf8)
    }

    /// A service on a fresh model with `settings` (loopback; port 0 for live tests).
    static func service(_ settings: DetectionService.Settings = .init(port: 0)) -> DetectionService {
        DetectionService(model: makeModel(), settings: settings)
    }

    /// The text of a response body.
    static func text(_ response: TestResponse) -> String { String(decoding: response.body.readableBytesView, as: UTF8.self) }

    /// The JSON object of a response body.
    static func object(_ response: TestResponse, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(text(response).utf8)) as? [String: Any],
            "not a JSON object: \(text(response))", file: file, line: line)
    }

    /// Asserts that a 200 answer holds exactly `expected`, scores bit for bit.
    static func assertVerdicts(
        _ response: TestResponse, _ expected: [ImageVerdict], _ what: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        XCTAssertEqual(response.status, .ok, "\(what): \(text(response))", file: file, line: line)
        let verdicts = try XCTUnwrap(object(response)["verdicts"] as? [[String: Any]], what, file: file, line: line)
        XCTAssertEqual(verdicts.count, expected.count, "\(what): one verdict per image", file: file, line: line)
        for (i, (json, want)) in zip(verdicts, expected).enumerated() {
            XCTAssertEqual(
                Set(json.keys), ["index", "predicted_class", "probability", "score", "threshold", "adversarial"], file: file, line: line)
            XCTAssertEqual(json["index"] as? Int, i, file: file, line: line)
            XCTAssertEqual(json["predicted_class"] as? Int, want.predictedClass, "\(what) image \(i)", file: file, line: line)
            XCTAssertEqual(json["adversarial"] as? Bool, want.adversarial, "\(what) image \(i)", file: file, line: line)
            XCTAssertEqual(
                Float((json["score"] as? Double) ?? -1).bitPattern, want.score.bitPattern, "\(what) image \(i): score bits", file: file,
                line: line)
            XCTAssertEqual(Float((json["probability"] as? Double) ?? -1), want.probability, "\(what) image \(i)", file: file, line: line)
            XCTAssertEqual(Float((json["threshold"] as? Double) ?? -1), want.threshold, "\(what) image \(i)", file: file, line: line)
        }
    }
}
