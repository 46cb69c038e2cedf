import Autodiff
import NeuralNetworks
import Tensors
import XCTest
@testable import Attacks

/// DeepFool: exact on a linear model, crossing the boundary on a trained one.
final class DeepFoolTests: XCTestCase {
    func testOneStepReachesTheNearestLinearBoundaryWithOvershoot() throws {
        var generator = SeededGenerator(seed: 31)
        let layer = Dense(inputSize: 64, outputSize: 4, using: &generator)
        let images = Tensor.uniform([5, 1, 8, 8], low: 0.45, high: 0.55, using: &generator)
        let model = Fixtures.classifier(layer)
        let labels = model.predictions(images)
        let adversarial = try DeepFool().perturb(
            images, labels: labels, goal: .untargeted, model: model,
            generator: &generator)
        let w = layer.weight.value.storage
        let z = model.logits(of: images).storage
        let distances = (adversarial - images).l2NormsPerSample()
        let predicted = model.predictions(adversarial)
        for i in 0..<5 {
            // Distance to the nearest boundary: min_k (|Z_k - Z_y| + 1e-5) / ||W_k - W_y||.
            let nearest = (0..<4).filter { $0 != labels[i] }.map { k -> Float in
                let norm = (0..<64).reduce(Float(0)) {
                    let d = w[k * 64 + $1] - w[labels[i] * 64 + $1]; return $0 + d * d
                }
                return (Swift.abs(z[i * 4 + k] - z[i * 4 + labels[i]]) + 1e-5) / norm.squareRoot()
            }.min()!
            XCTAssertEqual(distances[i], 1.02 * nearest, accuracy: 1e-3 * nearest, "image \(i): not the nearest boundary")
            XCTAssertNotEqual(predicted[i], labels[i], "image \(i) did not cross")
        }
    }

    func testCrossesTheBoundaryOfATrainedNetwork() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 40)
        let model = Fixtures.trainedClassifier
        var generator = SeededGenerator(seed: 0)
        let deepFool = try DeepFool()
        XCTAssertEqual(deepFool.settings, ["candidates": "10", "overshoot": "0.02", "max_iterations": "50"])
        let adversarial = deepFool.perturb(images, labels: labels, goal: .untargeted, model: model, generator: &generator)
        XCTAssertTrue(adversarial.storage.allSatisfy { $0 >= 0 && $0 <= 1 })
        let outcome = AttackOutcome(
            original: images, adversarial: adversarial, labels: labels, goal: .untargeted,
            classifier: model)
        XCTAssertGreaterThanOrEqual(outcome.successRate, 0.95, "DeepFool should cross the decision boundary")
        XCTAssertLessThan(try XCTUnwrap(outcome.meanL2OfSuccessful), 1.5, "DeepFool perturbations should be small")
    }

    func testTargetedGoalReachesTheTarget() throws {
        let (images, labels) = Fixtures.correctlyClassified(count: 12)
        let model = Fixtures.trainedClassifier
        let targets = labels.map { ($0 + 2) % 4 }
        var generator = SeededGenerator(seed: 0)
        let adversarial = try DeepFool().perturb(
            images, labels: labels, goal: .targeted(targets), model: model,
            generator: &generator)
        let outcome = AttackOutcome(
            original: images, adversarial: adversarial, labels: labels, goal: .targeted(targets),
            classifier: model)
        XCTAssertGreaterThanOrEqual(outcome.successRate, 0.9)
    }
}
