import Foundation
import NeuralNetworks
import Tensors

/// A set of adversarial examples as `dafar-attack` writes it (safetensors):
/// `x` (clean `[N, C, H, W]`), `x_adv`, `y` (true labels, I64), `pred_clean`,
/// `pred_adv` (I64), `success` (U8), optionally `score_clean` / `score_adv` (F32),
/// with the attack, its settings, the model's hash and the seed in `__metadata__`.
public struct AdversarialSet {
    public var clean: Tensor
    public var adversarial: Tensor
    public var labels: [Int]
    public var predictedClean: [Int]
    public var predictedAdversarial: [Int]
    public var success: [Bool]
    /// The class each image was pushed towards, for targeted runs (success then means reaching it).
    public var targets: [Int]?
    public var scoreClean: [Float]?
    public var scoreAdversarial: [Float]?
    public var metadata: [String: String]

    public init(
        clean: Tensor, adversarial: Tensor, labels: [Int], predictedClean: [Int], predictedAdversarial: [Int],
        success: [Bool], targets: [Int]? = nil, scoreClean: [Float]? = nil, scoreAdversarial: [Float]? = nil,
        metadata: [String: String] = [:]
    ) {
        self.clean = clean
        self.adversarial = adversarial
        self.labels = labels
        self.predictedClean = predictedClean
        self.predictedAdversarial = predictedAdversarial
        self.success = success
        self.targets = targets
        self.scoreClean = scoreClean
        self.scoreAdversarial = scoreAdversarial
        self.metadata = metadata
    }

    /// Number of examples.
    public var count: Int { labels.count }
    /// Fraction of successful examples.
    public var successRate: Double { count == 0 ? 0 : Double(success.filter { $0 }.count) / Double(count) }

    /// The set as a safetensors archive.
    public func archive() -> SafetensorsArchive {
        let n = count
        var tensors: [String: TensorData] = [
            "x": .float32(clean), "x_adv": .float32(adversarial),
            "y": .int64(shape: [n], values: labels.map(Int64.init)),
            "pred_clean": .int64(shape: [n], values: predictedClean.map(Int64.init)),
            "pred_adv": .int64(shape: [n], values: predictedAdversarial.map(Int64.init)),
            "success": .uint8(shape: [n], values: success.map { $0 ? 1 : 0 })
        ]
        if let targets { tensors["target"] = .int64(shape: [n], values: targets.map(Int64.init)) }
        if let scoreClean { tensors["score_clean"] = .float32(Tensor(shape: [n], storage: scoreClean)) }
        if let scoreAdversarial { tensors["score_adv"] = .float32(Tensor(shape: [n], storage: scoreAdversarial)) }
        return SafetensorsArchive(
            tensors: tensors, metadata: metadata.merging(["format": "dafar-adversarial-set", "format_version": "1"]) { _, b in b })
    }

    /// Reads a set written by `archive()`, checking that every tensor has a consistent shape.
    public init(archive: SafetensorsArchive, file: String) throws {
        func fail(_ message: String) -> SafetensorsError { SafetensorsError(message, path: file) }
        guard archive.metadata["format"] == "dafar-adversarial-set" else {
            throw fail("not an adversarial set written by dafar-attack (metadata 'format' is \(archive.metadata["format"] ?? "missing"))")
        }
        let clean = try archive.float32("x"), adversarial = try archive.float32("x_adv")
        guard clean.rank == 4, clean.shape == adversarial.shape else {
            throw fail("'x' has shape \(clean.shape) but 'x_adv' has shape \(adversarial.shape); both must be the same [N, C, H, W]")
        }
        let n = clean.shape[0]
        let labels = try archive.int64("y"), predictedClean = try archive.int64("pred_clean")
        let predictedAdversarial = try archive.int64("pred_adv"), success = try archive.uint8("success")
        for (name, count) in [
            ("y", labels.count), ("pred_clean", predictedClean.count), ("pred_adv", predictedAdversarial.count), ("success", success.count)
        ]
        where count != n {
            throw fail("'\(name)' has \(count) entries for \(n) images")
        }
        for (name, values) in [("y", labels), ("pred_clean", predictedClean), ("pred_adv", predictedAdversarial)]
        where values.contains(where: { $0 < 0 || $0 >= 1000 }) {
            throw fail("'\(name)' holds a label outside 0..<1000")
        }
        guard clean.isFinite && adversarial.isFinite else { throw fail("the images contain NaN or infinite values") }
        guard clean.storage.allSatisfy({ $0 >= 0 && $0 <= 1 }), adversarial.storage.allSatisfy({ $0 >= 0 && $0 <= 1 }) else {
            throw fail("pixel values outside [0, 1]")
        }
        var targets: [Int]?
        if archive.tensors["target"] != nil {
            let values = try archive.int64("target")
            guard values.count == n else { throw fail("'target' has \(values.count) entries for \(n) images") }
            guard !values.contains(where: { $0 < 0 || $0 >= 1000 }) else { throw fail("'target' holds a class outside 0..<1000") }
            targets = values.map { Int($0) }
        }
        var scoreClean: [Float]?, scoreAdversarial: [Float]?
        if archive.tensors["score_clean"] != nil { scoreClean = try archive.float32("score_clean").storage }
        if archive.tensors["score_adv"] != nil { scoreAdversarial = try archive.float32("score_adv").storage }
        if let s = scoreClean, s.count != n { throw fail("'score_clean' has \(s.count) entries for \(n) images") }
        if let s = scoreAdversarial, s.count != n { throw fail("'score_adv' has \(s.count) entries for \(n) images") }
        self.init(
            clean: clean, adversarial: adversarial, labels: labels.map { Int($0) },
            predictedClean: predictedClean.map { Int($0) }, predictedAdversarial: predictedAdversarial.map { Int($0) },
            success: success.map { $0 != 0 }, targets: targets, scoreClean: scoreClean, scoreAdversarial: scoreAdversarial,
            metadata: archive.metadata)
    }

    /// Reads a set from a file.
    public init(contentsOf url: URL) throws {
        try self.init(archive: try SafetensorsArchive(contentsOf: url), file: url.path)
    }
}

/// Runs an attack over many images in batches, reporting progress after each batch.
public enum AttackRunner {
    /// Perturbs `images` batch by batch. With `targets`, each image is pushed towards its target
    /// class and success means reaching it; otherwise success means leaving the label. With
    /// `countDetector`, success also requires not being flagged (the adaptive criterion); the
    /// detector's scores are recorded whenever a detector is given. Image `i` draws its random
    /// start or target from `ImageRandomness(seed: seed)`'s stream `i`.
    public static func run(
        _ attack: any Attack, images: Tensor, labels: [Int], attackLabels: [Int], targets: [Int]? = nil,
        model: DifferentiableClassifier, detector: DifferentiableDetector?, countDetector: Bool,
        batchSize: Int, seed: UInt64, onBatch: (Int) -> Void = { _ in }
    ) -> AdversarialSet {
        let randomness = ImageRandomness(seed: seed)
        let xAdversarial = perturb(
            attack, images: images, attackLabels: attackLabels, targets: targets, model: model,
            batchSize: batchSize, randomness: randomness, onBatch: onBatch)
        return assemble(
            images: images, adversarial: xAdversarial, labels: labels, targets: targets, model: model,
            detector: detector, countDetector: countDetector)
    }

    /// The adversarial images `[N, C, H, W]` of `images`, attacked in batches of `batchSize`; batch
    /// `[a, b)` gets `randomness.advanced(by: a)`. `onBatch` receives the number of images done.
    /// A shard of a larger run passes the run's streams advanced to its first image.
    public static func perturb(
        _ attack: any Attack, images: Tensor, attackLabels: [Int], targets: [Int]?,
        model: DifferentiableClassifier, batchSize: Int, randomness: ImageRandomness,
        onBatch: (Int) -> Void = { _ in }
    ) -> Tensor {
        precondition(
            targets.map { $0.count == attackLabels.count } ?? true,
            "attack runner: \(targets?.count ?? 0) targets for \(attackLabels.count) images")
        var adversarial: [Tensor] = []
        for range in images.batchRanges(size: batchSize) {
            let goal = targets.map { AttackGoal.targeted(Array($0[range])) } ?? .untargeted
            adversarial.append(
                attack.perturb(
                    images.slice(range), labels: Array(attackLabels[range]), goal: goal,
                    model: model, randomness: randomness.advanced(by: range.lowerBound)))
            onBatch(range.upperBound)
        }
        return images.batchSize == 0 ? images : Tensor.concatenate(adversarial)
    }

    /// The set of `images` and their adversarial versions: predictions, success and scores.
    public static func assemble(
        images: Tensor, adversarial xAdversarial: Tensor, labels: [Int], targets: [Int]?,
        model: DifferentiableClassifier, detector: DifferentiableDetector?, countDetector: Bool
    ) -> AdversarialSet {
        precondition(
            targets.map { $0.count == labels.count } ?? true, "attack runner: \(targets?.count ?? 0) targets for \(labels.count) images")
        let outcome = AttackOutcome(
            original: images, adversarial: xAdversarial, labels: labels,
            goal: targets.map { .targeted($0) } ?? .untargeted,
            classifier: model, detector: countDetector ? detector : nil)
        return AdversarialSet(
            clean: images, adversarial: xAdversarial, labels: labels,
            predictedClean: outcome.predictedClean, predictedAdversarial: outcome.predictedAdversarial,
            success: outcome.success, targets: targets,
            scoreClean: detector.map { d in batchedScores(d, images) },
            scoreAdversarial: detector.map { d in batchedScores(d, xAdversarial) })
    }

    static func batchedScores(_ detector: DifferentiableDetector, _ images: Tensor) -> [Float] {
        images.mapBatches { detector.scores($0) }
    }
}
