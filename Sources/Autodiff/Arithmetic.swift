import Tensors

// Element-wise arithmetic with broadcasting. Backward reduces each operand's
// gradient to its own shape with `Broadcasting.reduce` (the one un-broadcasting rule).
// Operands of one shape take `Tensor`'s own operators, whose loops are specialised inside `Tensors`:
// through `Broadcasting.apply` (or `Tensor.map`) from here each element was a call of the operator's closure
// (x - D(E(x)) of one image took 1.4 us; the negated gradient of `-` was 3 % of a detector training step).

extension Variable {
    public static func + (a: Variable, b: Variable) -> Variable {
        let value = a.shape == b.shape ? a.value + b.value : Broadcasting.apply(a.value, b.value, +)
        let (sa, sb, ga, gb) = (a.shape, b.shape, a.requiresGradient, b.requiresGradient)
        return result(value, [a, b], op: "+") { g in
            [ga ? Broadcasting.reduce(g, to: sa) : nil, gb ? Broadcasting.reduce(g, to: sb) : nil]
        }
    }

    public static func - (a: Variable, b: Variable) -> Variable {
        let value = a.shape == b.shape ? a.value - b.value : Broadcasting.apply(a.value, b.value, -)
        let (sa, sb, ga, gb) = (a.shape, b.shape, a.requiresGradient, b.requiresGradient)
        return result(value, [a, b], op: "-") { g in
            [ga ? Broadcasting.reduce(g, to: sa) : nil, gb ? Broadcasting.reduce(-g, to: sb) : nil]
        }
    }

    public static func * (a: Variable, b: Variable) -> Variable {
        let value = a.shape == b.shape ? a.value * b.value : Broadcasting.apply(a.value, b.value, *)
        let (av, bv, ga, gb) = (a.value, b.value, a.requiresGradient, b.requiresGradient)
        return result(value, [a, b], op: "*") { g in
            [
                ga ? Broadcasting.reduce(Broadcasting.apply(g, bv, *), to: av.shape) : nil,
                gb ? Broadcasting.reduce(Broadcasting.apply(g, av, *), to: bv.shape) : nil
            ]
        }
    }

    public static func / (a: Variable, b: Variable) -> Variable {
        let value = a.shape == b.shape ? a.value / b.value : Broadcasting.apply(a.value, b.value, /)
        let (av, bv, ga, gb) = (a.value, b.value, a.requiresGradient, b.requiresGradient)
        return result(value, [a, b], op: "/") { g in
            // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -(a/b)/b
            [
                ga ? Broadcasting.reduce(Broadcasting.apply(g, bv, /), to: av.shape) : nil,
                gb ? Broadcasting.reduce(Broadcasting.apply(g * value, bv) { -$0 / $1 }, to: bv.shape) : nil
            ]
        }
    }

    public static prefix func - (a: Variable) -> Variable { a * -1 }

    public static func + (a: Variable, s: Float) -> Variable {
        result(a.value + s, [a], op: "+ scalar") { g in [g] }
    }

    public static func - (a: Variable, s: Float) -> Variable { a + (-s) }

    public static func * (a: Variable, s: Float) -> Variable {
        result(a.value * s, [a], op: "* scalar") { g in [g * s] }
    }

    public static func * (s: Float, a: Variable) -> Variable { a * s }
    public static func / (a: Variable, s: Float) -> Variable { a * (1 / s) }
}
