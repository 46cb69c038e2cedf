/// NumPy-style broadcasting for element-wise binary ops, and its reverse
/// (summing a gradient back to a broadcast operand's shape). The fast paths
/// (equal shapes, a scalar operand) avoid index arithmetic altogether.
public enum Broadcasting {
    /// The shape two operands broadcast to, or nil if they do not broadcast.
    public static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var result = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            guard da == db || da == 1 || db == 1 else { return nil }
            result[i] = da == 1 ? db : da
        }
        return result
    }

    /// Strides of `shape` seen inside `target` (0 along broadcast axes).
    @usableFromInline
    static func strides(of shape: [Int], in target: [Int]) -> [Int] {
        var strides = [Int](repeating: 0, count: target.count)
        var running = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            let t = i + (target.count - shape.count)
            strides[t] = shape[i] == 1 ? 0 : running
            running *= shape[i]
        }
        return strides
    }

    /// Visits every element of `target` with the matching offsets into `a` and `b`.
    @inlinable
    static func forEachOffset(_ target: [Int], _ sa: [Int], _ sb: [Int], _ body: (Int, Int, Int) -> Void) {
        let rank = target.count, count = target.elementCount
        if count == 0 { return }
        var index = [Int](repeating: 0, count: rank)
        var oa = 0, ob = 0
        for i in 0..<count {
            body(i, oa, ob)
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                oa += sa[axis]; ob += sb[axis]
                if index[axis] < target[axis] { break }
                oa -= sa[axis] * target[axis]; ob -= sb[axis] * target[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// `combine(a, b)` with broadcasting (inlinable, so that each caller's `combine` is inlined
    /// into the loops).
    @inlinable
    public static func apply(_ a: Tensor, _ b: Tensor, _ combine: (Float, Float) -> Float) -> Tensor {
        if a.shape == b.shape { return a.zipMap(b, combine) }
        if b.count == 1 && b.rank <= a.rank { let s = b.storage[0]; return a.map { combine($0, s) }.reshaped(a.shape) }
        if a.count == 1 && a.rank <= b.rank { let s = a.storage[0]; return b.map { combine(s, $0) } }
        guard let target = shape(a.shape, b.shape) else {
            preconditionFailure("shape \(a.shape) does not broadcast with shape \(b.shape)")
        }
        let sa = strides(of: a.shape, in: target), sb = strides(of: b.shape, in: target)
        return Tensor(shape: target) { out in
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    forEachOffset(target, sa, sb) { i, oa, ob in out[i] = combine(pa[oa], pb[ob]) }
                }
            }
        }
    }

    /// Sums `gradient` (shaped like the broadcast result) back to `shape`.
    public static func reduce(_ gradient: Tensor, to shape: [Int]) -> Tensor {
        if gradient.shape == shape { return gradient }
        if shape.elementCount == 1 { return Tensor(shape: shape, storage: [gradient.sum()]) }
        let target = gradient.shape
        let sa = strides(of: shape, in: target), zero = [Int](repeating: 0, count: target.count)
        return Tensor(shape: shape) { out in
            out.initialize(repeating: 0, count: shape.elementCount)
            gradient.withUnsafeBufferPointer { g in
                forEachOffset(target, sa, zero) { i, oa, _ in out[oa] += g[i] }
            }
        }
    }
}
