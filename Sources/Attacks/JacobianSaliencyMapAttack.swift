import Autodiff
import Tensors

/// The Jacobian-based saliency map attack (Papernot et al. 2016; cleverhans v3
/// `jsma_symbolic` semantics), a targeted L0 attack.
///
/// Each iteration, for every image not yet classified as its target `t`, the
/// Jacobian of the LOGITS `Z` with respect to the pixels gives
/// `alpha_p = dZ_t/dx_p` and `beta_p = sum_{i != t} dZ_i/dx_p`. Among the pixels still
/// in the search domain the attack picks the PAIR `(p, q)`, `p != q`, maximising
///
///     -(alpha_p + alpha_q) * (beta_p + beta_q)   with  alpha_p + alpha_q > 0, beta_p + beta_q < 0
///
/// (signs reversed in decrease mode), sets `x_p, x_q <- clip(x + theta, 0, 1)` and drops
/// both from the domain. Increase mode (`theta > 0`) starts with the pixels below 1,
/// decrease mode (`theta < 0`) with those above 0. At most
/// `floor(features * gamma / 2)` iterations, so at most a fraction `gamma` of the
/// features change; an image stops on reaching its target, when fewer than 2
/// pixels remain, or when no pair satisfies the sign conditions (cleverhans would
/// then modify pixel 0, an artefact of taking the arg-max of an all-zero table).
///
/// Untargeted goals draw a random target `!= label` per image from that image's stream (`ImageRandomness`).
/// The Jacobian rows needed take two backward passes for the whole batch
/// (`alpha`: seed one-hot at `t`; `alpha + beta`: seed all ones), and the pair
/// search scans `O(d^2)` pairs in `O(d)` memory per image (no `d x d` table).
/// Defaults: theta 1, gamma 0.1.
public struct JacobianSaliencyMapAttack: Attack {
    /// The change applied to each chosen pixel (> 0 increase mode, < 0 decrease mode).
    public let theta: Float
    /// The largest fraction of features that may change.
    public let gamma: Float

    /// Creates the attack; throws when theta is 0 or gamma is outside (0, 1].
    public init(theta: Float = 1, gamma: Float = 0.1) throws {
        guard theta != 0, theta.isFinite else { throw AttackConfigurationError("JSMA: theta must be non-zero, got \(theta)") }
        guard gamma > 0, gamma <= 1 else { throw AttackConfigurationError("JSMA: gamma must be in (0, 1], got \(gamma)") }
        (self.theta, self.gamma) = (theta, gamma)
    }

    public var name: String { "JSMA" }

    public var settings: [String: String] { ["theta": describe(theta), "gamma": describe(gamma)] }

    /// The iteration budget for `features` features: `floor(features * gamma / 2)`.
    public func maximumIterations(features: Int) -> Int { Int((Double(features) * Double(gamma) / 2).rounded(.down)) }

    public func perturb(
        _ images: Tensor, labels: [Int], goal: AttackGoal, model: DifferentiableClassifier,
        randomness: ImageRandomness
    ) -> Tensor {
        let n = images.batchSize, features = images.itemCount
        guard n > 0 else { return images }
        let classCount = model.classCount(images)
        precondition(classCount >= 2, "JSMA needs at least 2 classes, got \(classCount)")
        var targets = goal.referenceClasses(labels: labels, count: n, classCount: classCount)
        if !goal.isTargeted { targets = AttackGoal.randomTargets(labels: labels, classCount: classCount, randomness: randomness) }
        let increase = theta > 0
        var x = images
        var domain = images.storage.map { increase ? $0 < 1 : $0 > 0 }  // [N * features]
        var domainCount = (0..<n).map { i in domain[(i * features)..<((i + 1) * features)].lazy.filter { $0 }.count }
        var active = Array(0..<n)
        for _ in 0..<maximumIterations(features: features) {
            active = active.filter { domainCount[$0] >= 2 }
            if active.isEmpty { break }
            let tape = Tape(recordsParameters: false)
            let input = tape.watch(x.gather(active))  // [m, C, H, W]
            let logits = model.logits(input)  // [m, K]
            let predicted = logits.value.argmaxRows()
            var targetSeed = Tensor.zeros(logits.shape)
            for (row, i) in active.enumerated() { targetSeed.storage[row * classCount + targets[i]] = 1 }
            let zeros = Tensor.zeros(input.shape)
            let alpha = tape.gradients(of: logits, seed: targetSeed)[input] ?? zeros  // dZ_t/dx            [m, ...]
            let total = tape.gradients(of: logits, seed: Tensor(shape: logits.shape, repeating: 1))[input] ?? zeros
            // The pair searches are independent per image: run them in parallel.
            let searching = active.indices.filter { predicted[$0] != targets[active[$0]] }
            var pairs = [(Int, Int)?](repeating: nil, count: searching.count)
            pairs.withUnsafeMutableBufferPointer { out in
                Parallel.forEachChunk(searching.count, minimumPerChunk: 1) { range in
                    for s in range {
                        let (row, i) = (searching[s], active[searching[s]])
                        out[s] = Self.bestPair(
                            alpha: alpha.storage[(row * features)..<((row + 1) * features)],
                            total: total.storage[(row * features)..<((row + 1) * features)],
                            domain: domain[(i * features)..<((i + 1) * features)], increase: increase)
                    }
                }
            }
            var stillActive: [Int] = []
            for (s, row) in searching.enumerated() {
                guard let (p, q) = pairs[s] else { continue }
                let i = active[row]
                for pixel in [p, q] {
                    x.storage[i * features + pixel] = Swift.min(Swift.max(x.storage[i * features + pixel] + theta, 0), 1)
                    domain[i * features + pixel] = false
                }
                domainCount[i] -= 2
                stillActive.append(i)
            }
            active = stillActive
        }
        return x
    }

    /// The admissible pair `(p, q)` of domain pixels with the largest
    /// `-(alpha_p + alpha_q)(beta_p + beta_q)`, `beta = total - alpha`; nil when none.
    /// `O(d^2)` time, `O(d)` memory for `d` domain pixels.
    static func bestPair(
        alpha: ArraySlice<Float>, total: ArraySlice<Float>, domain: ArraySlice<Bool>,
        increase: Bool
    ) -> (Int, Int)? {
        var pixels: [Int] = [], a: [Float] = [], b: [Float] = []
        for (offset, inDomain) in domain.enumerated() where inDomain {
            let ap = alpha[alpha.startIndex + offset]
            pixels.append(offset)
            a.append(ap)
            b.append(total[total.startIndex + offset] - ap)
        }
        let sign: Float = increase ? 1 : -1
        var bestScore: Float = 0, best: (Int, Int)? = nil
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                let m = pa.count
                for i in 0..<max(0, m - 1) {
                    let (ai, bi) = (pa[i], pb[i])
                    for j in (i + 1)..<m {
                        let sumAlpha = ai + pa[j], sumBeta = bi + pb[j]
                        guard sign * sumAlpha > 0, sign * sumBeta < 0 else { continue }
                        let score = -sumAlpha * sumBeta
                        if score > bestScore { (bestScore, best) = (score, (i, j)) }
                    }
                }
            }
        }
        return best.map { (pixels[$0.0], pixels[$0.1]) }
    }
}
