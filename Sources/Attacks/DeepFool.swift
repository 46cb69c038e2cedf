import Autodiff
import Tensors

/// DeepFool (Moosavi-Dezfooli et al. 2016; cleverhans v3 semantics), L2.
///
/// While an image is still classified as its label `y` (and for at most
/// `maxIterations` iterations), linearise the classifier at the current point
/// `x_k = clip(x + r, 0, 1)`: among the candidate classes `k` (the top
/// `candidates` logits other than `y`), with `w_k = grad Z_k - grad Z_y` and
/// `f_k = Z_k - Z_y`, take the class with the smallest distance to its linearised
/// boundary `(|f_k| + 1e-5) / ||w_k||_2` and add the step that reaches it,
/// `r += (|f_k| + 1e-5) / ||w_k||_2 * w_k / ||w_k||_2`. The result is
/// `clip(x + (1 + overshoot) * r, 0, 1)`.
///
/// The reference class is the given label (cleverhans uses the prediction on the
/// clean image; the two agree on correctly classified images, and misclassified
/// ones are left unchanged apart from the overshoot of a zero step). A targeted
/// goal uses the single candidate `t` and steps from the current prediction until
/// `t` is reached. Defaults: 10 candidates, overshoot 0.02, 50 iterations.
/// Gradients: `candidates` backward passes per iteration for the whole batch,
/// one per candidate rank, each seeded one-hot at that rank's class per image.
public struct DeepFool: Attack {
    /// Number of classes considered, counting the reference class (top logits).
    public let candidates: Int
    /// The factor the accumulated perturbation is enlarged by at the end, minus 1.
    public let overshoot: Float
    /// Iteration limit.
    public let maxIterations: Int

    /// Creates the attack; throws when a hyper-parameter is out of range.
    public init(candidates: Int = 10, overshoot: Float = 0.02, maxIterations: Int = 50) throws {
        guard candidates >= 2 else { throw AttackConfigurationError("DeepFool: candidates must be at least 2, got \(candidates)") }
        guard overshoot >= 0, overshoot.isFinite else {
            throw AttackConfigurationError("DeepFool: overshoot must be >= 0, got \(overshoot)")
        }
        guard maxIterations >= 1 else {
            throw AttackConfigurationError("DeepFool: max iterations must be at least 1, got \(maxIterations)")
        }
        (self.candidates, self.overshoot, self.maxIterations) = (candidates, overshoot, maxIterations)
    }

    public var name: String { "DeepFool" }

    public var settings: [String: String] {
        ["candidates": "\(candidates)", "overshoot": describe(overshoot), "max_iterations": "\(maxIterations)"]
    }

    public func perturb(
        _ images: Tensor, labels: [Int], goal: AttackGoal, model: DifferentiableClassifier,
        randomness: ImageRandomness
    ) -> Tensor {
        let n = images.batchSize, features = images.itemCount
        guard n > 0 else { return images }
        let classCount = model.classCount(images)
        let classes = goal.referenceClasses(labels: labels, count: n, classCount: classCount)
        var total = Tensor.zeros(images.shape)  // r     [N, C, H, W]
        var active = Array(0..<n)
        for _ in 0..<maxIterations {
            if active.isEmpty { break }
            var current = images.gather(active)
            current.add(total.gather(active))
            let tape = Tape(recordsParameters: false)
            let input = tape.watch(current.clamped(0, 1))  // x_k   [m, C, H, W]
            let logits = model.logits(input)  // Z     [m, K]
            let z = logits.value.storage
            let predicted = logits.value.argmaxRows()
            // Keep the images not yet at their goal; choose each one's reference and candidate classes.
            var rows: [Int] = [], reference: [Int] = [], candidateClasses: [[Int]] = []
            for (row, i) in active.enumerated()
            where !goal.isSuccess(
                predicted: predicted[row], label: labels[i],
                reference: classes[i])
            {
                rows.append(row)
                if goal.isTargeted {
                    reference.append(predicted[row])
                    candidateClasses.append([classes[i]])
                } else {
                    reference.append(classes[i])
                    let order = (0..<classCount).filter { $0 != classes[i] }
                        .sorted { z[row * classCount + $0] > z[row * classCount + $1] }
                    candidateClasses.append(Array(order.prefix(min(candidates, classCount) - 1)))
                }
            }
            if rows.isEmpty { break }
            let m = logits.shape[0]
            func gradient(classOf: (Int) -> Int?) -> Tensor {
                var seed = Tensor.zeros(logits.shape)
                for (r, row) in rows.enumerated() { if let k = classOf(r) { seed.storage[row * classCount + k] = 1 } }
                return tape.gradients(of: logits, seed: seed)[input] ?? Tensor.zeros(input.shape)
            }
            let referenceGradient = gradient { reference[$0] }  // grad Z_ref  [m, ...]
            var bestDistance = [Float](repeating: .infinity, count: m)
            var bestDirection = Tensor.zeros(input.shape)  // w of the nearest boundary
            for rank in 0..<(candidateClasses.map(\.count).max() ?? 0) {
                let candidateGradient = gradient { r in rank < candidateClasses[r].count ? candidateClasses[r][rank] : nil }
                for (r, row) in rows.enumerated() where rank < candidateClasses[r].count {
                    let k = candidateClasses[r][rank]
                    let f = z[row * classCount + k] - z[row * classCount + reference[r]]
                    var w = [Float](repeating: 0, count: features), norm: Float = 0
                    for j in 0..<features {
                        w[j] = candidateGradient.storage[row * features + j] - referenceGradient.storage[row * features + j]
                        norm += w[j] * w[j]
                    }
                    let distance = (Swift.abs(f) + 1e-5) / max(norm.squareRoot(), 1e-12)
                    if distance < bestDistance[row] {
                        bestDistance[row] = distance
                        bestDirection.storage.replaceSubrange((row * features)..<((row + 1) * features), with: w)
                    }
                }
            }
            // r_i += d * w / ||w||.
            let norms = bestDirection.l2NormsPerSample()
            for row in rows {
                let i = active[row], scale = bestDistance[row] / max(norms[row], 1e-12)
                for j in 0..<features { total.storage[i * features + j] += scale * bestDirection.storage[row * features + j] }
            }
            active = rows.map { active[$0] }
        }
        var adversarial = images
        adversarial.add(total, scaledBy: 1 + overshoot)
        return adversarial.clamped(0, 1)
    }
}
