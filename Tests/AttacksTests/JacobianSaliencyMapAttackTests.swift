import Autodiff
import NeuralNetworks
import Tensors
import XCTest
@testable import Attacks

/// JSMA: the L0 budget, targets, the pair search, and the Jacobian it reads.
final class JacobianSaliencyMapAttackTests: XCTestCase {
    func changedPixels(_ a: Tensor, _ b: Tensor) -> [[Int]] {
        (0..<a.batchSize).map { i in
            (0..<a.itemCount).filter { a.storage[i * a.itemCount + $0] != b.storage[i * a.itemCount + $0] }
        }
    }

    /// The admissible pair maximising `-(alpha_p + alpha_q)(beta_p + beta_q)`, by enumerating all pairs.
    func bruteForcePair(alpha: [Float], beta: [Float], domain: [Bool], increase: Bool) -> [Int]? {
        let sign: Float = increase ? 1 : -1
        var best: (score: Float, pair: [Int])? = nil
        for p in alpha.indices where domain[p] {
            for q in alpha.indices where q != p && domain[q] {
                let a = alpha[p] + alpha[q], b = beta[p] + beta[q]
                guard sign * a > 0, sign * b < 0 else { continue }
                if best == nil || -a * b > best!.score { best = (-a * b, [min(p, q), max(p, q)]) }
            }
        }
        return best?.pair
    }

    func testTargetedAttackReachesTheTargetChangingAtMostGammaOfThePixels() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 40)
        let model = Fixtures.trainedClassifier
        let targets = labels.map { ($0 + 1) % Fixtures.classCount }
        let jsma = try JacobianSaliencyMapAttack()
        XCTAssertEqual([jsma.theta, jsma.gamma], [1, 0.1])
        XCTAssertEqual(jsma.maximumIterations(features: 64), 3)
        var generator = SeededGenerator(seed: 1)
        let adversarial = jsma.perturb(images, labels: labels, goal: .targeted(targets), model: model, generator: &generator)
        for (i, changed) in changedPixels(adversarial, images).enumerated() {
            XCTAssertLessThanOrEqual(Float(changed.count), 0.1 * 64, "image \(i) changed \(changed.count) pixels")
            XCTAssertEqual(changed.count % 2, 0, "pixels change in pairs")
            for j in changed { XCTAssertEqual(adversarial.storage[i * 64 + j], 1, "increase mode with theta 1 saturates") }
        }
        let outcome = AttackOutcome(
            original: images, adversarial: adversarial, labels: labels, goal: .targeted(targets),
            classifier: model)
        XCTAssertGreaterThanOrEqual(outcome.successRate, 0.95, "JSMA should reach the targets on this model")
    }

    func testUntargetedAttackDrawsReproducibleTargetsOtherThanTheLabel() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 24)
        let model = Fixtures.trainedClassifier
        let jsma = try JacobianSaliencyMapAttack(gamma: 0.2)
        func run(seed: UInt64) -> Tensor {
            var generator = SeededGenerator(seed: seed)
            return jsma.perturb(images, labels: labels, goal: .untargeted, model: model, generator: &generator)
        }
        let adversarial = run(seed: 3)
        XCTAssertEqual(adversarial, run(seed: 3), "the same seed must draw the same targets")
        let outcome = AttackOutcome(
            original: images, adversarial: adversarial, labels: labels, goal: .untargeted,
            classifier: model)
        XCTAssertGreaterThanOrEqual(outcome.successRate, 0.9, "untargeted JSMA should leave the label")
        XCTAssertGreaterThan(Set(outcome.predictedAdversarial).count, 2, "random targets should vary")
    }

    func testDecreaseModeLowersPixelsToZero() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 8)
        var generator = SeededGenerator(seed: 1)
        let adversarial = try JacobianSaliencyMapAttack(theta: -1, gamma: 0.25)
            .perturb(
                images, labels: labels, goal: .targeted(labels.map { ($0 + 1) % 4 }), model: Fixtures.trainedClassifier,
                generator: &generator)
        let changed = changedPixels(adversarial, images)
        XCTAssertGreaterThan(changed.map(\.count).reduce(0, +), 0, "decrease mode changed nothing")
        for (i, pixels) in changed.enumerated() {
            XCTAssertLessThanOrEqual(pixels.count, 16)
            for j in pixels { XCTAssertEqual(adversarial.storage[i * 64 + j], 0) }
        }
    }

    func testPairSearchMatchesBruteForce() {
        var generator = SeededGenerator(seed: 17)
        for trial in 0..<20 {
            let d = 30
            let alpha = (0..<d).map { _ in generator.nextNormal() }
            let total = (0..<d).map { _ in generator.nextNormal() }
            let domain = (0..<d).map { _ in generator.nextUniform() < 0.7 }
            for increase in [true, false] {
                let best = bruteForcePair(
                    alpha: alpha, beta: zip(total, alpha).map { $0 - $1 }, domain: domain,
                    increase: increase)
                let found = JacobianSaliencyMapAttack.bestPair(
                    alpha: alpha[...], total: total[...], domain: domain[...],
                    increase: increase)
                XCTAssertEqual(found.map { [$0.0, $0.1] }, best, "trial \(trial), increase \(increase)")
            }
        }
    }

    func testFirstPairUsesTheLogitJacobian() throws {
        // Linear model: dZ_k/dx_p = W[k, p], so alpha and beta are known exactly.
        var generator = SeededGenerator(seed: 9)
        let layer = Dense(inputSize: 64, outputSize: 4, using: &generator)
        let images = Tensor.uniform([3, 1, 8, 8], low: 0, high: 0.9, using: &generator)
        let model = Fixtures.classifier(layer)
        let labels = model.predictions(images)
        let targets = labels.map { ($0 + 1) % 4 }
        let jsma = try JacobianSaliencyMapAttack(gamma: 2.0 / 64)  // exactly one iteration
        let adversarial = jsma.perturb(images, labels: labels, goal: .targeted(targets), model: model, generator: &generator)
        let w = layer.weight.value.storage
        for i in 0..<3 {
            let alpha = (0..<64).map { w[targets[i] * 64 + $0] }
            let beta = (0..<64).map { p in (0..<4).filter { $0 != targets[i] }.reduce(Float(0)) { $0 + w[$1 * 64 + p] } }
            let domain = (0..<64).map { images.storage[i * 64 + $0] < 1 }
            let expected = try XCTUnwrap(bruteForcePair(alpha: alpha, beta: beta, domain: domain, increase: true))
            XCTAssertEqual(changedPixels(adversarial, images)[i], expected, "image \(i)")
        }
    }
}
