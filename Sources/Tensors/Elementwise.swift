import Foundation

/// Element-wise kernels, parallel over contiguous chunks.
extension Tensor {
    /// The logistic function as the `Sigmoid` layer computes it: `1 / (1 + e^-x)` for `x >= 0`, else `e^x / (1 + e^x)`
    /// (no overflow either way), `expf` of the C library. One definition for the layer and the passes that fuse it.
    @inlinable
    public static func sigmoid(_ x: Float) -> Float { x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x)) }

    /// Applies `transform` to every element.
    @inlinable
    public func map(_ transform: (Float) -> Float) -> Tensor {
        Tensor(shape: shape) { out in
            withUnsafeBufferPointer { x in
                let src = x.baseAddress!
                Parallel.forEachChunk(count) { range in
                    for i in range { out[i] = transform(src[i]) }
                }
            }
        }
    }

    /// Combines two tensors of the same shape element by element.
    @inlinable
    public func zipMap(_ other: Tensor, _ combine: (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape, "element-wise op: shape \(shape) does not match shape \(other.shape)")
        return Tensor(shape: shape) { out in
            withUnsafeBufferPointer { a in
                other.withUnsafeBufferPointer { b in
                    let pa = a.baseAddress!, pb = b.baseAddress!
                    Parallel.forEachChunk(count) { range in
                        for i in range { out[i] = combine(pa[i], pb[i]) }
                    }
                }
            }
        }
    }

    /// Adds `other` (same shape) into `self`, scaled by `alpha`.
    @inlinable
    public mutating func add(_ other: Tensor, scaledBy alpha: Float = 1) {
        precondition(shape == other.shape, "add: shape \(shape) does not match shape \(other.shape)")
        let n = count
        withUnsafeMutableBufferPointer { a in
            other.withUnsafeBufferPointer { b in
                let pa = a.baseAddress!, pb = b.baseAddress!
                Parallel.forEachChunk(n) { range in
                    if alpha == 1 { for i in range { pa[i] += pb[i] } } else { for i in range { pa[i] += alpha * pb[i] } }
                }
            }
        }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor { a.zipMap(b, +) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { a.zipMap(b, -) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { a.zipMap(b, *) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { a.zipMap(b, /) }
    public static prefix func - (a: Tensor) -> Tensor { a.map { -$0 } }

    /// `self * (mask > 0 ? 1 : 0)` element by element: a ReLU's backward with its output as `mask` (the
    /// element-wise ReLU's own expression, so the same bits). Here, so that the loop is specialised.
    public func maskedByPositive(_ mask: Tensor) -> Tensor { zipMap(mask) { $0 * ($1 > 0 ? 1 : 0) } }
    public static func * (a: Tensor, s: Float) -> Tensor { a.map { $0 * s } }
    public static func * (s: Float, a: Tensor) -> Tensor { a.map { $0 * s } }
    public static func + (a: Tensor, s: Float) -> Tensor { a.map { $0 + s } }

    /// Clamps every element into `[low, high]`.
    public func clamped(_ low: Float, _ high: Float) -> Tensor { map { Swift.min(Swift.max($0, low), high) } }

    /// True when every element is finite (no NaN or infinity).
    public var isFinite: Bool { storage.allSatisfy { $0.isFinite } }
}
