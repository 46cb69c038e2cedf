import Autodiff
import NeuralNetworks
import Tensors
import XCTest
@testable import Attacks

/// FGSM, BIM and PGD: exact steps, budgets, seeds, restarts and hyper-parameter checks.
final class GradientAttackTests: XCTestCase {
    /// A random 64-4 linear model `Z = W x + b` (untrained) and 6 images in [0, 0.6].
    func linearSetup() -> (layer: Dense, images: Tensor, labels: [Int]) {
        var generator = SeededGenerator(seed: 3)
        let layer = Dense(inputSize: 64, outputSize: 4, using: &generator)
        let images = Tensor.uniform([6, 1, 8, 8], low: 0, high: 0.6, using: &generator)
        return (layer, images, [0, 1, 2, 3, 0, 1])
    }

    /// `d CE(W x + b, c) / d x = W^T (softmax(W x + b) - e_c)`, by hand.
    func handGradient(layer: Dense, image: ArraySlice<Float>, target: Int) -> [Float] {
        let w = layer.weight.value.storage, b = layer.bias.value.storage
        let x = Array(image)
        let z = (0..<4).map { k in b[k] + (0..<64).reduce(Float(0)) { $0 + w[k * 64 + $1] * x[$1] } }
        let m = z.max()!
        let e = z.map { expf($0 - m) }
        let p = e.map { $0 / e.reduce(0, +) }
        return (0..<64).map { j in (0..<4).reduce(Float(0)) { $0 + w[$1 * 64 + j] * (p[$1] - ($1 == target ? 1 : 0)) } }
    }

    func testFGSMEqualsEpsilonTimesSignOfHandComputedGradient() throws {
        let (layer, images, labels) = linearSetup()
        let model = Fixtures.classifier(layer)
        var generator = SeededGenerator(seed: 0)
        let targets = [1, 2, 3, 0, 2, 3]
        for goal in [AttackGoal.untargeted, .targeted(targets)] {
            let adversarial = try FastGradientMethod(epsilon: 0.3)
                .perturb(images, labels: labels, goal: goal, model: model, generator: &generator)
            for i in 0..<6 {
                let target = goal.isTargeted ? targets[i] : labels[i]
                let g = handGradient(layer: layer, image: images.storage[(i * 64)..<((i + 1) * 64)], target: target)
                for j in 0..<64 {
                    let direction: Float = (g[j] > 0 ? 1 : -1) * (goal.isTargeted ? -1 : 1)
                    let expected = min(max(images.storage[i * 64 + j] + 0.3 * direction, 0), 1)
                    XCTAssertEqual(
                        adversarial.storage[i * 64 + j], expected, accuracy: 1e-6,
                        "FGSM pixel \(j) of image \(i) (\(goal)) is not clip(x + eps sign(g))")
                }
            }
        }
    }

    func testFGML2StepsAlongTheNormalisedGradient() throws {
        let (layer, images, labels) = linearSetup()
        var generator = SeededGenerator(seed: 0)
        let adversarial = try FastGradientMethod(norm: .l2, epsilon: 0.5)
            .perturb(images, labels: labels, goal: .untargeted, model: Fixtures.classifier(layer), generator: &generator)
        for i in 0..<6 {
            let g = handGradient(layer: layer, image: images.storage[(i * 64)..<((i + 1) * 64)], target: labels[i])
            let norm = max(1e-12, g.reduce(0) { $0 + $1 * $1 }).squareRoot()
            for j in 0..<64 {
                let expected = min(max(images.storage[i * 64 + j] + 0.5 * g[j] / norm, 0), 1)
                XCTAssertEqual(
                    adversarial.storage[i * 64 + j], expected, accuracy: 1e-5,
                    "FGM-L2 pixel \(j) of image \(i) is not clip(x + eps g / ||g||)")
            }
        }
    }

    func testPGDStaysInTheEpsilonBallAndTheImageRange() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 24)
        let model = Fixtures.trainedClassifier
        var generator = SeededGenerator(seed: 5)
        let attacks = [
            try ProjectedGradientDescent.lInfinity(epsilon: 0.1, stepSize: 0.04, steps: 10, restarts: 2),
            try ProjectedGradientDescent.l2(epsilon: 0.5, stepSize: 0.2, steps: 10, restarts: 2)
        ]
        for attack in attacks {
            let adversarial = attack.perturb(images, labels: labels, goal: .untargeted, model: model, generator: &generator)
            XCTAssertEqual(adversarial.shape, images.shape)
            XCTAssertTrue(adversarial.storage.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(attack.name) left [0, 1]")
            let distances = attack.norm.norms(adversarial - images)
            XCTAssertLessThanOrEqual(
                distances.max()!, attack.epsilon * (1 + 1e-5) + 1e-6,
                "\(attack.name) left the eps ball")
            XCTAssertGreaterThan(distances.max()!, attack.epsilon * 0.9, "\(attack.name) barely moved")
        }
    }

    func testMorePGDStepsNeverLowerSuccessOnAFixedSeed() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 40)
        let model = Fixtures.trainedClassifier
        var rates: [Float] = []
        for steps in [1, 2, 4, 8, 16] {
            var generator = SeededGenerator(seed: 21)
            let attack = try ProjectedGradientDescent.lInfinity(epsilon: 0.15, stepSize: 0.04, steps: steps)
            let adversarial = attack.perturb(images, labels: labels, goal: .untargeted, model: model, generator: &generator)
            rates.append(
                AttackOutcome(
                    original: images, adversarial: adversarial, labels: labels, goal: .untargeted,
                    classifier: model
                ).successRate)
        }
        XCTAssertEqual(rates, rates.sorted(), "success rate fell as PGD took more steps: \(rates)")
        XCTAssertGreaterThan(rates.last!, rates.first! + 0.3, "more steps should help on this model: \(rates)")
    }

    func testRestartsKeepEverySuccessOfTheFirstRun() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 40)
        let model = Fixtures.trainedClassifier
        func successes(restarts: Int) throws -> [Bool] {
            var generator = SeededGenerator(seed: 4)
            let attack = try ProjectedGradientDescent.lInfinity(epsilon: 0.12, stepSize: 0.03, steps: 8, restarts: restarts)
            let adversarial = attack.perturb(images, labels: labels, goal: .untargeted, model: model, generator: &generator)
            return AttackOutcome(
                original: images, adversarial: adversarial, labels: labels, goal: .untargeted,
                classifier: model
            ).success
        }
        let once = try successes(restarts: 1), thrice = try successes(restarts: 3)
        XCTAssertGreaterThan(once.filter { $0 }.count, 0, "the budget should give some successes")
        for i in once.indices where once[i] { XCTAssertTrue(thrice[i], "restarts lost the success on image \(i)") }
        XCTAssertGreaterThanOrEqual(thrice.filter { $0 }.count, once.filter { $0 }.count)
    }

    func testRandomStartIsReproducibleWithTheSeed() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 8)
        let model = Fixtures.trainedClassifier
        let attack = try ProjectedGradientDescent.lInfinity(epsilon: 0.1, stepSize: 0.02, steps: 3)
        func run(seed: UInt64) -> Tensor {
            var generator = SeededGenerator(seed: seed)
            return attack.perturb(images, labels: labels, goal: .untargeted, model: model, generator: &generator)
        }
        XCTAssertEqual(run(seed: 1), run(seed: 1), "the same seed must give the same adversarial images")
        XCTAssertNotEqual(run(seed: 1), run(seed: 2), "another seed must give another random start")

        var generator = SeededGenerator(seed: 8)
        for norm in [PerturbationNorm.lInfinity, .l2] {
            let start = norm.randomPoint(shape: [200, 1, 8, 8], radius: 0.5, using: &generator)
            let norms = norm.norms(start)
            XCTAssertLessThanOrEqual(norms.max()!, 0.5 * (1 + 1e-5), "\(norm) random start outside the ball")
            XCTAssertGreaterThan(norms.min()!, 0.4, "\(norm) random start not spread to the ball's edge")
        }
    }

    func testBIMIsDeterministicPGDWithoutRandomStart() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 8)
        let model = Fixtures.trainedClassifier
        var first = SeededGenerator(seed: 1), second = SeededGenerator(seed: 2)
        let bim = try BasicIterativeMethod(epsilon: 0.1, stepSize: 0.02, steps: 5)
        XCTAssertEqual(
            bim.perturb(images, labels: labels, goal: .untargeted, model: model, generator: &first),
            bim.perturb(images, labels: labels, goal: .untargeted, model: model, generator: &second))
        XCTAssertEqual(bim.settings["random_start"], "false")
    }

    func testTargetedPGDReachesTheTargets() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 20)
        let model = Fixtures.trainedClassifier
        let targets = labels.map { ($0 + 2) % Fixtures.classCount }
        var generator = SeededGenerator(seed: 6)
        let adversarial = try ProjectedGradientDescent.lInfinity(epsilon: 0.3, stepSize: 0.05, steps: 20)
            .perturb(images, labels: labels, goal: .targeted(targets), model: model, generator: &generator)
        let outcome = AttackOutcome(
            original: images, adversarial: adversarial, labels: labels, goal: .targeted(targets),
            classifier: model)
        XCTAssertGreaterThanOrEqual(outcome.successRate, 0.95, "targeted PGD should reach the targets")
    }

    func testWithoutLabelsTheModelsPredictionsAreUsed() throws {
        let (layer, images, _) = linearSetup()
        let model = Fixtures.classifier(layer)
        let fgsm = try FastGradientMethod(epsilon: 0.1)
        var first = SeededGenerator(seed: 0), second = SeededGenerator(seed: 0)
        XCTAssertEqual(
            fgsm.perturb(images, model: model, generator: &first),
            fgsm.perturb(
                images, labels: model.predictions(images), goal: .untargeted, model: model,
                generator: &second))
    }

    /// The fused L-inf step gives the bits of the tensor operations it replaces (sign, scaled add, difference,
    /// clamp to the ball, sum, clamp to [0, 1]), zero gradients and pixels at the range's ends included.
    func testLInfinityAscentStepMatchesTheComposedOperations() {
        var generator = SeededGenerator(seed: 9)
        let images = Tensor.uniform([3, 1, 7, 9], low: 0, high: 1, using: &generator)
        var x = (images + Tensor.uniform(images.shape, low: -0.4, high: 0.4, using: &generator)).clamped(0, 1)
        var gradient = Tensor.uniform(images.shape, low: -1, high: 1, using: &generator)
        for i in stride(from: 0, to: x.count, by: 5) { gradient.storage[i] = 0 }
        for i in stride(from: 1, to: x.count, by: 7) { x.storage[i] = i % 2 == 0 ? 0 : 1 }
        for stepSize: Float in [0.01, 0.1, 1] {
            let direction = PerturbationNorm.lInfinity.steepestAscentDirection(gradient)
            var moved = x
            moved.add(direction, scaledBy: stepSize)
            let expected = (images + PerturbationNorm.lInfinity.project(moved - images, radius: 0.3)).clamped(0, 1)
            let fused = PerturbationNorm.lInfinity.ascentStep(
                from: x, gradient: gradient, images: images, stepSize: stepSize, radius: 0.3)
            XCTAssertEqual(fused.storage.map(\.bitPattern), expected.storage.map(\.bitPattern), "step size \(stepSize)")
        }
    }

    func testInvalidHyperParametersThrowWithAMessage() {
        XCTAssertThrowsError(try ProjectedGradientDescent.lInfinity(epsilon: 0.1, stepSize: 0.2)) { error in
            XCTAssertTrue("\(error)".contains("must not exceed epsilon"), "unhelpful message: \(error)")
        }
        XCTAssertNoThrow(try ProjectedGradientDescent.l2(epsilon: 0.1, stepSize: 0.2))
        XCTAssertThrowsError(try FastGradientMethod(epsilon: 0))
        XCTAssertThrowsError(try ProjectedGradientDescent.lInfinity(steps: 0))
        XCTAssertThrowsError(try ProjectedGradientDescent.lInfinity(restarts: 0))
        XCTAssertThrowsError(try CarliniWagnerL2(learningRate: -1))
        XCTAssertThrowsError(try CarliniWagnerL2(confidence: -1))
        XCTAssertThrowsError(try JacobianSaliencyMapAttack(theta: 0))
        XCTAssertThrowsError(try JacobianSaliencyMapAttack(gamma: 1.5))
        XCTAssertThrowsError(try DeepFool(candidates: 1))
    }

    func testDefaultsMatchCleverhans() throws {
        let fgsm = try FastGradientMethod()
        XCTAssertEqual(fgsm.epsilon, 0.3)
        XCTAssertEqual(fgsm.name, "FGSM")
        let pgd = try ProjectedGradientDescent.lInfinity()
        XCTAssertEqual([pgd.epsilon, pgd.stepSize], [0.3, 0.05])
        XCTAssertEqual(pgd.steps, 10)
        XCTAssertTrue(pgd.randomStart)
        XCTAssertEqual(pgd.settings["norm"], "linf")
    }
}
