import Foundation
import Tensors

/// One of MagNet's detector scores (Meng and Chen 2017), higher = more adversarial.
public enum MagNetScore: Hashable, Sendable, CustomStringConvertible {
    /// Detector I: `mean over C*H*W of |x - AE(x)|^p` per image (MagNet uses p = 1 and 2).
    case reconstructionError(p: Int)
    /// Detector II: `JSD(softmax(F(x) / T), softmax(F(AE(x)) / T))` per image, with the
    /// protected classifier's logits `F` (MagNet uses T = 10 and 40).
    case jensenShannon(temperature: Float)

    /// The four detectors of the MagNet comparison: L1, L2, JSD at T = 10 and T = 40.
    public static let standard: [MagNetScore] = [
        .reconstructionError(p: 1), .reconstructionError(p: 2),
        .jensenShannon(temperature: 10), .jensenShannon(temperature: 40)
    ]

    /// `magnet-l1`, `magnet-l2`, `magnet-jsd-t10`, ...
    public var description: String {
        switch self {
        case .reconstructionError(let p): return "magnet-l\(p)"
        case .jensenShannon(let t): return "magnet-jsd-t\(t == t.rounded() ? String(Int(t)) : String(t))"
        }
    }

    func check() {
        switch self {
        case .reconstructionError(let p): precondition(p >= 1, "MagNet reconstruction error needs p >= 1, got \(p)")
        case .jensenShannon(let t): precondition(t > 0 && t.isFinite, "MagNet JSD needs a positive temperature, got \(t)")
        }
    }
}

/// Jensen-Shannon divergence between matching rows of two `[N, K]` tensors of
/// non-negative weights, natural log, as MagNet's `JSD` (scipy `entropy`):
/// `P = p / |p|_1`, `Q = q / |q|_1`, `M = (P + Q) / 2`,
/// `JSD = (KL(P || M) + KL(Q || M)) / 2` with `0 log 0 = 0`. In `[0, log 2]`;
/// 0 for identical rows and symmetric in `p`, `q`. Accumulates in Double. Returns `[N]`.
public func jensenShannonDivergence(_ p: Tensor, _ q: Tensor) -> [Float] {
    precondition(p.rank == 2 && p.shape == q.shape, "JSD needs two [N, K] tensors of one shape, got \(p.shape) and \(q.shape)")
    let (rows, k) = (p.shape[0], p.shape[1])
    return p.withUnsafeBufferPointer { pp in
        q.withUnsafeBufferPointer { qq in
            (0..<rows).map { r in
                var sp = 0.0, sq = 0.0
                for j in 0..<k { sp += Double(pp[r * k + j]); sq += Double(qq[r * k + j]) }
                var total = 0.0
                for j in 0..<k {
                    let a = Double(pp[r * k + j]) / sp, b = Double(qq[r * k + j]) / sq
                    let m = 0.5 * (a + b)
                    if a > 0 { total += a * log(a / m) }
                    if b > 0 { total += b * log(b / m) }
                }
                return Float(max(0, 0.5 * total))
            }
        }
    }
}

/// Scores of several MagNet detectors for `images`, `[kinds.count][N]`, computed in one
/// pass per batch: `AE(x)` once, the classifier's logits of `x` and `AE(x)` once.
func magNetScoreTable(
    _ images: Tensor, autoencoder: MagNetAutoencoder, classifier: ClassifierFunction?,
    kinds: [MagNetScore], batchSize: Int
) -> [[Float]] {
    precondition(batchSize > 0, "batch size must be positive, got \(batchSize)")
    kinds.forEach { $0.check() }
    var table = [[Float]](repeating: [], count: kinds.count)
    for range in images.batchRanges(size: batchSize) {
        let batch = range.count == images.batchSize ? images : images.slice(range)
        let reconstructed = autoencoder.reconstruct(batch, batchSize: batchSize)
        var logits: (clean: Tensor, reconstructed: Tensor)?
        for (i, kind) in kinds.enumerated() {
            switch kind {
            case .reconstructionError(let p):
                let power = batch.zipMap(reconstructed) { a, b in
                    let d = abs(a - b)
                    return p == 1 ? d : (p == 2 ? d * d : powf(d, Float(p)))
                }
                let items = batch.itemCount
                table[i] += (0..<batch.batchSize).map { r in
                    power.storage[(r * items)..<((r + 1) * items)].reduce(0, +) / Float(items)
                }
            case .jensenShannon(let t):
                guard let classifier else { preconditionFailure("MagNet \(kind) needs the classifier") }
                if logits == nil { logits = (classifier.logits(batch), classifier.logits(reconstructed)) }
                let (a, b) = logits!
                table[i] += jensenShannonDivergence(a.map { $0 / t }.softmaxRows(), b.map { $0 / t }.softmaxRows())
            }
        }
    }
    return table
}

/// One MagNet detector as a `BaselineDetector` (to threshold, plot or compare on its own).
public struct MagNetDetector: BaselineDetector {
    /// Which score.
    public let kind: MagNetScore
    /// The trained autoencoder.
    public let autoencoder: MagNetAutoencoder
    /// The protected classifier (needed by `.jensenShannon` only).
    public let classifier: ClassifierFunction?
    /// Images per model call.
    public var batchSize = Tensor.defaultInferenceBatchSize

    /// Creates the detector. - Precondition: a classifier for `.jensenShannon`.
    public init(kind: MagNetScore, autoencoder: MagNetAutoencoder, classifier: ClassifierFunction?) {
        kind.check()
        if case .jensenShannon = kind {
            precondition(classifier != nil, "MagNet \(kind) needs the protected classifier")
        }
        self.kind = kind
        self.autoencoder = autoencoder
        self.classifier = classifier
    }

    public var name: String { kind.description }

    public func scores(_ images: Tensor) -> [Float] {
        magNetScoreTable(images, autoencoder: autoencoder, classifier: classifier, kinds: [kind], batchSize: batchSize)[0]
    }
}

/// MagNet's detection system: several detectors sharing one autoencoder, each with its
/// own threshold fitted on clean validation images; an image is flagged when ANY
/// detector flags it (`s_i > t_i` for some `i`).
///
/// MagNet fixed 0.1 % false positives per detector on MNIST; `fit(... overallFalsePositiveRate:)`
/// splits a target overall rate evenly (`rate / detectors`), which bounds the union's
/// clean false-positive rate by the target (union bound).
public struct MagNet: BaselineDetector {
    /// The shared autoencoder.
    public let autoencoder: MagNetAutoencoder
    /// The protected classifier.
    public let classifier: ClassifierFunction
    /// The detectors, in order.
    public let kinds: [MagNetScore]
    /// One threshold per detector, same order as `kinds`.
    public let thresholds: [FittedThreshold]
    /// Images per model call.
    public var batchSize = Tensor.defaultInferenceBatchSize

    /// Assembles a fitted system. - Precondition: one threshold per detector, at least one detector.
    public init(
        autoencoder: MagNetAutoencoder, classifier: ClassifierFunction, kinds: [MagNetScore],
        thresholds: [FittedThreshold]
    ) {
        precondition(
            !kinds.isEmpty && kinds.count == thresholds.count,
            "MagNet needs one threshold per detector, got \(kinds.count) detectors and \(thresholds.count) thresholds")
        kinds.forEach { $0.check() }
        self.autoencoder = autoencoder
        self.classifier = classifier
        self.kinds = kinds
        self.thresholds = thresholds
    }

    /// Fits every detector's threshold at `falsePositiveRatePerDetector` on clean validation images.
    public static func fit(
        autoencoder: MagNetAutoencoder, classifier: ClassifierFunction,
        kinds: [MagNetScore] = MagNetScore.standard, cleanValidation: Tensor,
        falsePositiveRatePerDetector rate: Double,
        batchSize: Int = Tensor.defaultInferenceBatchSize
    ) -> MagNet {
        let table = magNetScoreTable(
            cleanValidation, autoencoder: autoencoder, classifier: classifier,
            kinds: kinds, batchSize: batchSize)
        var magNet = MagNet(
            autoencoder: autoencoder, classifier: classifier, kinds: kinds,
            thresholds: table.map { FittedThreshold(cleanScores: $0, falsePositiveRate: rate) })
        magNet.batchSize = batchSize
        return magNet
    }

    /// Fits with `overallFalsePositiveRate / kinds.count` per detector.
    public static func fit(
        autoencoder: MagNetAutoencoder, classifier: ClassifierFunction,
        kinds: [MagNetScore] = MagNetScore.standard, cleanValidation: Tensor,
        overallFalsePositiveRate rate: Double,
        batchSize: Int = Tensor.defaultInferenceBatchSize
    ) -> MagNet {
        precondition(!kinds.isEmpty, "MagNet needs at least one detector")
        return fit(
            autoencoder: autoencoder, classifier: classifier, kinds: kinds, cleanValidation: cleanValidation,
            falsePositiveRatePerDetector: rate / Double(kinds.count), batchSize: batchSize)
    }

    public var name: String { "magnet" }

    /// MagNet's MNIST operating point: 0.1 % of clean validation images dropped per detector.
    public static let mnistFalsePositiveRatePerDetector = 0.001

    /// The individual detectors.
    public var detectors: [MagNetDetector] {
        kinds.map { MagNetDetector(kind: $0, autoencoder: autoencoder, classifier: classifier) }
    }

    /// Every detector's scores, `[kinds.count][N]`.
    public func detectorScores(_ images: Tensor) -> [[Float]] {
        magNetScoreTable(images, autoencoder: autoencoder, classifier: classifier, kinds: kinds, batchSize: batchSize)
    }

    /// MagNet's verdict per image: flagged by at least one detector.
    public func flags(_ images: Tensor) -> [Bool] {
        let table = detectorScores(images)
        return (0..<images.batchSize).map { r in zip(table, thresholds).contains { $1.isFlagged($0[r]) } }
    }

    /// A single ranking score: `max_i s_i / t_i` (scores and thresholds are >= 0; a zero
    /// threshold is replaced by the smallest normal Float). Above 1 exactly when some
    /// detector flags the image, up to rounding; use `flags` for the verdict itself.
    public func scores(_ images: Tensor) -> [Float] {
        let table = detectorScores(images)
        return (0..<images.batchSize).map { r in
            zip(table, thresholds).map { $0[r] / max($1.value, Float.leastNormalMagnitude) }.max() ?? 0
        }
    }
}
