#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reductions and row-wise softmax kernels.
extension Tensor {
    /// Sum of all elements, accumulated in Double (exact to Float precision for any
    /// realistic count; a Float accumulator drifts by ~1e-5 relative over 1e5 terms).
    public func sum() -> Float {
        withUnsafeBufferPointer { x in
            var s: Double = 0
            for v in x { s += Double(v) }
            return Float(s)
        }
    }

    /// Mean of all elements.
    public func mean() -> Float { count == 0 ? 0 : sum() / Float(count) }

    /// Sums over `axis`, removing it: `[a, b, c]` summed over axis 1 is `[a, c]`.
    public func sum(alongAxis axis: Int) -> Tensor {
        precondition(axis >= 0 && axis < rank, "sum: axis \(axis) out of range for shape \(shape)")
        let outer = shape[..<axis].elementCount, length = shape[axis], inner = shape[(axis + 1)...].elementCount
        var newShape = shape
        newShape.remove(at: axis)
        return Tensor(shape: newShape) { out in
            out.initialize(repeating: 0, count: outer * inner)
            withUnsafeBufferPointer { x in
                for o in 0..<outer {
                    for l in 0..<length {
                        let src = x.baseAddress! + (o * length + l) * inner, dst = out + o * inner
                        for i in 0..<inner { dst[i] += src[i] }
                    }
                }
            }
        }
    }

    /// For a `[rows, columns]` view (`columns` = last axis), the index of each row's maximum.
    public func argmaxRows() -> [Int] {
        let columns = shape.last ?? 1, rows = count / max(1, columns)
        return withUnsafeBufferPointer { x in
            (0..<rows).map { r in
                var best = 0
                for j in 1..<max(1, columns) where x[r * columns + j] > x[r * columns + best] { best = j }
                return best
            }
        }
    }

    /// Row-wise log-softmax over the last axis (max-shifted, numerically stable):
    /// `(x_j - max) - log sum_k exp(x_k - max)`, which keeps full precision for large
    /// logits (subtracting a large `max + log sum` would lose the low bits).
    public func logSoftmaxRows() -> Tensor {
        let columns = shape.last ?? 1, rows = count / max(1, columns)
        return Tensor(shape: shape) { out in
            withUnsafeBufferPointer { x in
                let src = x.baseAddress!
                Parallel.forEachChunk(rows, minimumPerChunk: max(1, 4096 / max(1, columns))) { range in
                    for r in range {
                        let row = src + r * columns, dst = out + r * columns
                        var m = -Float.infinity
                        for j in 0..<columns { m = Swift.max(m, row[j]) }
                        var s: Float = 0
                        for j in 0..<columns { s += expf(row[j] - m) }
                        let logS = logf(s)
                        for j in 0..<columns { dst[j] = (row[j] - m) - logS }
                    }
                }
            }
        }
    }

    /// Row-wise softmax over the last axis (max-shifted, numerically stable):
    /// `exp(x_j - max) / sum_k exp(x_k - max)`.
    public func softmaxRows() -> Tensor {
        let columns = shape.last ?? 1, rows = count / max(1, columns)
        return Tensor(shape: shape) { out in
            withUnsafeBufferPointer { x in
                let src = x.baseAddress!
                Parallel.forEachChunk(rows, minimumPerChunk: max(1, 4096 / max(1, columns))) { range in
                    for r in range {
                        let row = src + r * columns, dst = out + r * columns
                        var m = -Float.infinity
                        for j in 0..<columns { m = Swift.max(m, row[j]) }
                        var s: Float = 0
                        for j in 0..<columns { dst[j] = expf(row[j] - m); s += dst[j] }
                        let scale = 1 / s
                        for j in 0..<columns { dst[j] *= scale }
                    }
                }
            }
        }
    }

    /// Row-wise log-sum-exp over the last axis: `[rows, columns]` -> `[rows]`.
    public func logSumExpRows() -> Tensor {
        let columns = shape.last ?? 1, rows = count / max(1, columns)
        return Tensor(shape: Array(shape.dropLast())) { out in
            withUnsafeBufferPointer { x in
                for r in 0..<rows {
                    let row = x.baseAddress! + r * columns
                    var m = -Float.infinity
                    for j in 0..<columns { m = Swift.max(m, row[j]) }
                    var s: Float = 0
                    for j in 0..<columns { s += expf(row[j] - m) }
                    out[r] = m + logf(s)
                }
            }
        }
    }
}

// MARK: - Per-sample norms (the package's one copy; attacks, losses, reports and tools call these)

extension Tensor {
    /// `||t_i||_2` over every axis but the first, `[N, ...] -> [N]` (Float sums in element order).
    public func l2NormsPerSample() -> [Float] {
        let n = batchSize, item = itemCount
        return withUnsafeBufferPointer { p in
            (0..<n).map { i in
                var s: Float = 0
                for j in 0..<item { let e = p[i * item + j]; s += e * e }
                return s.squareRoot()
            }
        }
    }

    /// `max_j |t_ij|` over every axis but the first, `[N, ...] -> [N]`.
    public func lInfinityNormsPerSample() -> [Float] {
        let n = batchSize, item = itemCount
        return withUnsafeBufferPointer { p in
            (0..<n).map { i in
                var m: Float = 0
                for j in 0..<item { m = Swift.max(m, Swift.abs(p[i * item + j])) }
                return m
            }
        }
    }

    /// `(||a_i - b_i||_2, max_j |a_ij - b_ij|)` of matching samples of two tensors of one shape.
    public static func distancesPerSample(_ a: Tensor, _ b: Tensor) -> (l2: [Float], lInfinity: [Float]) {
        precondition(a.shape == b.shape, "per-sample distances need one shape, got \(a.shape) and \(b.shape)")
        let difference = a - b
        return (difference.l2NormsPerSample(), difference.lInfinityNormsPerSample())
    }
}
