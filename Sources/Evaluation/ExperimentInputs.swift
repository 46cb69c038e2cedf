import Attacks
import DAFAR
import Datasets
import Distributed
import Foundation
import Reporting
import Tensors

/// The perturbed test sets the experiments read: adversarial sets given by the user
/// (files written by `dafar-attack`) and, for everything else, sets generated on the
/// first test images. Each set is made once and kept.
///
/// Attacks run sharded over the ranks of `communicator` (`ShardedAttack`) and every rank gets the
/// whole set, so the ranks go on with the same sets as one process would.
public final class ExperimentInputs {
    let model: DAFARModel
    let test: LabeledImages
    let settings: ExperimentSettings
    let log: (String) -> Void
    /// The ranks the attacks are sharded over (one process by default).
    public let communicator: any Communicator
    /// Sets read from files, by key.
    private var provided: [String: PerturbedSet] = [:]
    /// Sets made here, by key.
    private var made: [String: PerturbedSet] = [:]
    /// Keys of provided sets in the order given.
    private var providedOrder: [String] = []

    /// Inputs for `model` on `test` images.
    public init(
        model: DAFARModel, test: LabeledImages, settings: ExperimentSettings, log: @escaping (String) -> Void = { _ in },
        communicator: any Communicator = SingleProcessCommunicator()
    ) {
        self.communicator = communicator
        self.model = model
        self.test = test
        self.settings = settings
        self.log = log
    }

    /// Adds a set written by `dafar-attack`; it replaces the generated set of the same attack
    /// and budget. Throws when it was made for another model, dataset or split, or repeats a set.
    public func addProvided(_ set: AdversarialSet, file: String, dataset: String) throws {
        guard Array(set.clean.shape.dropFirst()) == model.inputShape else {
            throw ExperimentError(
                "\(file) holds \(Array(set.clean.shape.dropFirst())) images but the model reads \(model.inputShape)",
                cause: .invalidData)
        }
        let perturbed = try PerturbedSet(adversarialSet: set, file: file, modelHash: model.modelHash, dataset: dataset)
        if let earlier = provided[perturbed.key] {
            throw ExperimentError("\(file) and \(earlier.source) are both \(perturbed.name); give each attack setting once")
        }
        provided[perturbed.key] = perturbed
        providedOrder.append(perturbed.key)
    }

    /// Every set read from a file, in the order given.
    public var providedSets: [PerturbedSet] { providedOrder.compactMap { provided[$0] } }

    /// The FGSM intensities: the configured sweep plus those of provided FGSM sets, ascending.
    public var fgsmEpsilons: [Float] {
        Array(Set(settings.epsilons + providedSets.filter { $0.family == .fgsm }.compactMap(\.epsilon))).sorted()
    }

    /// Provided attacks that have no slot of their own (BIM, DeepFool, L2 attacks, PGD at another eps...).
    public var extraAttacks: [PerturbedSet] {
        providedSets.filter { set in
            switch set.family {
            case .fgsm, .cw2, .jsma, .adaptivePGD: return false
            case .pgd: return set.epsilon != settings.epsilon
            default: return true
            }
        }
    }

    // MARK: - The sets

    /// FGSM at `epsilon` on the first `count` test images.
    public func fgsm(_ epsilon: Float) -> PerturbedSet {
        attack(.fgsm, count: settings.count) { $0.epsilon = epsilon }
    }

    /// PGD (L-inf, random start, step 0.01) at the configured eps.
    public func pgd() -> PerturbedSet {
        attack(.pgd, count: settings.pgdCount ?? settings.count) {
            $0.epsilon = settings.epsilon
            $0.steps = settings.pgdSteps
        }
    }

    /// CW-L2 (cleverhans v3 defaults unless the settings change them).
    public func carliniWagner() -> PerturbedSet {
        attack(.cw2, count: settings.slowCount) {
            $0.steps = settings.cwSteps
            $0.binarySearchSteps = settings.cwBinarySteps
            $0.initialConstant = settings.cwInitialConstant
            $0.stepSize = settings.cwLearningRate
        }
    }

    /// JSMA (theta 1, gamma 0.1, random targets).
    public func jsma() -> PerturbedSet { attack(.jsma, count: settings.slowCount) { _ in } }

    /// Adaptive PGD against DAFAR's detector at its active threshold, or, with `score`, against that
    /// score (the fused one) at `threshold`.
    public func adaptive(lambda: Float, epsilon: Float, against target: (score: FeedbackScore, threshold: Float)? = nil) -> PerturbedSet {
        let detector = target.map { model.attackableDetector($0.score, threshold: $0.threshold) }
        return attack(.adaptivePGD, count: settings.adaptiveCount, detector: detector, variant: target.map { "\($0.score.kind)" }) {
            $0.lambda = lambda
            $0.epsilon = epsilon
            $0.steps = settings.adaptiveSteps
        }
    }

    /// CW-L2 with the detector term `lambda * max(0, score - t)` (the settings' CW budget) on the first
    /// `slowCount` test images, against DAFAR's detector at its active threshold or against `target`.
    public func adaptiveCarliniWagner(lambda: Float, against target: (score: FeedbackScore, threshold: Float)? = nil) -> PerturbedSet {
        let detector = target.map { model.attackableDetector($0.score, threshold: $0.threshold) }
        return attack(
            .adaptiveCW, count: settings.slowCount, detector: detector,
            variant: "lambda\(format(lambda))" + (target.map { "-\($0.score.kind)" } ?? "")
        ) {
            $0.lambda = lambda
            $0.steps = settings.cwSteps
            $0.binarySearchSteps = settings.cwBinarySteps
            $0.initialConstant = settings.cwInitialConstant
            $0.stepSize = settings.cwLearningRate
        }
    }

    /// Random sign noise of L-inf size `epsilon` on the first `count` test images.
    public func signNoise(_ epsilon: Float) -> PerturbedSet {
        let key = "sign-noise-\(format(epsilon))"
        if let set = made[key] { return set }
        let images = test.prefix(settings.count)
        var generator = SeededGenerator(seed: seed(for: key))
        let noisy = NoiseControl.signNoise(images.images, epsilons: [Float](repeating: epsilon, count: images.count), using: &generator)
        return remember(
            noiseSet(
                name: "sign noise eps=\(format(epsilon))", key: key, family: .signNoise, epsilon: epsilon,
                clean: images, noisy: noisy, cleanIsTestPrefix: true))
    }

    /// Random sign noise with the per-image L-inf size of `attack`'s perturbations, on its images.
    public func matchedSignNoise(_ attack: PerturbedSet) -> PerturbedSet {
        control(of: attack, key: "sign-noise-like-\(attack.key)", name: "sign noise ~\(attack.name)", family: .signNoise) { g in
            NoiseControl.signNoise(attack.clean, epsilons: attack.lInfinityDistances, using: &g)
        }
    }

    /// `attack`'s perturbations with their pixels shuffled within each image, on its images.
    public func shuffledPerturbation(_ attack: PerturbedSet) -> PerturbedSet {
        control(of: attack, key: "shuffled-\(attack.key)", name: "shuffled ~\(attack.name)", family: .shuffledPerturbation) { g in
            NoiseControl.shuffledPerturbation(clean: attack.clean, perturbed: attack.perturbed, using: &g)
        }
    }

    /// A control (not an attack) on `attack`'s images: `perturb` draws from the generator of `key`.
    private func control(
        of attack: PerturbedSet, key: String, name: String, family: PerturbedSet.Family,
        perturb: (inout SeededGenerator) -> Tensor
    ) -> PerturbedSet {
        if let set = made[key] { return set }
        var generator = SeededGenerator(seed: seed(for: key))
        let noisy = perturb(&generator)
        let images = LabeledImages(images: attack.clean, labels: attack.labels, classCount: test.classCount)
        return remember(
            noiseSet(
                name: name, key: key, family: family, epsilon: attack.epsilon, clean: images, noisy: noisy,
                cleanIsTestPrefix: attack.cleanIsTestPrefix, predictedClean: attack.predictedClean))
    }

    /// Gaussian noise with standard deviation `sigma` on the first `count` test images.
    public func gaussianNoise(_ sigma: Float) -> PerturbedSet {
        let key = "gaussian-noise-\(format(sigma))"
        if let set = made[key] { return set }
        let images = test.prefix(settings.count)
        var generator = SeededGenerator(seed: seed(for: key))
        let noisy = NoiseControl.gaussianNoise(images.images, standardDeviation: sigma, using: &generator)
        return remember(
            noiseSet(
                name: "Gaussian noise sigma=\(format(sigma))", key: key, family: .gaussianNoise,
                epsilon: sigma, clean: images, noisy: noisy, cleanIsTestPrefix: true))
    }

    /// FGSM examples of `images` (to train the binary classifier detector), true labels.
    public func fgsmTrainingExamples(_ images: LabeledImages, epsilon: Float) -> Tensor {
        let attack = try! AttackSpec.fgsm(epsilon).make()
        return run(attack, name: "FGSM (binary detector training)", images: images, withDetector: nil, seed: seed(for: "binary-training"))
            .adversarial
    }

    // MARK: - Making sets

    /// The set of attack `kind` on the first `count` test images; an adaptive attack knows `detector`
    /// (default: the detector file's), and a `variant` name keeps sets against other detectors apart.
    private func attack(
        _ kind: AttackKind, count: Int, detector: DifferentiableDetector? = nil, variant: String? = nil,
        configure: (inout AttackSpec) -> Void
    ) -> PerturbedSet {
        var spec = AttackSpec(kind: kind)
        configure(&spec)
        let family = PerturbedSet.Family(kind)
        let lambda = kind.needsDetector ? spec.lambda : nil
        let key =
            PerturbedSet.attackKey(family: family, kind: kind, epsilon: spec.epsilon, lambda: lambda) + (variant.map { "-" + $0 } ?? "")
        if let set = provided[key] ?? made[key] { return set }
        let attacked = detector ?? model.attackableDetector
        let method: any Attack
        do { method = try spec.make(detector: attacked) } catch {
            preconditionFailure("experiment attack \(key) is misconfigured: \(error)")  // settings are validated upfront
        }
        let name =
            PerturbedSet.attackName(family: family, kind: kind, epsilon: spec.epsilon, lambda: lambda) + (variant.map { " vs \($0)" } ?? "")
        let images = test.prefix(count)
        let start = Date()
        let set = run(method, name: name, images: images, withDetector: kind.needsDetector ? attacked : nil, seed: seed(for: key))
        return remember(
            PerturbedSet(
                name: name, key: key, family: family, epsilon: spec.epsilon, lambda: lambda,
                clean: images.images, perturbed: set.adversarial, labels: images.labels,
                predictedClean: set.predictedClean, predictedPerturbed: set.predictedAdversarial,
                cleanIsTestPrefix: true, settings: method.settings,
                seconds: Date().timeIntervalSince(start)))
    }

    private func run(
        _ method: any Attack, name: String, images: LabeledImages, withDetector detector: DifferentiableDetector?,
        seed: UInt64
    ) -> AdversarialSet {
        let bar = settings.progress(name, images.count)
        let start = Date()
        let adversarial = ShardedAttack.perturb(
            method, images: images.images, attackLabels: images.labels, targets: nil,
            model: model.attackableClassifier, batchSize: settings.batchSize,
            randomness: ImageRandomness(seed: seed), communicator: communicator,
            destination: .everyRank
        ) { done in
            bar.update(done, String(format: "%.1f img/s", Double(done) / max(1e-9, Date().timeIntervalSince(start))))
        }!
        let set = AttackRunner.assemble(
            images: images.images, adversarial: adversarial, labels: images.labels, targets: nil,
            model: model.attackableClassifier, detector: detector, countDetector: detector != nil)
        bar.finish()
        return set
    }

    private func noiseSet(
        name: String, key: String, family: PerturbedSet.Family, epsilon: Float?, clean: LabeledImages,
        noisy: Tensor, cleanIsTestPrefix: Bool, predictedClean: [Int]? = nil
    ) -> PerturbedSet {
        PerturbedSet(
            name: name, key: key, family: family, epsilon: epsilon, clean: clean.images, perturbed: noisy,
            labels: clean.labels, predictedClean: predictedClean ?? model.classify(clean.images),
            predictedPerturbed: model.classify(noisy), cleanIsTestPrefix: cleanIsTestPrefix)
    }

    private func remember(_ set: PerturbedSet) -> PerturbedSet {
        made[set.key] = set
        return set
    }

    /// A seed for one set: the run's seed mixed with the set's key (FNV-1a), so that
    /// every set has its own stream and adding a set changes no other.
    func seed(for key: String) -> UInt64 {
        key.utf8.reduce(UInt64(0xcbf29ce484222325) ^ settings.seed) { ($0 ^ UInt64($1)) &* 0x100000001b3 }
    }
}

extension AttackSpec {
    /// FGSM at `epsilon`.
    static func fgsm(_ epsilon: Float) -> AttackSpec {
        var spec = AttackSpec(kind: .fgsm)
        spec.epsilon = epsilon
        return spec
    }
}
