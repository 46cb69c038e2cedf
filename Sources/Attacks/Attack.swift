import Autodiff
import Tensors

// The contracts every attack shares. Images are `[N, C, H, W]` in [0, 1]; every
// attack is batched (one forward and one backward pass per step for the whole
// batch) and returns images that stay in [0, 1].

/// A model an attack can differentiate through: images `[N, C, H, W]` in [0, 1]
/// to logits `[N, K]`. The closure receives a variable on the attack's tape.
public struct DifferentiableClassifier {
    /// Maps images to logits; must record on the input's tape.
    public let logits: (Variable) -> Variable

    /// Wraps a closure from images to logits (e.g. `{ network($0) }`).
    public init(logits: @escaping (Variable) -> Variable) { self.logits = logits }

    /// Logits `[N, K]` of `images`, computed without a tape.
    public func logits(of images: Tensor) -> Tensor { logits(Variable(images)).value }

    /// The predicted class (arg-max logit) of every image.
    public func predictions(_ images: Tensor) -> [Int] { logits(of: images).argmaxRows() }
}

/// A detector an adaptive attack can differentiate through: an anomaly score per
/// image (higher = more suspicious) and the threshold above which an image is
/// flagged. For DAFAR the score is `||delta - C(delta)||_2` with
/// `delta = x - D(E(x))`, so gradients flow through E, D and C.
public struct DifferentiableDetector {
    /// Maps images `[N, C, H, W]` to anomaly scores `[N]`; must record on the input's tape.
    public let score: (Variable) -> Variable
    /// Images with `score > threshold` are flagged as adversarial.
    public let threshold: Float

    /// Wraps a score closure and its threshold.
    public init(threshold: Float, score: @escaping (Variable) -> Variable) {
        self.threshold = threshold
        self.score = score
    }

    /// Anomaly scores of `images`, computed without a tape.
    public func scores(_ images: Tensor) -> [Float] { score(Variable(images)).value.storage }

    /// Whether each image is flagged (`score > threshold`).
    public func flags(_ images: Tensor) -> [Bool] { scores(images).map { $0 > threshold } }
}

/// What an attack aims for.
public enum AttackGoal: Equatable {
    /// Any class but the true label.
    case untargeted
    /// The given class for each image.
    case targeted([Int])

    /// True for `.targeted`.
    public var isTargeted: Bool {
        if case .targeted = self { return true }
        return false
    }

    /// A target class `!= label` for each image, uniform over the other `classCount - 1` classes
    /// (cleverhans' `random_targets`), drawn from `generator`.
    public static func randomTargets(labels: [Int], classCount: Int, generator: inout SeededGenerator) -> [Int] {
        precondition(classCount >= 2, "random targets need at least 2 classes, got \(classCount)")
        return labels.map { label in
            let draw = Int(generator.next() % UInt64(classCount - 1))
            return draw >= label ? draw + 1 : draw
        }
    }

    /// The class each image's loss refers to: the true label (moved away from) or
    /// the target (moved towards). Checks the counts and ranges.
    func referenceClasses(labels: [Int], count: Int, classCount: Int) -> [Int] {
        precondition(labels.count == count, "attack: \(labels.count) labels for \(count) images")
        let classes: [Int]
        switch self {
        case .untargeted: classes = labels
        case .targeted(let targets):
            precondition(targets.count == count, "attack: \(targets.count) targets for \(count) images")
            classes = targets
        }
        precondition(
            classes.allSatisfy { (0..<classCount).contains($0) },
            "attack: a label or target is outside 0..<\(classCount)")
        return classes
    }

    /// Whether a predicted class counts as a success for an image.
    func isSuccess(predicted: Int, label: Int, reference: Int) -> Bool {
        isTargeted ? predicted == reference : predicted != label
    }
}

/// An adversarial attack: perturbs a batch of images so that a classifier errs.
public protocol Attack {
    /// Short name for file metadata and reports (`"FGSM"`, `"PGD-Linf"`, `"CW-L2"`).
    var name: String { get }
    /// Every hyper-parameter, as text, for file metadata.
    var settings: [String: String] { get }
    /// Adversarial versions of `images` `[N, C, H, W]` in [0, 1].
    ///
    /// - Parameters:
    ///   - labels: the true class of each image (pass the model's predictions
    ///     instead to avoid label leaking, as cleverhans does when none are given).
    ///   - goal: untargeted (leave the label) or targeted (reach the given classes).
    ///   - randomness: the source of every random choice (random starts, JSMA's
    ///     random targets), one stream per image: an image's draws depend on the run's
    ///     seed and its index in the run only, never on the rest of its batch.
    func perturb(
        _ images: Tensor, labels: [Int], goal: AttackGoal, model: DifferentiableClassifier,
        randomness: ImageRandomness
    ) -> Tensor
}

extension Attack {
    /// Attacks a batch on its own: the streams of a run whose seed is the next draw of `generator`
    /// and whose first image is `images[0]`.
    public func perturb(
        _ images: Tensor, labels: [Int], goal: AttackGoal, model: DifferentiableClassifier,
        generator: inout SeededGenerator
    ) -> Tensor {
        perturb(images, labels: labels, goal: goal, model: model, randomness: ImageRandomness(seed: generator.next()))
    }

    /// Attacks with the model's own predictions as labels (what cleverhans does when
    /// no labels are given; avoids label leaking).
    public func perturb(
        _ images: Tensor, goal: AttackGoal = .untargeted, model: DifferentiableClassifier,
        generator: inout SeededGenerator
    ) -> Tensor {
        let labels = images.batchSize > 0 ? model.predictions(images) : []
        return perturb(images, labels: labels, goal: goal, model: model, generator: &generator)
    }
}

/// A hyper-parameter out of range, with a sentence a user understands.
public struct AttackConfigurationError: Error, CustomStringConvertible, Equatable {
    /// What is wrong, as a sentence.
    public let description: String
    /// Creates the error with its message.
    public init(_ description: String) { self.description = description }
}

/// The distance an attack's perturbation is measured and bounded in.
public enum PerturbationNorm: String, Equatable, Sendable {
    /// `max_i |delta_i|`; steps follow `sign(gradient)`.
    case lInfinity = "linf"
    /// `sqrt(sum_i delta_i^2)`; steps follow `gradient / ||gradient||_2`.
    case l2 = "l2"
}
