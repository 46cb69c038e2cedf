import Autodiff
import Tensors

#if canImport(Glibc)
    import Glibc
#endif

/// The Carlini-Wagner L2 attack (Carlini and Wagner 2017; semantics of their code
/// and of cleverhans v3 `CarliniWagnerL2`).
///
/// Change of variables `x' = (tanh(w) + 1) / 2` keeps `x'` in [0, 1]; `w` starts at
/// `atanh((2x - 1) * 0.999999)`. For a constant `c` per image, Adam minimises
///
///     ||x' - x||_2^2 + c * max(Z_y - max_{i != y} Z_i + kappa, 0)     (untargeted)
///     ||x' - x||_2^2 + c * max(max_{i != t} Z_i - Z_t + kappa, 0)     (targeted)
///
/// on the LOGITS `Z` of `x'`, the excluded class masked with -10000 (not 0:
/// torchattacks bug #184). (`x` here is the original as the tanh box represents it.)
/// A per-image binary search over `c`: start at `initialConstant`; after a run
/// that found a success `upper = min(upper, c)`, `c = (lower + upper) / 2`; after
/// a failure `lower = max(lower, c)` and `c = (lower + upper) / 2` once an upper
/// bound exists, else `c *= 10`. With 10 or more search steps the last one uses
/// `c = upper`. A run stops early when the total loss has not dropped by 0.01 %
/// over `maxIterations / 10` iterations. Each image keeps its smallest-L2 success
/// (a success: `argmax(Z + kappa e_y) != y`, or `argmax(Z - kappa e_t) == t`);
/// images that never succeed are returned unchanged.
///
/// Defaults follow cleverhans v3 (which the DAFAR paper used): learning rate
/// 5e-3, 5 search steps, 1000 iterations, initial c 1e-2, kappa 0. Carlini's own
/// defaults are `CarliniWagnerL2.carliniOriginal`.
public struct CarliniWagnerL2: Attack {
    /// Adam's learning rate on `w`.
    public let learningRate: Float
    /// Number of binary-search steps over `c`.
    public let binarySearchSteps: Int
    /// Adam iterations per search step.
    public let maxIterations: Int
    /// The first `c`.
    public let initialConstant: Float
    /// The confidence `kappa` (the paper's attack intensity).
    public let confidence: Float
    /// Whether a run stops when its loss stalls.
    public let abortEarly: Bool

    /// Creates the attack; throws when a hyper-parameter is out of range.
    public init(
        learningRate: Float = 5e-3, binarySearchSteps: Int = 5, maxIterations: Int = 1000,
        initialConstant: Float = 1e-2, confidence: Float = 0, abortEarly: Bool = true
    ) throws {
        guard learningRate > 0, learningRate.isFinite else {
            throw AttackConfigurationError("CW-L2: the learning rate must be a positive number, got \(learningRate)")
        }
        guard binarySearchSteps >= 1 else {
            throw AttackConfigurationError("CW-L2: binary search steps must be at least 1, got \(binarySearchSteps)")
        }
        guard maxIterations >= 1 else {
            throw AttackConfigurationError("CW-L2: max iterations must be at least 1, got \(maxIterations)")
        }
        guard initialConstant > 0, initialConstant.isFinite else {
            throw AttackConfigurationError("CW-L2: the initial constant must be a positive number, got \(initialConstant)")
        }
        guard confidence >= 0, confidence.isFinite else {
            throw AttackConfigurationError("CW-L2: the confidence must be >= 0, got \(confidence)")
        }
        (self.learningRate, self.binarySearchSteps, self.maxIterations) = (learningRate, binarySearchSteps, maxIterations)
        (self.initialConstant, self.confidence, self.abortEarly) = (initialConstant, confidence, abortEarly)
    }

    /// Carlini's original settings: learning rate 1e-2, 9 search steps, 10000
    /// iterations, initial c 1e-3.
    public static func carliniOriginal(confidence: Float = 0) throws -> CarliniWagnerL2 {
        try CarliniWagnerL2(
            learningRate: 1e-2, binarySearchSteps: 9, maxIterations: 10_000, initialConstant: 1e-3,
            confidence: confidence)
    }

    public var name: String { "CW-L2" }

    public var settings: [String: String] {
        [
            "learning_rate": describe(learningRate), "binary_search_steps": "\(binarySearchSteps)",
            "max_iterations": "\(maxIterations)", "initial_constant": describe(initialConstant),
            "confidence": describe(confidence), "abort_early": "\(abortEarly)"
        ]
    }

    public func perturb(
        _ images: Tensor, labels: [Int], goal: AttackGoal, model: DifferentiableClassifier,
        randomness: ImageRandomness
    ) -> Tensor {
        run(images, labels: labels, goal: goal, model: model, penalty: nil)
    }

    /// The attack, optionally with a detector penalty added to each image's loss
    /// (the adaptive variant); a success then also needs `score <= threshold`.
    func run(
        _ images: Tensor, labels: [Int], goal: AttackGoal, model: DifferentiableClassifier,
        penalty: DetectorPenalty?
    ) -> Tensor {
        let n = images.batchSize
        guard n > 0 else { return images }
        let classCount = model.classCount(images)
        let classes = goal.referenceClasses(labels: labels, count: n, classCount: classCount)
        let targeted = goal.isTargeted
        let startW = images.map { atanhf((2 * Swift.min(Swift.max($0, 0), 1) - 1) * 0.999999) }  // [N, C, H, W]
        let original = Variable(startW.map { (tanhf($0) + 1) / 2 })
        let noBound: Float = 1e10
        var lower = [Float](repeating: 0, count: n)
        var upper = [Float](repeating: noBound, count: n)
        var constants = [Float](repeating: initialConstant, count: n)
        var overallBestL2 = [Float](repeating: noBound, count: n)
        var overallBest = images
        let repeatsUpper = binarySearchSteps >= 10

        for searchStep in 0..<binarySearchSteps {
            if repeatsUpper && searchStep == binarySearchSteps - 1 { constants = upper }
            var w = startW
            var adam = AdamState(count: w.count, learningRate: learningRate)
            var bestL2 = [Float](repeating: noBound, count: n)
            var succeeded = [Bool](repeating: false, count: n)
            var previousLoss = Float.infinity
            let c = Variable(Tensor(shape: [n], storage: constants))
            for iteration in 0..<maxIterations {
                let tape = Tape(recordsParameters: false)
                let wv = tape.watch(w)
                let adversarial = (wv.tanh() + 1) * 0.5  // x'    [N, C, H, W]
                let distance = (adversarial - original).square().sumPerSample()  // ||x' - x||^2  [N]
                let logits = model.logits(adversarial)  // Z     [N, K]
                let margin = logitMargin(logits: logits, classes: classes, targeted: targeted)
                var perSample = distance + c * (margin + confidence).relu()
                var scores: [Float]? = nil
                if let penalty {
                    let (term, s) = penalty.evaluate(adversarial)
                    perSample = perSample + term
                    scores = s.value.storage
                }
                let loss = perSample.sum()
                if let gradient = tape.gradients(of: loss)[wv] { adam.step(&w, gradient: gradient) }

                // Values are those of the iterate before the update, as in the reference code.
                let total = loss.value.scalar
                if abortEarly && iteration % Swift.max(1, maxIterations / 10) == 0 {
                    if total > previousLoss * 0.9999 { break }
                    previousLoss = total
                }
                let z = logits.value.storage, l2 = distance.value.storage
                let evades = scores.map { s in s.map { $0 <= penalty!.detector.threshold } }
                var improved = [Bool](repeating: false, count: n)
                for e in 0..<n {
                    guard
                        carliniWagnerSucceeds(
                            z[(e * classCount)..<((e + 1) * classCount)], reference: classes[e],
                            confidence: confidence, targeted: targeted),
                        evades?[e] ?? true
                    else { continue }
                    if l2[e] < bestL2[e] { (bestL2[e], succeeded[e]) = (l2[e], true) }
                    if l2[e] < overallBestL2[e] { (overallBestL2[e], improved[e]) = (l2[e], true) }
                }
                if improved.contains(true) { PerSample.copy(adversarial.value, into: &overallBest, where: improved) }
            }
            for e in 0..<n {
                if succeeded[e] {
                    upper[e] = Swift.min(upper[e], constants[e])
                    if upper[e] < 1e9 { constants[e] = (lower[e] + upper[e]) / 2 }
                } else {
                    lower[e] = Swift.max(lower[e], constants[e])
                    constants[e] = upper[e] < 1e9 ? (lower[e] + upper[e]) / 2 : constants[e] * 10
                }
            }
        }
        return overallBest
    }
}

/// Adam on the attack's own variable (TensorFlow's form, as the reference code):
/// `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
/// `w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + 1e-8)`; b1 0.9, b2 0.999.
struct AdamState {
    let learningRate: Float
    let beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8
    var m: [Float]
    var v: [Float]
    var t = 0

    init(count: Int, learningRate: Float) {
        self.learningRate = learningRate
        m = [Float](repeating: 0, count: count)
        v = [Float](repeating: 0, count: count)
    }

    mutating func step(_ w: inout Tensor, gradient: Tensor) {
        precondition(gradient.count == m.count, "Adam: gradient has \(gradient.count) elements, expected \(m.count)")
        t += 1
        let rate = learningRate * (1 - powf(beta2, Float(t))).squareRoot() / (1 - powf(beta1, Float(t)))
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        m.withUnsafeMutableBufferPointer { pm in
            v.withUnsafeMutableBufferPointer { pv in
                w.withUnsafeMutableBufferPointer { pw in
                    gradient.withUnsafeBufferPointer { pg in
                        for i in 0..<pg.count {
                            let g = pg[i]
                            pm[i] = b1 * pm[i] + (1 - b1) * g
                            pv[i] = b2 * pv[i] + (1 - b2) * g * g
                            pw[i] -= rate * pm[i] / (pv[i].squareRoot() + eps)
                        }
                    }
                }
            }
        }
    }
}
