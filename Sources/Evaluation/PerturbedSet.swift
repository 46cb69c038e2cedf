import Attacks
import Foundation
import Reporting
import Tensors

/// Test images and perturbed versions of them: the output of an attack, or a
/// noise control that is not an attack.
///
/// Every image falls in one of three groups, by the classifier's predictions:
/// - successful: classified correctly before, wrongly after (detection rates count these);
/// - failed: classified correctly before and after (reported separately);
/// - already wrong: misclassified before any perturbation (left out of both, counted).
public struct PerturbedSet {
    /// What made the perturbation.
    public enum Family: String, Sendable {
        case fgsm, pgd, cw2, jsma, adaptivePGD = "adaptive-pgd", other
        /// `clip(x + eps * s, 0, 1)` with `s` uniformly random in {-1, +1}^d (the control).
        case signNoise = "sign-noise"
        /// `clip(x + eps * N(0, 1), 0, 1)` (Table 2's Gaussian noise).
        case gaussianNoise = "gaussian-noise"
        /// An attack's perturbation with its pixels shuffled (see `NoiseControl.shuffledPerturbation`).
        case shuffledPerturbation = "shuffled-perturbation"

        /// The family of an attack.
        public init(_ kind: AttackKind) {
            switch kind {
            case .fgsm: self = .fgsm
            case .pgd: self = .pgd
            case .cw2: self = .cw2
            case .jsma: self = .jsma
            case .adaptivePGD: self = .adaptivePGD
            default: self = .other
            }
        }

        /// False for the noise controls.
        public var isAttack: Bool { self != .signNoise && self != .gaussianNoise && self != .shuffledPerturbation }
    }

    /// Label for tables and legends (`FGSM eps=0.3`, `sign noise ~CW-L2`).
    public let name: String
    /// Unique identifier (`fgsm-0.3`), also used in file names.
    public let key: String
    /// What made it.
    public let family: Family
    /// The L-inf budget, when there is one.
    public let epsilon: Float?
    /// The adaptive attack's lambda.
    public let lambda: Float?
    /// Clean images `[N, C, H, W]`.
    public let clean: Tensor
    /// Perturbed images, same shape.
    public let perturbed: Tensor
    /// True labels.
    public let labels: [Int]
    /// The classifier's classes for `clean` and `perturbed`.
    public let predictedClean: [Int]
    public let predictedPerturbed: [Int]
    /// True when `clean` are the first N images of the test split (their clean scores are shared).
    public let cleanIsTestPrefix: Bool
    /// `generated` or the file it was read from.
    public let source: String
    /// The attack's settings as recorded (for the report).
    public let settings: [String: String]
    /// Seconds spent making it (0 when read from a file).
    public let seconds: Double

    /// Wraps a set; the arrays must have one entry per image.
    public init(
        name: String, key: String, family: Family, epsilon: Float? = nil, lambda: Float? = nil, clean: Tensor,
        perturbed: Tensor, labels: [Int], predictedClean: [Int], predictedPerturbed: [Int],
        cleanIsTestPrefix: Bool, source: String = "generated", settings: [String: String] = [:], seconds: Double = 0
    ) {
        precondition(clean.shape == perturbed.shape, "perturbed set \(key): clean \(clean.shape) and perturbed \(perturbed.shape) differ")
        let n = clean.batchSize
        precondition(
            labels.count == n && predictedClean.count == n && predictedPerturbed.count == n,
            "perturbed set \(key): \(n) images but \(labels.count) labels, \(predictedClean.count) and \(predictedPerturbed.count) predictions"
        )
        (self.name, self.key, self.family, self.epsilon, self.lambda) = (name, key, family, epsilon, lambda)
        (self.clean, self.perturbed, self.labels) = (clean, perturbed, labels)
        (self.predictedClean, self.predictedPerturbed) = (predictedClean, predictedPerturbed)
        (self.cleanIsTestPrefix, self.source, self.settings, self.seconds) = (cleanIsTestPrefix, source, settings, seconds)
    }

    /// Number of images.
    public var count: Int { labels.count }

    /// Classified correctly before and wrongly after, per image.
    public var successful: [Bool] {
        (0..<count).map { predictedClean[$0] == labels[$0] && predictedPerturbed[$0] != labels[$0] }
    }

    /// Classified correctly before and after, per image.
    public var failed: [Bool] {
        (0..<count).map { predictedClean[$0] == labels[$0] && predictedPerturbed[$0] == labels[$0] }
    }

    /// Misclassified before any perturbation (in neither group).
    public var alreadyWrong: Int { zip(predictedClean, labels).filter { $0 != $1 }.count }

    /// Successful images among the correctly classified ones (the attack success rate).
    public var successRate: Rate {
        Rate(successful.filter { $0 }.count, of: count - alreadyWrong)
    }

    /// `||x' - x||_2` per image.
    public var l2Distances: [Float] { (perturbed - clean).l2NormsPerSample() }

    /// `max |x' - x|` per image.
    public var lInfinityDistances: [Float] { (perturbed - clean).lInfinityNormsPerSample() }

    /// The images whose entry of `mask` is true.
    public func perturbedImages(where mask: [Bool]) -> Tensor {
        perturbed.gather(mask.indices.filter { mask[$0] })
    }
}

/// The noise controls: perturbations of the same size as an attack's that are not attacks.
public enum NoiseControl {
    /// `clip(x + eps_i * s, 0, 1)` with `s` uniformly random in {-1, +1} per pixel, one
    /// `eps_i` per image of `images` `[N, C, H, W]`.
    public static func signNoise(_ images: Tensor, epsilons: [Float], using generator: inout SeededGenerator) -> Tensor {
        precondition(epsilons.count == images.batchSize, "sign noise: \(epsilons.count) sizes for \(images.batchSize) images")
        let item = images.itemCount
        var result = images
        for i in 0..<images.batchSize {
            let eps = epsilons[i]
            for j in (i * item)..<((i + 1) * item) {
                let sign: Float = generator.next() & 1 == 0 ? -1 : 1
                result.storage[j] = min(1, max(0, images.storage[j] + eps * sign))
            }
        }
        return result
    }

    /// `clip(x + P(x' - x), 0, 1)` with `P` a random permutation of the pixels of each
    /// image: the attack's own perturbation values (same L0, L2 and L-inf before clipping)
    /// moved to random places, which keeps the perturbation's size and removes its direction.
    public static func shuffledPerturbation(clean: Tensor, perturbed: Tensor, using generator: inout SeededGenerator) -> Tensor {
        precondition(clean.shape == perturbed.shape, "shuffled perturbation: shapes \(clean.shape) and \(perturbed.shape) differ")
        let item = clean.itemCount
        var result = clean
        for i in 0..<clean.batchSize {
            let base = i * item
            for (j, k) in generator.permutation(item).enumerated() {
                let delta = perturbed.storage[base + k] - clean.storage[base + k]
                result.storage[base + j] = min(1, max(0, clean.storage[base + j] + delta))
            }
        }
        return result
    }

    /// `clip(x + sigma * N(0, 1), 0, 1)`.
    public static func gaussianNoise(_ images: Tensor, standardDeviation sigma: Float, using generator: inout SeededGenerator) -> Tensor {
        (images + Tensor.normal(images.shape, standardDeviation: sigma, using: &generator)).clamped(0, 1)
    }
}

extension PerturbedSet {
    /// Reads a set written by `dafar-attack`, checking that it was made for this model and
    /// dataset from the test split. The attack and its budget come from its metadata.
    init(adversarialSet set: AdversarialSet, file: String, modelHash: String, dataset: String) throws {
        let metadata = set.metadata
        guard let hash = metadata["model_sha256"], hash == modelHash else {
            throw ExperimentError(
                "\(file) was made for another model (model hash \(metadata["model_sha256"]?.prefix(12) ?? "none")..., "
                    + "this model is \(modelHash.prefix(12))...); attack this model with dafar-attack or leave the file out",
                cause: .invalidData)
        }
        if let setDataset = metadata["dataset"], setDataset != dataset {
            throw ExperimentError("\(file) holds \(setDataset) images but the evaluation uses \(dataset)", cause: .invalidData)
        }
        if let split = metadata["split"], split != "test" {
            throw ExperimentError(
                "\(file) attacks the \(split) split; thresholds are fitted on validation images and detection "
                    + "is measured on test images, so give a set made from the test split", cause: .invalidData)
        }
        guard let kindName = metadata["attack_kind"], let kind = AttackKind(rawValue: kindName) else {
            throw ExperimentError(
                "\(file) does not say which attack made it (metadata 'attack_kind' is \(metadata["attack_kind"] ?? "missing"))",
                cause: .invalidData)
        }
        let settings =
            (metadata["attack_settings"].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) } as? [String: String]) ?? [:]
        let epsilon = settings["epsilon"].flatMap(Float.init)
        let lambda = settings["lambda"].flatMap(Float.init)
        let family = Family(kind)
        if family == .fgsm || family == .pgd || family == .adaptivePGD, epsilon == nil {
            throw ExperimentError("\(file): the \(kindName) settings in its metadata have no epsilon", cause: .invalidData)
        }
        if family == .adaptivePGD, lambda == nil {
            throw ExperimentError("\(file): the adaptive attack's settings in its metadata have no lambda", cause: .invalidData)
        }
        let name = PerturbedSet.attackName(family: family, kind: kind, epsilon: epsilon, lambda: lambda)
        self.init(
            name: name, key: PerturbedSet.attackKey(family: family, kind: kind, epsilon: epsilon, lambda: lambda),
            family: family, epsilon: epsilon, lambda: lambda, clean: set.clean, perturbed: set.adversarial,
            labels: set.labels, predictedClean: set.predictedClean, predictedPerturbed: set.predictedAdversarial,
            cleanIsTestPrefix: false, source: file, settings: settings)
    }

    /// `FGSM eps=0.3`, `PGD eps=0.3`, `CW-L2`, `adaptive PGD lambda=1 eps=0.3`.
    static func attackName(family: Family, kind: AttackKind, epsilon: Float?, lambda: Float?) -> String {
        let eps = epsilon.map { " eps=\(format($0))" } ?? ""
        switch family {
        case .fgsm: return "FGSM" + eps
        case .pgd: return "PGD" + eps
        case .cw2: return "CW-L2"
        case .jsma: return "JSMA"
        case .adaptivePGD: return "adaptive PGD lambda=\(format(lambda ?? 0))" + eps
        default: return kind.rawValue + eps
        }
    }

    /// `fgsm-0.3`, `cw2`, `adaptive-pgd-1-0.3`.
    static func attackKey(family: Family, kind: AttackKind, epsilon: Float?, lambda: Float?) -> String {
        switch family {
        case .fgsm, .pgd: return "\(kind.rawValue)-\(format(epsilon ?? 0))"
        case .adaptivePGD: return "adaptive-pgd-\(format(lambda ?? 0))-\(format(epsilon ?? 0))"
        case .cw2, .jsma: return kind.rawValue
        default: return kind.rawValue + (epsilon.map { "-\(format($0))" } ?? "")
        }
    }
}
