import Autodiff
import Foundation
import NeuralNetworks
import Tensors
import XCTest
@testable import DAFAR

/// Decision feedback and fused scores: their definitions, their files and the verdicts that follow them.
final class FeedbackScoreTests: XCTestCase {
    let network = JointNetwork(architecture: .mnist, seed: 5)
    let detector = AnomalyDetector(inputSize: 784, hiddenSizes: [16, 8], seed: 1)
    let images = syntheticDigits(count: 6, seed: 3).images

    func testDecisionScoreIsTheJSDOfTheOutputsOnXAndOnItsReconstruction() {
        let x = Variable(images)
        let expected = jensenShannonDivergencePerSample(network.logits(x), network.logits(network.reconstruct(x)), temperature: 4)
        XCTAssertEqual(network.decisionScore(x, temperature: 4).value, expected.value)
        let parts = network.feedbackScores(images, detector: detector, temperature: 4)
        XCTAssertEqual(parts.decision, expected.value.storage)
        XCTAssertEqual(parts.residual, DetectorTraining.scores(detector, residuals: DetectorTraining.residuals(network, images: images)))
    }

    func testFusedScoreIsTheLargerScaledComponentAndItsScalesComeFromTheShare() {
        let parts = network.feedbackScores(images, detector: detector, temperature: 10)
        let fused = FeedbackScore.fused(temperature: 10, share: 0.2, residualScores: parts.residual, decisionScores: parts.decision)
        XCTAssertEqual(fused.residualScale, Threshold.atFalsePositiveRate(0.2, scores: parts.residual))
        XCTAssertEqual(fused.decisionScale, Threshold.atFalsePositiveRate(0.2, scores: parts.decision))
        let model = DAFARModel(network: network, detector: detector)
        let scores = model.scores(images, fused)
        for i in 0..<images.batchSize {
            let want = max(parts.residual[i] / fused.residualScale, parts.decision[i] / fused.decisionScale)
            XCTAssertEqual(scores[i], want, accuracy: 1e-5 * max(1, want), "fused score of image \(i)")
        }
        // one image of six above the 20 % point of each component: at most two flagged at 1
        XCTAssertLessThanOrEqual(scores.filter { $0 > 1 }.count, 2)
    }

    func testScoreKindTravelsThroughTheDetectorFileAndDrivesVerdicts() throws {
        let parts = network.feedbackScores(images, detector: detector, temperature: 10)
        for definition in [
            FeedbackScore(kind: .decision, temperature: 3),
            .fused(temperature: 10, share: 0.5, residualScores: parts.residual, decisionScores: parts.decision)
        ] {
            detector.scoreDefinition = definition
            let model = DAFARModel(network: network, detector: detector)
            let scores = model.scores(images)
            DetectorTraining.calibrate(detector, statisticsScores: scores, source: "validation", validationScores: scores, z: 1)
            let bytes = try detector.archive(modelHash: "abc").encoded()
            let again = try AnomalyDetector(archive: SafetensorsArchive(bytes: bytes))
            XCTAssertEqual(again.scoreDefinition, definition)
            let reloaded = DAFARModel(network: network, detector: again)
            XCTAssertEqual(reloaded.scores(images), scores)
            let verdicts = reloaded.inspect(images)
            XCTAssertEqual(verdicts.map(\.score), scores)
            XCTAssertEqual(verdicts.map(\.isAdversarial), scores.map { $0 > again.calibration!.active })
            // the differentiable score an adaptive attacker uses is the same score, with a gradient
            let tape = Tape()
            let x = tape.watch(images)
            let score = reloaded.score(x)
            XCTAssertEqual(score.value.storage, scores)
            let gradient = try XCTUnwrap(tape.gradients(of: score.sum())[x])
            XCTAssertGreaterThan(gradient.storage.map(abs).max() ?? 0, 0, "\(definition): no gradient reaches the image")
        }
        detector.scoreDefinition = .residual
        let residualFile = try detector.archive(modelHash: "abc")
        XCTAssertNil(residualFile.metadata["score_kind"], "files of the paper's score stay as they were")
    }

    func testBadScoreMetadataIsRefusedWithItsName() throws {
        detector.scoreDefinition = FeedbackScore(kind: .fused, temperature: 2, residualScale: 1, decisionScale: 0.5)
        let good = detector.archive(modelHash: "abc")
        detector.scoreDefinition = .residual
        let cases: [(String, String?, String)] = [
            ("score_kind", "magic", "unknown score kind 'magic'"),
            ("decision_temperature", "-1", "'decision_temperature' must be a positive number"),
            ("decision_temperature", nil, "decision_temperature"),
            ("fused_decision_scale", "nan", "fused_decision_scale"),
            ("fused_residual_scale", "0", "'fused_residual_scale' must be a positive number")
        ]
        for (key, value, message) in cases {
            var archive = good
            archive.metadata[key] = value
            XCTAssertThrowsError(
                try AnomalyDetector(archive: SafetensorsArchive(bytes: archive.encoded()), file: "d.safetensors"),
                "\(key) = \(value ?? "missing")"
            ) { error in
                XCTAssertTrue("\(error)".contains(message), "\(key): \(error)")
            }
        }
    }
}
