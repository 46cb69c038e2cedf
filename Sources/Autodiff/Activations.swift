import Tensors
#if canImport(Glibc)
    import Glibc
#endif

// Element-wise nonlinearities; each forward sits beside its derivative. Each function is a
// type, so that `elementwise` is specialised for it: the loops call no closure per element.

/// An element-wise function with its derivative expressed through the input `x` and output `y`.
protocol ElementwiseFunction {
    static func value(_ x: Float) -> Float
    static func derivative(x: Float, y: Float) -> Float
    /// Whether `derivative` reads `x` (else only `y` is kept for the backward pass).
    static var derivativeNeedsInput: Bool { get }
    /// The elements per thread below which the forward pass does not split (`Parallel.forEachChunk`): 32768 for
    /// a few instructions an element; 256 for functions that call the C library (`expf`, about 2.5 ns an
    /// element), so that one image's output sigmoid (784 values, 2 us on one thread) takes two cores.
    static var minimumPerChunk: Int { get }
}

extension ElementwiseFunction {
    static var derivativeNeedsInput: Bool { true }
    static var minimumPerChunk: Int { 32768 }
}

enum ReLUFunction: ElementwiseFunction {
    static func value(_ x: Float) -> Float { x > 0 ? x : 0 }
    static func derivative(x: Float, y: Float) -> Float { y > 0 ? 1 : 0 }  // y > 0 exactly when x > 0
    static var derivativeNeedsInput: Bool { false }
}

enum SigmoidFunction: ElementwiseFunction {
    static func value(_ x: Float) -> Float { Tensor.sigmoid(x) }
    static func derivative(x: Float, y: Float) -> Float { y * (1 - y) }
    static var derivativeNeedsInput: Bool { false }
    static var minimumPerChunk: Int { 256 }
}

enum TanhFunction: ElementwiseFunction {
    static func value(_ x: Float) -> Float { tanhf(x) }
    static func derivative(x: Float, y: Float) -> Float { 1 - y * y }
    static var derivativeNeedsInput: Bool { false }
    static var minimumPerChunk: Int { 256 }
}

enum AbsFunction: ElementwiseFunction {
    static func value(_ x: Float) -> Float { Swift.abs(x) }
    static func derivative(x: Float, y: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : 0) }
}

enum SquareFunction: ElementwiseFunction {
    static func value(_ x: Float) -> Float { x * x }
    static func derivative(x: Float, y: Float) -> Float { 2 * x }
}

enum SquareRootFunction: ElementwiseFunction {
    static func value(_ x: Float) -> Float { x.squareRoot() }
    static func derivative(x: Float, y: Float) -> Float { y > 0 ? 0.5 / y : 0 }
    static var derivativeNeedsInput: Bool { false }
}

enum ExpFunction: ElementwiseFunction {
    static func value(_ x: Float) -> Float { expf(x) }
    static func derivative(x: Float, y: Float) -> Float { y }
    static var derivativeNeedsInput: Bool { false }
    static var minimumPerChunk: Int { 256 }
}

enum LogFunction: ElementwiseFunction {
    static func value(_ x: Float) -> Float { logf(x) }
    static func derivative(x: Float, y: Float) -> Float { 1 / x }
    static var minimumPerChunk: Int { 256 }
}

extension Variable {
    /// Applies `F` element-wise; backward multiplies the upstream gradient by `F.derivative`.
    func elementwise<F: ElementwiseFunction>(_ function: F.Type) -> Variable {
        let y = Tensor(shape: shape) { out in
            value.withUnsafeBufferPointer { px in
                let src = px.baseAddress!
                Parallel.forEachChunk(px.count, minimumPerChunk: F.minimumPerChunk) { range in
                    for i in range { out[i] = F.value(src[i]) }
                }
            }
        }
        let x: Tensor? = F.derivativeNeedsInput ? value : nil
        return Variable.result(y, [self], op: "elementwise") { g in
            [
                Tensor(shape: g.shape) { out in
                    g.withUnsafeBufferPointer { pg in
                        y.withUnsafeBufferPointer { py in
                            let (a, c) = (pg.baseAddress!, py.baseAddress!)
                            if let x {
                                x.withUnsafeBufferPointer { px in
                                    let b = px.baseAddress!
                                    Parallel.forEachChunk(pg.count, minimumPerChunk: 32768) { range in
                                        for i in range { out[i] = a[i] * F.derivative(x: b[i], y: c[i]) }
                                    }
                                }
                            } else {
                                Parallel.forEachChunk(pg.count, minimumPerChunk: 32768) { range in
                                    for i in range { out[i] = a[i] * F.derivative(x: 0, y: c[i]) }
                                }
                            }
                        }
                    }
                }
            ]
        }
    }

    /// `max(0, x)`; the derivative at 0 is taken as 0.
    public func relu() -> Variable { elementwise(ReLUFunction.self) }
    /// `1 / (1 + exp(-x))`.
    public func sigmoid() -> Variable { elementwise(SigmoidFunction.self) }
    /// Hyperbolic tangent.
    public func tanh() -> Variable { elementwise(TanhFunction.self) }
    /// `|x|`; the derivative at 0 is taken as 0.
    public func abs() -> Variable { elementwise(AbsFunction.self) }
    /// `x * x`.
    public func square() -> Variable { elementwise(SquareFunction.self) }
    /// `sqrt(x)` for `x >= 0` (derivative `1 / (2 sqrt(x))`, 0 at x = 0).
    public func sqrt() -> Variable { elementwise(SquareRootFunction.self) }
    /// `exp(x)`.
    public func exp() -> Variable { elementwise(ExpFunction.self) }
    /// `log(x)` for `x > 0`.
    public func log() -> Variable { elementwise(LogFunction.self) }
    /// Clamps into `[low, high]`; the gradient passes where the value was inside.
    public func clamped(_ low: Float, _ high: Float) -> Variable {
        let x = value
        return Variable.result(value.clamped(low, high), [self], op: "clamped") { g in
            [
                Tensor(shape: g.shape) { out in
                    g.withUnsafeBufferPointer { pg in
                        x.withUnsafeBufferPointer { px in
                            for i in 0..<pg.count { out[i] = px[i] >= low && px[i] <= high ? pg[i] : 0 }
                        }
                    }
                }
            ]
        }
    }
}
