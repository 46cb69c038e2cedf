import ArgumentParser
import Attacks
import CommandSupport
import DAFAR
import Evaluation
import Datasets
import Distributed
import Foundation
import NeuralNetworks
import Tensors

extension AttackKind: ExpressibleByArgument {}

/// `dafar-attack`: generates adversarial examples against a DAFAR model and writes them as a safetensors set.
@main
struct DAFARAttack: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dafar-attack",
        abstract: "Attack a trained DAFAR model and write the adversarial set (safetensors).",
        discussion: """
            Attacks: fgsm, fgm-l2, bim, pgd (L-inf, random start), pgd-l2, cw2 (Carlini-Wagner L2, cleverhans v3 \
            defaults), jsma, deepfool, adaptive-pgd and adaptive-cw (they know the detector: loss + lambda * \
            max(0, score - alpha); success = misclassified AND not flagged).
            The set holds x, x_adv, y, pred_clean, pred_adv, success (and target with --target, detector scores \
            when --detector is given).
            Example: dafar-attack --model m.safetensors --attack pgd --eps 0.3 --count 1000 --output pgd.safetensors
            Under mpirun or srun every rank attacks a contiguous shard of whole batches and rank 0 writes the one \
            file; random starts and targets come from (seed, image index), so the tensors equal one process's \
            with the same seed and --threads 1.
            """)

    /// Usage errors in one line (`mainReportingOneLine`), run errors through `reportingErrors`.
    static func main() { mainReportingOneLine() }

    @OptionGroup var data: DataOptions
    @OptionGroup var runtime: RuntimeOptions

    @Option(help: "Model written by dafar-train.")
    var model: String

    @Option(help: "Detector written by dafar-detector (required by the adaptive attacks; adds scores otherwise).")
    var detector: String?

    @Option(help: "Which split to attack: test, validation or train.")
    var split: SplitChoice = .test

    @Option(parsing: .unconditional, help: "Attack the first N images of the split.")
    var count = 1000

    @Flag(help: "Keep only images the model classifies correctly (before taking --count).")
    var onlyCorrect = false

    @Option(help: "Attack to run: \(AttackKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var attack: AttackKind

    @Option(
        parsing: .unconditional,
        help: "Perturbation budget (L-inf for fgsm/bim/pgd/adaptive-pgd, default 0.3; L2 for fgm-l2/pgd-l2, default 2).")
    var eps: Float?

    @Option(parsing: .unconditional, help: "Iterations (bim/pgd 40, adaptive-pgd 100, cw2 1000 per binary-search step, deepfool 50).")
    var steps: Int?

    @Option(parsing: .unconditional, help: "Step size (pgd 0.01, pgd-l2 eps/8, bim eps/10) or the CW Adam learning rate (5e-3).")
    var stepSize: Float?

    @Option(parsing: .unconditional, help: "PGD random restarts.")
    var restarts = 1

    @Flag(help: "Start PGD at the clean image instead of a random point in the eps ball.")
    var noRandomStart = false

    @Option(parsing: .unconditional, help: "CW confidence kappa.")
    var confidence: Float = 0

    @Option(parsing: .unconditional, help: "CW binary-search steps (default 5).")
    var binarySteps: Int?

    @Option(parsing: .unconditional, help: "CW initial constant c (default 1e-2).")
    var initialConst: Float?

    @Flag(help: "CW with Carlini's original settings (lr 1e-2, 9 binary steps, 10000 iterations, c 1e-3).")
    var carliniOriginal = false

    @Option(parsing: .unconditional, help: "JSMA perturbation per pixel (theta).")
    var theta: Float = 1

    @Option(parsing: .unconditional, help: "JSMA maximum fraction of pixels changed (gamma).")
    var gamma: Float = 0.1

    @Option(name: .customLong("lambda"), parsing: .unconditional, help: "Adaptive attack: weight of max(0, score - alpha).")
    var lambda: Float = 1

    @Option(
        help: ArgumentHelp(
            "Targeted run: a class index, or random (per image a random class other than its label, as cleverhans' random_targets). Success then means reaching the target; images whose label is the given class are skipped.",
            valueName: "class|random"))
    var target: String?

    /// The class of `--target CLASS` (nil without --target or with --target random).
    var fixedTargetClass: Int? { target.flatMap { Int($0) } }

    @Option(help: "Labels the attack uses: true (default) or predicted (avoids label leaking, as cleverhans).")
    var labels = "true"

    @Option(parsing: .unconditional, help: "Images per attack batch.")
    var batchSize = 100

    @Option(parsing: .unconditional, help: "Seed of random starts and targets.")
    var seed: UInt64 = 0

    @Option(help: "Where to write the adversarial set (safetensors).")
    var output: String

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1, got \(count)") }
        if let eps {
            guard eps > 0 && eps.isFinite && (eps <= 1 || [.fgmL2, .pgdL2].contains(attack)) && eps <= 100 else {
                throw ValidationError("--eps must be in (0, 1] for L-inf attacks (and positive for L2 attacks), got \(eps)")
            }
        }
        if let steps { guard steps >= 1 && steps <= 1_000_000 else { throw ValidationError("--steps must be at least 1, got \(steps)") } }
        if let stepSize {
            guard stepSize > 0 && stepSize.isFinite else { throw ValidationError("--step-size must be positive, got \(stepSize)") }
        }
        guard restarts >= 1 else { throw ValidationError("--restarts must be at least 1, got \(restarts)") }
        guard confidence >= 0 && confidence.isFinite else { throw ValidationError("--confidence must be >= 0, got \(confidence)") }
        guard gamma > 0 && gamma <= 1 else { throw ValidationError("--gamma must be in (0, 1], got \(gamma)") }
        guard theta != 0 && abs(theta) <= 1 else { throw ValidationError("--theta must be in [-1, 1] and not 0, got \(theta)") }
        guard lambda >= 0 && lambda.isFinite else { throw ValidationError("--lambda must be >= 0, got \(lambda)") }
        if let target, target != "random", (fixedTargetClass ?? -1) < 0 {
            throw ValidationError("--target must be a class index (0, 1, ...) or random, got '\(target)'")
        }
        guard ["true", "predicted"].contains(labels) else { throw ValidationError("--labels must be true or predicted, got '\(labels)'") }
        guard batchSize >= 1 && batchSize <= 65536 else {
            throw ValidationError("--batch-size must be between 1 and 65536, got \(batchSize)")
        }
        if attack.needsDetector && detector == nil { throw ValidationError("--attack \(attack.rawValue) needs --detector FILE") }
    }

    /// What every rank prepares before attacking: the model, the images, the attack and its goal.
    struct Prepared {
        var dafar: DAFARModel
        var images: LabeledImages
        var method: any Attack
        var attackLabels: [Int]
        var targets: [Int]?
    }

    /// Under mpirun/srun every rank attacks a contiguous shard of whole batches and rank 0 gathers the
    /// adversarial images and writes the one file; started alone, the one rank attacks every image.
    func run() throws {
        let world = Launcher.communicator()
        defer { world.finalize() }
        var prepared: Prepared?
        try agreeingOnErrors(world) { prepared = try prepare(isRoot: world.isRoot) }
        guard let prepared else { return }
        let images = prepared.images
        let bar = ProgressBar(total: images.count, label: prepared.method.name, enabled: !runtime.quiet && world.isRoot)
        let start = Date()
        let adversarial = ShardedAttack.perturb(
            prepared.method, images: images.images, attackLabels: prepared.attackLabels, targets: prepared.targets,
            model: prepared.dafar.attackableClassifier, batchSize: batchSize, randomness: ImageRandomness(seed: seed),
            communicator: world, destination: .root
        ) { done in
            bar.update(done, String(format: "%.1f img/s", Double(done) / max(1e-9, Date().timeIntervalSince(start))))
        }
        bar.finish()
        guard let adversarial else { return }
        try reportingErrors {
            try write(prepared, adversarial: adversarial, seconds: Date().timeIntervalSince(start), ranks: world.size)
        }
    }

    /// Loads the model and the images, chooses the images and their targets, builds the attack
    /// (identically on every rank; only rank 0 prints).
    func prepare(isRoot: Bool) throws -> Prepared {
        runtime.apply()
        try checkInputFile(model, what: "model")
        if let detector { try checkInputFile(detector, what: "detector") }
        try checkOutputPath(output)
        let dafar = try DAFARModel(contentsOf: URL(fileURLWithPath: model), detector: detector.map { URL(fileURLWithPath: $0) })
        let splits = try data.load(seed: seed)
        var images = split.images(of: splits)
        guard images.imageShape == dafar.inputShape else {
            throw ModelFileError("the model reads \(dafar.inputShape) images but \(data.dataset.rawValue) has \(images.imageShape) images")
        }
        if onlyCorrect {
            let predictions = dafar.classify(images.images)
            images = images.subset(predictions.indices.filter { predictions[$0] == images.labels[$0] })
        }
        let classCount = dafar.network.classCount
        if let k = fixedTargetClass {
            guard k < classCount else { throw ValidationError("--target \(k) is not a class of this model (classes 0..<\(classCount))") }
            let skipped = images.labels.filter { $0 == k }.count
            images = images.subset(images.labels.indices.filter { images.labels[$0] != k })
            if !runtime.quiet && isRoot { print("--target \(k): skipping the \(skipped) images of class \(k) in the \(split) split") }
        }
        images = images.prefix(count)
        guard images.count > 0 else {
            throw DatasetError(
                kind: .badContent, path: "",
                message:
                    "no images to attack: the \(split) split \(onlyCorrect ? "has no image the model classifies correctly" : "is empty"); choose another --split\(onlyCorrect ? " or drop --only-correct" : "")"
            )
        }
        var spec = AttackSpec(kind: attack)
        spec.epsilon = eps
        spec.steps = steps
        spec.stepSize = stepSize
        spec.restarts = restarts
        spec.randomStart = !noRandomStart
        spec.confidence = confidence
        spec.binarySearchSteps = binarySteps
        spec.initialConstant = initialConst
        spec.carliniOriginal = carliniOriginal
        spec.theta = theta
        spec.gamma = gamma
        spec.lambda = lambda
        let method: any Attack
        do { method = try spec.make(detector: dafar.attackableDetector) } catch let error as AttackConfigurationError {
            throw ValidationError(error.description)
        }
        let attackLabels = labels == "true" ? images.labels : dafar.classify(images.images)
        var targets: [Int]?
        if let k = fixedTargetClass { targets = [Int](repeating: k, count: images.count) }
        if target == "random" {
            // per image from (seed, index): apart from the attack's own streams, the same for any number of ranks
            targets = AttackGoal.randomTargets(
                labels: attackLabels, classCount: classCount,
                randomness: ImageRandomness(seed: seed ^ 0x7461_7267_6574))
        }
        return Prepared(dafar: dafar, images: images, method: method, attackLabels: attackLabels, targets: targets)
    }

    /// Rank 0: predictions, success and scores of the whole set, the file (atomically) and the summary.
    func write(_ prepared: Prepared, adversarial: Tensor, seconds: Double, ranks: Int) throws {
        let (dafar, images, method, targets) = (prepared.dafar, prepared.images, prepared.method, prepared.targets)
        var set = AttackRunner.assemble(
            images: images.images, adversarial: adversarial, labels: images.labels, targets: targets,
            model: dafar.attackableClassifier, detector: dafar.attackableDetector,
            countDetector: attack.needsDetector)
        let summary = PerturbationSummary(set)
        set.metadata = [
            "attack": method.name, "attack_kind": attack.rawValue,
            "attack_settings": String(
                decoding: try JSONSerialization.data(withJSONObject: method.settings, options: [.sortedKeys]), as: UTF8.self),
            "model_sha256": dafar.modelHash,
            "detector_sha256": try detector.map { try SafetensorsArchive.sha256Hex(of: URL(fileURLWithPath: $0)) } ?? "none",
            "dataset": data.dataset.rawValue, "split": split.rawValue, "count": String(set.count), "only_correct": String(onlyCorrect),
            "labels": labels, "seed": String(seed), "threads": String(Parallel.threadCount), "ranks": String(ranks),
            "random_streams": "per image (seed, index)",
            "success_criterion": (targets == nil ? "misclassified" : "target reached") + (attack.needsDetector ? " and not flagged" : ""),
            "target": target ?? "none",
            "success_rate": String(set.successRate), "mean_l2_successful": summary.meanL2.map { String($0) } ?? "none",
            "mean_linf_successful": summary.meanLInf.map { String($0) } ?? "none",
            "images_per_second": String(Double(set.count) / max(1e-9, seconds)), "toolkit_version": toolkitVersion
        ]
        try set.archive().write(to: URL(fileURLWithPath: output))
        let successes = set.success.filter { $0 }.count
        print(
            String(
                format: "%@: success %.2f %% (%d/%d), mean L2 %@, mean L-inf %@ of successful examples, %.1f adversarial examples/s",
                method.name, set.successRate * 100, successes, set.count,
                summary.meanL2.map { String(format: "%.3f", $0) } ?? "-", summary.meanLInf.map { String(format: "%.3f", $0) } ?? "-",
                Double(set.count) / max(1e-9, seconds)) + (ranks > 1 ? " on \(ranks) ranks" : ""))
        if targets != nil {
            let misclassified = zip(set.predictedAdversarial, set.labels).filter { $0 != $1 }.count
            print(
                String(
                    format: "success = the target class reached (--target %@); misclassified: %.2f %% (%d/%d)",
                    target!, Double(misclassified) / Double(max(1, set.count)) * 100, misclassified, set.count))
        }
        if let scores = set.scoreAdversarial, let threshold = dafar.threshold {
            let flagged = zip(scores, set.success).filter { $0.1 && $0.0 > threshold }.count
            print(String(format: "detector flags %d of %d successful examples (threshold %.4f)", flagged, successes, threshold))
        }
        print("adversarial set written to \(output)")
    }
}

/// Mean L2 and L-inf perturbation of the successful examples of a set.
struct PerturbationSummary {
    var meanL2: Float?
    var meanLInf: Float?

    init(_ set: AdversarialSet) {
        let distances = Tensor.distancesPerSample(set.adversarial, set.clean)
        var l2 = 0.0, linf = 0.0, n = 0
        for i in 0..<set.count where set.success[i] {
            l2 += Double(distances.l2[i]); linf += Double(distances.lInfinity[i]); n += 1
        }
        if n > 0 { meanL2 = Float(l2 / Double(n)); meanLInf = Float(linf / Double(n)) }
    }
}
