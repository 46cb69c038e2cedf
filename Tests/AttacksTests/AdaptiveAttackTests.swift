import Autodiff
import NeuralNetworks
import Tensors
import XCTest
@testable import Attacks

/// The adaptive attack against a differentiable smoothness detector, and `AttackOutcome`.
final class AdaptiveAttackTests: XCTestCase {
    /// Score = `||x - blur(x)||_2`, blur = 3x3 box filter (zero padding), a stand-in for
    /// DAFAR's residual score that is high for the high-frequency noise of sign steps.
    /// Threshold = the largest score of 100 clean images.
    nonisolated(unsafe) static let detector: DifferentiableDetector = {  // built once, then only read
        let box = Variable(Tensor(shape: [1, 1, 3, 3], repeating: 1.0 / 9))
        let score: (Variable) -> Variable = { x in l2NormPerSample(x - conv2d(x, weight: box, bias: nil, padding: 1)) }
        let clean = Fixtures.quadrantImages(count: 100, seed: 123).images
        let threshold = score(Variable(clean)).value.storage.max()!
        return DifferentiableDetector(threshold: threshold, score: score)
    }()

    func mean(_ values: [Float]) -> Float { values.reduce(0, +) / Float(values.count) }

    func testDetectorTermLowersTheScoreComparedWithPlainPGD() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 32)
        let model = Fixtures.trainedClassifier, detector = Self.detector
        let (epsilon, stepSize, steps): (Float, Float, Int) = (0.2, 0.02, 30)
        var generator = SeededGenerator(seed: 5)
        let plain = try ProjectedGradientDescent.lInfinity(epsilon: epsilon, stepSize: stepSize, steps: steps)
            .perturb(images, labels: labels, goal: .untargeted, model: model, generator: &generator)
        generator = SeededGenerator(seed: 5)
        let adaptive = try AdaptiveAttack.projectedGradient(
            detector: detector, detectorWeight: 10, epsilon: epsilon,
            stepSize: stepSize, steps: steps)
        XCTAssertEqual(adaptive.name, "Adaptive-PGD-Linf")
        let evasive = adaptive.perturb(images, labels: labels, goal: .untargeted, model: model, generator: &generator)
        XCTAssertLessThanOrEqual((evasive - images).lInfinityNormsPerSample().max()!, epsilon + 1e-6)

        let plainOutcome = AttackOutcome(
            original: images, adversarial: plain, labels: labels, goal: .untargeted,
            classifier: model, detector: detector)
        let adaptiveOutcome = AttackOutcome(
            original: images, adversarial: evasive, labels: labels, goal: .untargeted,
            classifier: model, detector: detector)
        let (plainScore, adaptiveScore) = (mean(plainOutcome.detectorScores!), mean(adaptiveOutcome.detectorScores!))
        let flagged = { (outcome: AttackOutcome) in Fixtures.rate(outcome.detectorScores!.map { $0 > detector.threshold }) }
        XCTAssertLessThan(adaptiveScore, plainScore, "the detector term should lower the mean anomaly score")
        XCTAssertLessThanOrEqual(
            flagged(adaptiveOutcome), 0.5 * flagged(plainOutcome),
            "the detector term should at least halve the flagged fraction")
        XCTAssertGreaterThan(
            adaptiveOutcome.successRate, plainOutcome.successRate + 0.2,
            "evading the detector should raise success under the detector criterion")

        // With alpha = 0 the term pushes every score down, well below plain PGD's.
        generator = SeededGenerator(seed: 5)
        let smooth = try AdaptiveAttack.projectedGradient(
            detector: detector, detectorWeight: 10, scoreMargin: 0,
            epsilon: epsilon, stepSize: stepSize, steps: steps
        )
        .perturb(images, labels: labels, goal: .untargeted, model: model, generator: &generator)
        let smoothScore = mean(detector.scores(smooth))
        XCTAssertLessThan(smoothScore, 0.8 * plainScore, "alpha 0: mean score \(smoothScore) vs plain \(plainScore)")
    }

    func testAdaptiveCarliniWagnerOnlyCountsUndetectedSuccesses() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 12)
        let model = Fixtures.trainedClassifier, detector = Self.detector
        let cw = try CarliniWagnerL2(learningRate: 1e-2, binarySearchSteps: 4, maxIterations: 200, initialConstant: 1e-1)
        let attack = try AdaptiveAttack(method: .carliniWagnerL2(cw), detector: detector, detectorWeight: 10)
        XCTAssertEqual(attack.settings["lambda"], "10.0")
        var generator = SeededGenerator(seed: 1)
        let adversarial = attack.perturb(images, labels: labels, goal: .untargeted, model: model, generator: &generator)
        let outcome = AttackOutcome(
            original: images, adversarial: adversarial, labels: labels, goal: .untargeted,
            classifier: model, detector: detector)
        XCTAssertGreaterThanOrEqual(outcome.successRate, 0.9, "adaptive CW should fool both")
        for i in 0..<images.batchSize where outcome.l2Distances[i] > 0 {
            XCTAssertLessThanOrEqual(outcome.detectorScores![i], detector.threshold, "image \(i) kept although detected")
        }
    }

    func testOutcomeCountsSuccessesAndDistances() {
        // Identity "classifier": a [N, 1, 1, 3] image is its own logits.
        let classifier = DifferentiableClassifier { $0.flattened() }
        let clean = Tensor(shape: [3, 1, 1, 3], storage: [0.9, 0.1, 0.0, 0.1, 0.8, 0.0, 0.2, 0.1, 0.7])
        let adversarial = Tensor(shape: [3, 1, 1, 3], storage: [0.3, 0.9, 0.0, 0.1, 0.8, 0.0, 0.8, 0.1, 0.7])
        let outcome = AttackOutcome(
            original: clean, adversarial: adversarial, labels: [0, 1, 2], goal: .untargeted,
            classifier: classifier)
        XCTAssertEqual(outcome.predictedClean, [0, 1, 2])
        XCTAssertEqual(outcome.predictedAdversarial, [1, 1, 0])
        XCTAssertEqual(outcome.success, [true, false, true])
        XCTAssertEqual(outcome.successRate, 2.0 / 3, accuracy: 1e-6)
        XCTAssertEqual(outcome.l2Distances[0], 1, accuracy: 1e-6)  // sqrt(0.6^2 + 0.8^2)
        XCTAssertEqual(outcome.meanL2OfSuccessful!, (1 + 0.6) / 2, accuracy: 1e-6)
        XCTAssertEqual(outcome.meanLInfinityOfSuccessful!, (0.8 + 0.6) / 2, accuracy: 1e-6)

        let targeted = AttackOutcome(
            original: clean, adversarial: adversarial, labels: [0, 1, 2], goal: .targeted([2, 1, 0]),
            classifier: classifier)
        XCTAssertEqual(targeted.success, [false, true, true])

        // A detector that flags images whose pixels sum above 1.55 turns image 2's success into a failure.
        let detector = DifferentiableDetector(threshold: 1.55) { $0.sumPerSample() }
        let guarded = AttackOutcome(
            original: clean, adversarial: adversarial, labels: [0, 1, 2], goal: .untargeted,
            classifier: classifier, detector: detector)
        XCTAssertEqual(guarded.success, [true, false, false])
        XCTAssertEqual(guarded.meanL2OfSuccessful!, 1, accuracy: 1e-6)
        XCTAssertNil(
            AttackOutcome(
                original: clean, adversarial: clean, labels: [0, 1, 2], goal: .untargeted,
                classifier: classifier
            ).meanL2OfSuccessful)
    }
}
