import NeuralNetworks
import Tensors
import XCTest
@testable import Attacks

/// `AttackRunner` with and without targets, random targets, and the `target` tensor of a set file.
final class AttackRunnerTests: XCTestCase {
    func testRandomTargetsAreUniformOverTheOtherClassesAndReproducible() {
        let labels = (0..<4000).map { $0 % 4 }
        var generator = SeededGenerator(seed: 5)
        let targets = AttackGoal.randomTargets(labels: labels, classCount: 4, generator: &generator)
        XCTAssertFalse(zip(targets, labels).contains { $0 == $1 }, "a target is never the label")
        for label in 0..<4 {
            let drawn = zip(targets, labels).filter { $0.1 == label }.map(\.0)
            for other in 0..<4 where other != label {
                let share = Double(drawn.filter { $0 == other }.count) / Double(drawn.count)
                XCTAssertEqual(share, 1.0 / 3, accuracy: 0.06, "label \(label) -> \(other)")
            }
        }
        var again = SeededGenerator(seed: 5)
        XCTAssertEqual(AttackGoal.randomTargets(labels: labels, classCount: 4, generator: &again), targets)
    }

    func testTargetedRunCountsSuccessAsReachingTheTarget() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 30)
        let model = Fixtures.trainedClassifier
        let targets = labels.map { ($0 + 1) % Fixtures.classCount }
        let pgd = try ProjectedGradientDescent(norm: .lInfinity, epsilon: 0.3, stepSize: 0.05, steps: 20)
        let set = AttackRunner.run(
            pgd, images: images, labels: labels, attackLabels: labels, targets: targets, model: model,
            detector: nil, countDetector: false, batchSize: 7, seed: 1)
        XCTAssertEqual(set.targets, targets)
        XCTAssertEqual(set.success, zip(set.predictedAdversarial, targets).map { $0 == $1 }, "success = target reached")
        XCTAssertGreaterThan(set.successRate, 0.5, "targeted PGD at eps 0.3 should reach most targets on this model")
        let untargeted = AttackRunner.run(
            pgd, images: images, labels: labels, attackLabels: labels, model: model,
            detector: nil, countDetector: false, batchSize: 7, seed: 1)
        XCTAssertNil(untargeted.targets)
        XCTAssertEqual(untargeted.success, zip(untargeted.predictedAdversarial, labels).map { $0 != $1 })
    }

    func testTargetsRoundTripThroughTheSetFileAndBadTargetsAreRefused() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 6)
        let targets = labels.map { ($0 + 2) % Fixtures.classCount }
        let set = AdversarialSet(
            clean: images, adversarial: images, labels: labels, predictedClean: labels,
            predictedAdversarial: labels, success: labels.map { _ in false }, targets: targets)
        let read = try AdversarialSet(archive: set.archive(), file: "set.safetensors")
        XCTAssertEqual(read.targets, targets)
        XCTAssertNil(
            try AdversarialSet(
                archive: AdversarialSet(
                    clean: images, adversarial: images, labels: labels,
                    predictedClean: labels, predictedAdversarial: labels,
                    success: labels.map { _ in false }
                ).archive(),
                file: "untargeted.safetensors"
            ).targets)

        var short = set.archive()
        short.tensors["target"] = .int64(shape: [5], values: targets.prefix(5).map(Int64.init))
        XCTAssertThrowsError(try AdversarialSet(archive: short, file: "short.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("'target' has 5 entries for 6 images"), "\(error)")
        }
        var negative = set.archive()
        negative.tensors["target"] = .int64(shape: [6], values: [0, 1, -1, 2, 3, 0])
        XCTAssertThrowsError(try AdversarialSet(archive: negative, file: "negative.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("'target' holds a class outside"), "\(error)")
        }
    }
}
