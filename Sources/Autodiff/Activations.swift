import Tensors
#if canImport(Glibc)
import Glibc
#endif

// Element-wise nonlinearities; each forward sits beside its derivative.

extension Variable {
    /// Applies an element-wise function `f` whose derivative, expressed through the
    /// input `x` and output `y`, is `derivative(x, y)`.
    func elementwise(_ f: (Float) -> Float, derivative: @escaping (Float, Float) -> Float) -> Variable {
        let x = value, y = value.map(f)
        return Variable.result(y, [self]) { g in
            [Tensor(shape: g.shape) { out in
                g.withUnsafeBufferPointer { pg in
                    x.withUnsafeBufferPointer { px in
                        y.withUnsafeBufferPointer { py in
                            let (a, b, c) = (pg.baseAddress!, px.baseAddress!, py.baseAddress!)
                            Parallel.forEachChunk(g.count) { range in
                                for i in range { out[i] = a[i] * derivative(b[i], c[i]) }
                            }
                        }
                    }
                }
            }]
        }
    }

    /// `max(0, x)`; the derivative at 0 is taken as 0.
    public func relu() -> Variable { elementwise({ $0 > 0 ? $0 : 0 }) { x, _ in x > 0 ? 1 : 0 } }
    /// `1 / (1 + exp(-x))`.
    public func sigmoid() -> Variable {
        elementwise({ $0 >= 0 ? 1 / (1 + expf(-$0)) : expf($0) / (1 + expf($0)) }) { _, y in y * (1 - y) }
    }
    /// Hyperbolic tangent.
    public func tanh() -> Variable { elementwise({ tanhf($0) }) { _, y in 1 - y * y } }
    /// `|x|`; the derivative at 0 is taken as 0.
    public func abs() -> Variable { elementwise({ Swift.abs($0) }) { x, _ in x > 0 ? 1 : (x < 0 ? -1 : 0) } }
    /// `x * x`.
    public func square() -> Variable { elementwise({ $0 * $0 }) { x, _ in 2 * x } }
    /// `sqrt(x)` for `x >= 0` (derivative `1 / (2 sqrt(x))`, 0 at x = 0).
    public func sqrt() -> Variable { elementwise({ $0.squareRoot() }) { _, y in y > 0 ? 0.5 / y : 0 } }
    /// `exp(x)`.
    public func exp() -> Variable { elementwise({ expf($0) }) { _, y in y } }
    /// `log(x)` for `x > 0`.
    public func log() -> Variable { elementwise({ logf($0) }) { x, _ in 1 / x } }
    /// Clamps into `[low, high]`; the gradient passes where the value was inside.
    public func clamped(_ low: Float, _ high: Float) -> Variable {
        elementwise({ Swift.min(Swift.max($0, low), high) }) { x, _ in x >= low && x <= high ? 1 : 0 }
    }
}
