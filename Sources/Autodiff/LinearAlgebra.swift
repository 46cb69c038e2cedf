import Tensors

extension Variable {
    /// Matrix product `[m, k] x [k, n] -> [m, n]` through `cblas_sgemm`.
    public func matmul(_ other: Variable) -> Variable {
        let (a, b) = (value, other.value)
        let (ga, gb) = (requiresGradient, other.requiresGradient)
        return Variable.result(a.matmul(b), [self, other], op: "matmul") { g in
            [
                ga ? g.matmul(b, transposeOther: true) : nil,  // dA = G B^T
                gb ? a.matmul(g, transposeSelf: true) : nil
            ]  // dB = A^T G
        }
    }
}

/// A fully connected layer's op: `x [N, in] * weight^T [in, out] + bias [out] -> [N, out]`
/// (PyTorch's `Linear` layout, weight `[out, in]`), one GEMM forward, two backward.
///
/// `reLU: true` is `linear(...).relu()` as one op: the ReLU in the pass that adds the bias, its backward in the
/// linear's (the same values and gradients bit for bit, one op and one tensor fewer each way).
public func linear(_ x: Variable, weight: Variable, bias: Variable?, reLU: Bool = false) -> Variable {
    precondition(
        x.value.rank == 2 && weight.value.rank == 2,
        "linear needs a [N, in] input and an [out, in] weight, got \(x.shape) and \(weight.shape)")
    precondition(
        x.shape[1] == weight.shape[1],
        "linear: input shape \(x.shape) does not match weight shape \(weight.shape) (expects \(weight.shape[1]) features)")
    let (xv, wv) = (x.value, weight.value)
    let n = xv.shape[0], outputs = wv.shape[0]
    var y = xv.matmul(wv, transposeOther: true)
    if let bias { precondition(bias.shape == [outputs], "linear: bias shape \(bias.shape) does not match [\(outputs)]") }
    // the bias and the ReLU in one pass over the product (the ReLU's `x > 0 ? x : 0`, as the layer alone)
    // (each case its own loop, so that each vectorises)
    func finish(_ b: UnsafePointer<Float>?) {
        y.withUnsafeMutableBufferPointer { out in
            for r in 0..<n {
                let row = out.baseAddress! + r * outputs
                switch (b, reLU) {
                case (let b?, true):
                    for j in 0..<outputs {
                        let value = row[j] + b[j]
                        row[j] = value > 0 ? value : 0
                    }
                case (let b?, false): for j in 0..<outputs { row[j] += b[j] }
                case (nil, true): for j in 0..<outputs { row[j] = row[j] > 0 ? row[j] : 0 }
                case (nil, false): break
                }
            }
        }
    }
    if let bias {
        bias.value.withUnsafeBufferPointer { finish($0.baseAddress!) }
    } else if reLU {
        finish(nil)
    }
    if Variable.noneRequiresGradient(x, weight, bias) { return Variable.untracked(y, x, weight, bias) }
    let (gx, gw, gb) = (x.requiresGradient, weight.requiresGradient, bias?.requiresGradient == true)
    let parents = bias.map { [x, weight, $0] } ?? [x, weight]
    let hasBias = bias != nil  // capture a flag, not the Variable: a Variable holds its tape (no cycle)
    let mask: Tensor? = reLU ? y : nil
    return Variable.result(y, parents, op: reLU ? "linear+relu" : "linear") { g in
        // through the ReLU first: the gradient times 1 where the output is positive, else times 0 (its backward alone)
        let g = mask.map { g.maskedByPositive($0) } ?? g
        var grads: [Tensor?] = [
            gx ? g.matmul(wv) : nil,  // dX = G W       [N, in]
            gw ? g.matmul(xv, transposeSelf: true) : nil  // dW = G^T X     [out, in]
        ]
        if hasBias { grads.append(gb ? g.sum(alongAxis: 0) : nil) }  // db = sum_n G [out]
        return grads
    }
}
