import Autodiff
import Tensors

/// Iterated, projected steepest ascent on a per-sample objective: the loop FGSM,
/// BIM, PGD and the adaptive PGD attack share (cleverhans v3 semantics).
///
/// For each restart: `x_0 = clip(x + eta, 0, 1)` with `eta` uniform in the eps
/// ball (random start) or 0; then `steps` times
/// `x_{k+1} = clip(x + P_eps(x_k + a * d(grad) - x), 0, 1)`, with `d` the
/// steepest-ascent direction of the norm (`sign` for L-inf, `g / ||g||_2` for L2)
/// and `P_eps` the projection onto the eps ball. With several restarts each sample
/// keeps the best result: a successful one if any, else the highest objective.
struct ProjectedAscent {
    var norm: PerturbationNorm
    var epsilon: Float
    var stepSize: Float
    var steps: Int
    var randomStart: Bool
    var restarts: Int

    /// Validates the hyper-parameters (the public attacks call this from `init`).
    func validate(attack: String) throws {
        guard epsilon > 0, epsilon.isFinite else {
            throw AttackConfigurationError("\(attack): epsilon must be a positive number, got \(epsilon)")
        }
        guard stepSize > 0, stepSize.isFinite else {
            throw AttackConfigurationError("\(attack): step size must be a positive number, got \(stepSize)")
        }
        if norm == .lInfinity && stepSize > epsilon {
            throw AttackConfigurationError(
                "\(attack): the step size (\(stepSize)) must not exceed epsilon (\(epsilon)) for the L-inf norm")
        }
        guard steps >= 1 else { throw AttackConfigurationError("\(attack): steps must be at least 1, got \(steps)") }
        guard restarts >= 1 else { throw AttackConfigurationError("\(attack): restarts must be at least 1, got \(restarts)") }
    }

    var settings: [String: String] {
        [
            "norm": norm.rawValue, "epsilon": describe(epsilon), "step_size": describe(stepSize), "steps": "\(steps)",
            "random_start": "\(randomStart)", "restarts": "\(restarts)"
        ]
    }

    /// Runs the attack.
    /// - Parameters:
    ///   - objective: the per-sample objective to maximise, recorded on the input's tape: `objective(x, rows)`
    ///     is `[rows.count]` for the images `rows` of the batch, `x` their slice (the steps run on slices of
    ///     `AttackBatching.imagesPerPass` images, each slice's steps before the next's).
    ///   - isSuccessful: whether each sample of a candidate batch is a success
    ///     (only consulted to choose between restarts).
    func run(
        _ images: Tensor, randomness: ImageRandomness, objective: (Variable, Range<Int>) -> Variable,
        isSuccessful: (Tensor) -> [Bool]
    ) -> Tensor {
        precondition(images.rank >= 2, "attack: images need a batch axis, got shape \(images.shape)")
        var best = images
        var bestSuccess = [Bool](repeating: false, count: images.batchSize)
        var bestObjective = [Float](repeating: -.infinity, count: images.batchSize)
        for restart in 0..<restarts {
            var x = images
            if randomStart {
                x = (images + norm.randomPoint(shape: images.shape, radius: epsilon, randomness: randomness, stream: UInt64(restart)))
                    .clamped(0, 1)
            }
            // every step of one slice of images, then the next (see `AttackBatching`)
            x = x.mapBatches(AttackBatching.slices(x.batchSize)) { start, rows in
                let origin = rows.count == images.batchSize ? images : images.slice(rows)
                var x = start
                for _ in 0..<steps {
                    x = norm.ascentStep(
                        from: x, gradient: objectiveGradient(at: x, rows: rows, objective), images: origin, stepSize: stepSize,
                        radius: epsilon)
                }
                return x
            }
            if restarts == 1 { return x }
            let values = objective(Variable(x), 0..<x.batchSize).value.storage
            let success = isSuccessful(x)
            let better = (0..<x.batchSize).map { i in
                restart == 0 || (success[i] && !bestSuccess[i])
                    || (success[i] == bestSuccess[i] && values[i] > bestObjective[i])
            }
            PerSample.copy(x, into: &best, where: better)
            for i in better.indices where better[i] { (bestSuccess[i], bestObjective[i]) = (success[i], values[i]) }
        }
        return best
    }
}

extension ProjectedAscent {
    /// The ascent on the cross-entropy of `model`'s logits (away from the true classes, or toward the
    /// targets of a targeted `goal`), stopping images as they succeed: FGSM, BIM and PGD.
    func runOnCrossEntropy(
        _ images: Tensor, labels: [Int], goal: AttackGoal, model: DifferentiableClassifier,
        randomness: ImageRandomness
    ) -> Tensor {
        guard images.batchSize > 0 else { return images }
        let classes = goal.referenceClasses(labels: labels, count: images.batchSize, classCount: model.classCount(images))
        return run(
            images, randomness: randomness,
            objective: { x, rows in
                ClassificationLoss.crossEntropy.objective(
                    logits: model.logits(x), classes: Array(classes[rows]), targeted: goal.isTargeted)
            }, isSuccessful: { model.successes($0, labels: labels, goal: goal) })
    }
}

extension DifferentiableClassifier {
    /// Whether each image of `images` is a success for `goal` (prediction differs
    /// from the label, or equals the target).
    func successes(_ images: Tensor, labels: [Int], goal: AttackGoal) -> [Bool] {
        let predicted = predictions(images)
        switch goal {
        case .untargeted: return zip(predicted, labels).map { $0 != $1 }
        case .targeted(let targets): return zip(predicted, targets).map { $0 == $1 }
        }
    }

    /// The number of classes, from one forward pass of the first image.
    func classCount(_ images: Tensor) -> Int { logits(of: images.slice(0..<1)).shape[1] }
}
