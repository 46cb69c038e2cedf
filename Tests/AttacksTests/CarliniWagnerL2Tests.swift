import Autodiff
import NeuralNetworks
import Tensors
import XCTest
@testable import Attacks

/// CW-L2: success, minimality against PGD-L2, failures, targets, and the logit margin.
final class CarliniWagnerL2Tests: XCTestCase {
    func testDefaultsReachFullSuccessWithSmallerL2ThanPGD() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 24)
        let model = Fixtures.trainedClassifier
        var generator = SeededGenerator(seed: 2)
        let cw = try CarliniWagnerL2()
        XCTAssertEqual(cw.settings["max_iterations"], "1000")
        let adversarial = cw.perturb(images, labels: labels, goal: .untargeted, model: model, generator: &generator)
        XCTAssertTrue(adversarial.storage.allSatisfy { $0 >= 0 && $0 <= 1 }, "CW left [0, 1]")
        let outcome = AttackOutcome(
            original: images, adversarial: adversarial, labels: labels, goal: .untargeted,
            classifier: model)
        XCTAssertGreaterThanOrEqual(outcome.successRate, 0.99, "CW-L2 with kappa 0 should fool the small model")
        let cwL2 = try XCTUnwrap(outcome.meanL2OfSuccessful)

        // The smallest PGD-L2 budget (of a grid) that matches CW's success, and its mean L2.
        var matched: (epsilon: Float, meanL2: Float)? = nil
        for epsilon: Float in [0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3] {
            let pgd = try ProjectedGradientDescent.l2(epsilon: epsilon, stepSize: epsilon / 4, steps: 20)
            let pgdOutcome = AttackOutcome(
                original: images,
                adversarial: pgd.perturb(
                    images, labels: labels, goal: .untargeted, model: model,
                    generator: &generator),
                labels: labels, goal: .untargeted, classifier: model)
            if pgdOutcome.successRate >= outcome.successRate {
                matched = (epsilon, pgdOutcome.meanL2OfSuccessful!)
                break
            }
        }
        let pgd = try XCTUnwrap(matched, "no PGD-L2 budget matched CW's success")
        XCTAssertLessThan(cwL2, pgd.meanL2, "CW mean L2 \(cwL2) should be below PGD-L2's \(pgd.meanL2) at eps \(pgd.epsilon)")
    }

    func testTargetedCWReachesTheTargets() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 12)
        let model = Fixtures.trainedClassifier
        let targets = labels.map { ($0 + 3) % Fixtures.classCount }
        var generator = SeededGenerator(seed: 2)
        let cw = try CarliniWagnerL2(learningRate: 1e-2, maxIterations: 300, initialConstant: 1e-1, confidence: 1)
        let adversarial = cw.perturb(images, labels: labels, goal: .targeted(targets), model: model, generator: &generator)
        let logits = model.logits(of: adversarial)
        for i in 0..<images.batchSize {
            let row = logits.storage[(i * 4)..<((i + 1) * 4)]
            let best = row.indices.max { row[$0] < row[$1] }! - i * 4
            XCTAssertEqual(best, targets[i], "image \(i) did not reach its target")
            let other = row.indices.filter { $0 - i * 4 != targets[i] }.map { row[$0] }.max()!
            XCTAssertGreaterThanOrEqual(row[i * 4 + targets[i]] - other, 1 - 1e-4, "kappa 1 not honoured on image \(i)")
        }
    }

    func testImagesThatNeverSucceedComeBackUnchanged() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 6)
        var generator = SeededGenerator(seed: 2)
        let cw = try CarliniWagnerL2(binarySearchSteps: 1, maxIterations: 2, initialConstant: 1e-6)
        let adversarial = cw.perturb(
            images, labels: labels, goal: .untargeted, model: Fixtures.trainedClassifier,
            generator: &generator)
        XCTAssertEqual(adversarial, images, "a failed CW attack must return the original images exactly")
    }

    func testMarginMasksTheTrueClassWithALargeNegativeNumberNotZero() {
        // All logits negative: masking with 0 (torchattacks #184) would report max_{i != y} Z_i = 0.
        let logits = Variable(Tensor(shape: [2, 3], storage: [-5, -3, -4, -1, -7, -2]))
        let untargeted = logitMargin(logits: logits, classes: [0, 1], targeted: false).value.storage
        XCTAssertEqual(untargeted, [-5 - (-3), -7 - (-1)], "Z_y - max_{i != y} Z_i")
        let targeted = logitMargin(logits: logits, classes: [2, 2], targeted: true).value.storage
        XCTAssertEqual(targeted, [-3 - (-4), -1 - (-2)], "max_{i != t} Z_i - Z_t")
        XCTAssertTrue(carliniWagnerSucceeds([-5, -3, -4], reference: 0, confidence: 1, targeted: false))
        XCTAssertFalse(carliniWagnerSucceeds([-5, -3, -4], reference: 0, confidence: 3, targeted: false))
        XCTAssertTrue(carliniWagnerSucceeds([-5, -3, -1], reference: 2, confidence: 1.5, targeted: true))
        XCTAssertFalse(carliniWagnerSucceeds([-5, -3, -1], reference: 2, confidence: 2.5, targeted: true))
    }

    func testMarginGradientMatchesFiniteDifferences() {
        var generator = SeededGenerator(seed: 12)
        let z = Tensor.normal([3, 5], using: &generator)
        let tape = Tape(recordsParameters: false)
        let input = tape.watch(z)
        let margin = logitMargin(logits: input, classes: [0, 2, 4], targeted: false)
        let gradient = tape.gradients(of: margin.sum())[input]!
        for i in 0..<3 {
            let row = Array(z.storage[(i * 5)..<((i + 1) * 5)])
            let label = [0, 2, 4][i]
            let runnerUp = (0..<5).filter { $0 != label }.max { row[$0] < row[$1] }!
            for j in 0..<5 {
                let expected: Float = j == label ? 1 : (j == runnerUp ? -1 : 0)
                XCTAssertEqual(gradient.storage[i * 5 + j], expected, "d margin / d Z[\(i), \(j)]")
            }
        }
    }

    func testCarliniOriginalPreset() throws {
        let original = try CarliniWagnerL2.carliniOriginal()
        XCTAssertEqual(original.learningRate, 1e-2)
        XCTAssertEqual(original.binarySearchSteps, 9)
        XCTAssertEqual(original.maxIterations, 10_000)
        XCTAssertEqual(original.initialConstant, 1e-3)
        let cleverhans = try CarliniWagnerL2()
        XCTAssertEqual([cleverhans.learningRate, cleverhans.initialConstant, cleverhans.confidence], [5e-3, 1e-2, 0])
        XCTAssertEqual(cleverhans.binarySearchSteps, 5)
    }
}
