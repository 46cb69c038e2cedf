import Foundation
import Tensors
import XCTest
@testable import Baselines

/// Each baseline, trained on the synthetic bars, against heavily perturbed images
/// (`clip(x + 0.5 * random sign, 0, 1)`), thresholds fitted on clean validation images only.
final class DetectorTests: XCTestCase {
    let fixture = TrainedFixture.shared

    func testTinyClassifierLearnsTheBars() {
        let predictions = fixture.classifier.predictions(fixture.test)
        let accuracy = Double(zip(predictions, fixture.testLabels).filter { $0 == $1 }.count) / Double(predictions.count)
        XCTAssertGreaterThan(accuracy, 0.95, "the protected classifier must work for the detector tests to mean anything")
    }

    /// Mean score of each set, and the fraction of perturbed images flagged at `threshold`.
    func separation(
        _ detector: some BaselineDetector, clean: Tensor, perturbed: Tensor,
        threshold: FittedThreshold
    ) -> (clean: Float, perturbed: Float, detected: Double, falsePositives: Double) {
        let (c, p) = (detector.scores(clean), detector.scores(perturbed))
        return (
            c.reduce(0, +) / Float(c.count), p.reduce(0, +) / Float(p.count),
            threshold.flaggedFraction(p), threshold.flaggedFraction(c)
        )
    }

    func testMagNetDetectsHeavyNoiseAtItsCleanFalsePositiveRate() throws {
        var generator = SeededGenerator(seed: 1)
        let autoencoder = MagNetAutoencoder(imageShape: [1, 8, 8], using: &generator)
        let losses = try autoencoder.train(
            on: fixture.training.images,
            settings: TrainingSettings(epochs: 50, batchSize: 32, learningRate: 1e-2),
            using: &generator)
        XCTAssertLessThan(losses.last!, 0.5 * losses.first!, "autoencoder loss must fall: \(losses)")
        let magNet = MagNet.fit(
            autoencoder: autoencoder, classifier: fixture.classifier, cleanValidation: fixture.validation,
            overallFalsePositiveRate: 0.04)
        XCTAssertEqual(magNet.thresholds.map(\.falsePositiveRate), [0.01, 0.01, 0.01, 0.01], "rate split over 4 detectors")
        let perturbed = SyntheticBars.perturbed(fixture.test, using: &generator)

        for (detector, threshold) in zip(magNet.detectors, magNet.thresholds) {
            let s = separation(detector, clean: fixture.test, perturbed: perturbed, threshold: threshold)
            XCTAssertGreaterThan(s.perturbed, s.clean, "\(detector.name): perturbed images must score higher on average")
            if case .reconstructionError = detector.kind {
                XCTAssertGreaterThan(s.detected, 0.9, "\(detector.name) flags most perturbed images")
            }
        }
        let verdicts = magNet.flags(perturbed)
        XCTAssertGreaterThan(Double(verdicts.filter { $0 }.count) / Double(verdicts.count), 0.9, "MagNet flags most perturbed images")
        let cleanFlags = magNet.flags(fixture.test)
        XCTAssertLessThan(
            Double(cleanFlags.filter { $0 }.count) / Double(cleanFlags.count), 0.15, "MagNet false positives on clean test images")
        // The combined score ranks by the most exceeded threshold: above 1 exactly for the verdicts here.
        XCTAssertEqual(magNet.scores(perturbed).map { $0 > 1 }, verdicts, "combined score agrees with the verdict")
        // Batched in slices or in one call, the scores are the same.
        var sliced = magNet
        sliced.batchSize = 7
        for (a, b) in zip(sliced.detectorScores(perturbed).joined(), magNet.detectorScores(perturbed).joined()) {
            XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b)), "scores must not depend on batching (up to GEMM rounding)")
        }
    }

    func testFeatureSqueezingDetectsHeavyNoiseAtFivePercentFalsePositives() {
        let squeezing = FeatureSqueezing(classifier: fixture.classifier, channels: 1)
        XCTAssertEqual(squeezing.squeezers, [.bitDepth(bits: 1), .median(size: 2)], "MNIST-style squeezers for 1 channel")
        XCTAssertEqual(Squeezer.standard(channels: 3), [.bitDepth(bits: 5), .median(size: 2)], "colour squeezers")
        let threshold = squeezing.fitThreshold(
            cleanValidation: fixture.validation,
            falsePositiveRate: FeatureSqueezing.defaultFalsePositiveRate)
        var generator = SeededGenerator(seed: 2)
        let perturbed = SyntheticBars.perturbed(fixture.test, using: &generator)
        let s = separation(squeezing, clean: fixture.test, perturbed: perturbed, threshold: threshold)
        XCTAssertGreaterThan(s.perturbed, s.clean, "perturbed images must score higher on average")
        XCTAssertGreaterThan(s.detected, 0.7, "Feature Squeezing flags most perturbed images (measured 0.81) (\(s))")
        XCTAssertLessThan(s.falsePositives, 0.15, "false positives on clean test images (\(s))")
        let distances = squeezing.squeezerDistances(perturbed)
        XCTAssertEqual(
            squeezing.scores(perturbed), (0..<perturbed.batchSize).map { max(distances[0][$0], distances[1][$0]) },
            "score = max over squeezers")
        XCTAssertTrue(squeezing.scores(perturbed).allSatisfy { $0 >= 0 && $0 <= 2 }, "L1 between distributions lies in [0, 2]")
    }

    func testBinaryClassifierDetectsTheNoiseItWasTrainedOnAndSurvivesAFileRoundTrip() throws {
        var generator = SeededGenerator(seed: 3)
        let detector = BinaryClassifierDetector(imageShape: [1, 8, 8], using: &generator)
        // Balanced from unequal sets: 256 clean, 200 perturbed.
        let trainingAdversarial = SyntheticBars.perturbed(fixture.training.images.slice(0..<200), using: &generator)
        let losses = try detector.train(
            clean: fixture.training.images, adversarial: trainingAdversarial,
            settings: TrainingSettings(epochs: 6, batchSize: 32, learningRate: 3e-3),
            using: &generator)
        XCTAssertLessThan(losses.last!, 0.5 * losses.first!, "detector loss must fall: \(losses)")
        let threshold = detector.fitThreshold(cleanValidation: fixture.validation, falsePositiveRate: 0.05)
        let perturbed = SyntheticBars.perturbed(fixture.test, using: &generator)
        let s = separation(detector, clean: fixture.test, perturbed: perturbed, threshold: threshold)
        XCTAssertGreaterThan(s.perturbed, s.clean, "perturbed images must score higher on average")
        XCTAssertGreaterThan(s.detected, 0.9, "the binary detector flags most perturbed images (\(s))")
        let probabilities = detector.adversarialProbabilities(perturbed), margins = detector.scores(perturbed)
        for (p, m) in zip(probabilities, margins) {
            XCTAssertEqual(p, 1 / (1 + exp(-m)), accuracy: 1e-5, "probability = sigmoid(margin)")
        }

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("binary-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try detector.save(to: url, metadata: ["attack": "sign-noise-0.5"])
        let loaded = try BinaryClassifierDetector.load(from: url)
        XCTAssertEqual(loaded.scores(perturbed), margins, "a reloaded detector must score identically")
        XCTAssertThrowsError(try MagNetAutoencoder.load(from: url), "a binary detector file is not a MagNet autoencoder")
    }

    func testBinaryClassifierRefusesAnEmptyAdversarialSet() {
        var generator = SeededGenerator(seed: 4)
        let detector = BinaryClassifierDetector(imageShape: [1, 8, 8], using: &generator)
        XCTAssertThrowsError(
            try detector.train(
                clean: fixture.validation, adversarial: Tensor.zeros([0, 1, 8, 8]),
                using: &generator)
        ) { error in
            XCTAssertTrue("\(error)".contains("0 adversarial"), "message names the empty set: \(error)")
        }
        XCTAssertThrowsError(
            try detector.train(
                clean: fixture.validation, adversarial: fixture.validation,
                settings: TrainingSettings(epochs: 0), using: &generator))
    }

    func testMagNetAutoencoderFileRoundTripKeepsReconstructions() throws {
        var generator = SeededGenerator(seed: 6)
        let autoencoder = MagNetAutoencoder(imageShape: [1, 8, 8], filters: 2, using: &generator)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("magnet-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try autoencoder.save(to: url)
        let loaded = try MagNetAutoencoder.load(from: url)
        XCTAssertEqual(loaded.imageShape, [1, 8, 8])
        XCTAssertEqual(loaded.filters, 2)
        XCTAssertEqual(loaded.reconstruct(fixture.test), autoencoder.reconstruct(fixture.test), "identical reconstructions")
        XCTAssertTrue(
            autoencoder.network.summary.contains("AvgPool2d(kernel_size=2, stride=2)"),
            "MagNet's average pooling: \(autoencoder.network.summary)")
    }
}
