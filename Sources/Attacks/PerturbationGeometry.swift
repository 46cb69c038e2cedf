import Autodiff
import Tensors

#if canImport(Glibc)
    import Glibc
#endif

// Per-sample geometry shared by the gradient attacks: norms, steepest-ascent
// directions, projections onto the eps ball, random starts, row selection.
// A "sample" is one image `[C, H, W]` of a batch `[N, C, H, W]`.

/// The smallest squared norm a gradient is divided by (cleverhans' `avoid_zero_div`).
let avoidZeroDivision: Float = 1e-12

enum PerSample {
    /// Multiplies sample `i` by `factors[i]`.
    static func scaled(_ t: Tensor, by factors: [Float]) -> Tensor {
        let item = t.itemCount
        precondition(factors.count == t.batchSize, "scaled: \(factors.count) factors for \(t.batchSize) samples")
        return Tensor(shape: t.shape) { out in
            t.withUnsafeBufferPointer { p in
                for i in 0..<factors.count {
                    for j in 0..<item { out[i * item + j] = p[i * item + j] * factors[i] }
                }
            }
        }
    }

    /// Copies the samples of `source` where `mask` is true into `destination` (same shapes).
    static func copy(_ source: Tensor, into destination: inout Tensor, where mask: [Bool]) {
        precondition(source.shape == destination.shape, "copy: shape \(source.shape) does not match \(destination.shape)")
        let item = source.itemCount
        destination.withUnsafeMutableBufferPointer { d in
            source.withUnsafeBufferPointer { s in
                for (i, take) in mask.enumerated() where take {
                    for j in 0..<item { d[i * item + j] = s[i * item + j] }
                }
            }
        }
    }

    /// Writes the samples of `part` (`[indices.count, ...]`) to rows `indices` of `destination`.
    static func scatter(_ part: Tensor, into destination: inout Tensor, at indices: [Int]) {
        let item = destination.itemCount
        precondition(part.batchSize == indices.count && part.itemCount == item, "scatter: shape mismatch")
        destination.withUnsafeMutableBufferPointer { d in
            part.withUnsafeBufferPointer { s in
                for (row, i) in indices.enumerated() {
                    for j in 0..<item { d[i * item + j] = s[row * item + j] }
                }
            }
        }
    }
}

extension PerturbationNorm {
    /// The unit step that maximises a linearised loss, per sample (cleverhans'
    /// `optimize_linear`): `sign(g)` for L-inf, `g / sqrt(max(1e-12, sum g^2))` for L2.
    func steepestAscentDirection(_ gradient: Tensor) -> Tensor {
        switch self {
        case .lInfinity:
            return gradient.map { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }
        case .l2:
            let factors = gradient.l2NormsPerSample().map { 1 / max(avoidZeroDivision, $0 * $0).squareRoot() }
            return PerSample.scaled(gradient, by: factors)
        }
    }

    /// One step of the projected ascent: `clip(images + P_radius(x + stepSize * d(gradient) - images), 0, 1)`.
    /// L-inf in one pass over the pixels, with the operations of the separate tensor operations in their order
    /// (the same bits as the L2 path's composition would give it): the sign, the scaled add, the difference,
    /// the clamp to the ball, the sum and the clamp to the image range.
    public func ascentStep(from x: Tensor, gradient: Tensor, images: Tensor, stepSize: Float, radius: Float) -> Tensor {
        guard self == .lInfinity else {
            var moved = x
            moved.add(steepestAscentDirection(gradient), scaledBy: stepSize)
            return (images + project(moved - images, radius: radius)).clamped(0, 1)
        }
        precondition(
            x.shape == gradient.shape && x.shape == images.shape, "ascent step: shapes \(x.shape), \(gradient.shape), \(images.shape)")
        return Tensor(shape: x.shape) { out in
            x.withUnsafeBufferPointer { x in
                gradient.withUnsafeBufferPointer { g in
                    images.withUnsafeBufferPointer { start in
                        for i in 0..<x.count {
                            let direction: Float = g[i] > 0 ? 1 : (g[i] < 0 ? -1 : 0)
                            let delta = (x[i] + stepSize * direction) - start[i]
                            let projected = Swift.min(Swift.max(delta, -radius), radius)
                            out[i] = Swift.min(Swift.max(start[i] + projected, 0), 1)
                        }
                    }
                }
            }
        }
    }

    /// Projects each sample of the perturbation `delta` onto the ball of `radius`
    /// (cleverhans' `clip_eta`): clamp to `[-radius, radius]` for L-inf, scale by
    /// `min(1, radius / ||delta||_2)` for L2.
    func project(_ delta: Tensor, radius: Float) -> Tensor {
        switch self {
        case .lInfinity:
            return delta.clamped(-radius, radius)
        case .l2:
            let factors = delta.l2NormsPerSample().map { min(1, radius / max(avoidZeroDivision, $0 * $0).squareRoot()) }
            return PerSample.scaled(delta, by: factors)
        }
    }

    /// A point drawn uniformly from the ball of `radius`, per sample: uniform in the
    /// box for L-inf; for L2 a Gaussian direction scaled to radius `r * u^(1/d)`
    /// (cleverhans' `random_lp_vector`), `d` the number of features.
    func randomPoint(shape: [Int], radius: Float, using generator: inout SeededGenerator) -> Tensor {
        switch self {
        case .lInfinity:
            return Tensor.uniform(shape, low: -radius, high: radius, using: &generator)
        case .l2:
            let direction = Tensor.normal(shape, using: &generator)
            let n = shape.first ?? 1, d = Float(max(1, direction.itemCount))
            let norms = direction.l2NormsPerSample()
            let factors = (0..<n).map { i in
                radius * powf(generator.nextUniform(), 1 / d) / max(avoidZeroDivision, norms[i])
            }
            return PerSample.scaled(direction, by: factors)
        }
    }

    /// The norm of every sample of `t`.
    func norms(_ t: Tensor) -> [Float] {
        self == .lInfinity ? t.lInfinityNormsPerSample() : t.l2NormsPerSample()
    }
}

/// How gradient attacks cut a batch.
public enum AttackBatching {
    /// Images per slice of a batch in the gradient attacks (FGSM, BIM, PGD, the adaptive PGD); 16 unless set.
    /// An attack runs all its steps on one slice, then on the next, so its tape holds the activations and
    /// gradients of one slice, not of the whole batch, and they stay in cache: `dafar-attack --attack pgd
    /// --count 1000 --batch-size 1000` on the MNIST network of Table 1 peaked at 261 MB instead of 425 and ran
    /// 182-187 instead of 124-134 images/s; at batch 128, whose activations fit the 32 MB L3 (and the kernels
    /// prefetch the next image), PGD-40 measured the same sliced or whole. Samples do not interact and the
    /// random starts are drawn for the whole batch, so the results do not depend on the slicing where the
    /// network's kernels give each image the same bits in any batch of two or more (the direct 3x3 kernels,
    /// the AVX-512 GEMM kernel; `AttackBatchingTests`; the adversarial set above was the same bits);
    /// OpenBLAS's products round the last bits by call shape (see `BLAS.gemm`).
    /// At least 2 (smaller values count as 2): a single image takes other kernels (`BLAS.gemm`'s matrix-vector
    /// product), which round differently.
    nonisolated(unsafe) public static var imagesPerPass = 16

    /// The slices of a batch of `count` images: `max(1, count / imagesPerPass)` consecutive ranges whose sizes
    /// differ by at most one (16 x 8 for 128 images, one of 17 for 17), none smaller than `imagesPerPass`
    /// unless the whole batch is.
    static func slices(_ count: Int) -> [Range<Int>] {
        let parts = max(1, count / max(2, imagesPerPass))
        return (0..<parts).map { count * $0 / parts..<count * ($0 + 1) / parts }
    }
}

/// The gradient of `sum_i objective(x, rows)_i` with respect to `x`, the images `rows` of the attacked batch:
/// since samples do not interact, row `i` is `d objective_i / d x_i`. One forward and one backward pass.
func objectiveGradient(at x: Tensor, rows: Range<Int>, _ objective: (Variable, Range<Int>) -> Variable) -> Tensor {
    let tape = Tape(recordsParameters: false)
    let input = tape.watch(x)
    let value = objective(input, rows)
    return tape.gradients(of: value.sum())[input] ?? Tensor.zeros(x.shape)
}

/// `x.gather(indices)`, or `x` itself when every row is selected in order.
func rows(_ x: Tensor, _ indices: [Int]) -> Tensor {
    indices.count == x.batchSize && indices.enumerated().allSatisfy { $0.offset == $0.element } ? x : x.gather(indices)
}

/// Formats a number for `settings`.
func describe(_ value: Float) -> String { "\(value)" }
