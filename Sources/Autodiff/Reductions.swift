import Tensors

extension Variable {
    /// Sum of all elements, as a scalar (shape `[]`).
    public func sum() -> Variable {
        let inputShape = shape
        return Variable.result(Tensor(value.sum()), [self], op: "sum") { g in [Tensor(shape: inputShape, repeating: g.storage[0])] }
    }

    /// Mean of all elements, as a scalar (shape `[]`).
    public func mean() -> Variable { sum() * (1 / Float(max(1, value.count))) }

    /// Sums over `axis`, removing it.
    public func sum(alongAxis axis: Int) -> Variable {
        let inputShape = shape
        var kept = inputShape
        kept[axis] = 1
        return Variable.result(value.sum(alongAxis: axis), [self], op: "sum(alongAxis:)") { g in
            [Broadcasting.apply(Tensor(shape: inputShape), g.reshaped(kept), +)]
        }
    }

    /// Per-sample sum over every axis but the first: `[N, ...] -> [N]`.
    public func sumPerSample() -> Variable {
        flattened().sum(alongAxis: 1)
    }

    /// Row-wise log-sum-exp over the last axis: `[N, K] -> [N]` (max-shifted).
    public func logSumExp() -> Variable {
        let x = value
        let y = x.logSumExpRows()
        return Variable.result(y, [self], op: "logSumExp") { g in
            // d/dx_ij = g_i * softmax(x)_ij
            let p = x.softmaxRows()
            let k = x.shape.last ?? 1
            return [
                Tensor(shape: x.shape) { out in
                    p.withUnsafeBufferPointer { pp in
                        g.withUnsafeBufferPointer { pg in
                            for i in 0..<p.count { out[i] = pp[i] * pg[i / k] }
                        }
                    }
                }
            ]
        }
    }

    /// Row-wise maximum over the last axis: `[N, K] -> [N]`; the gradient goes to the (first) maximum.
    public func maxRows() -> Variable {
        let x = value, k = x.shape.last ?? 1
        let argmax = x.argmaxRows()
        let y = Tensor(shape: Array(x.shape.dropLast()), storage: argmax.enumerated().map { x.storage[$0.offset * k + $0.element] })
        return Variable.result(y, [self], op: "maxRows") { g in
            var d = Tensor.zeros(x.shape)
            for (i, j) in argmax.enumerated() { d.storage[i * k + j] = g.storage[i] }
            return [d]
        }
    }

    /// Picks `x[i, indices[i]]` from each row of `[N, K]`: -> `[N]`.
    public func gatherRows(_ indices: [Int]) -> Variable {
        let x = value, k = x.shape.last ?? 1
        precondition(
            x.rank == 2 && indices.count == x.shape[0],
            "gatherRows needs a [N, K] value and N indices, got shape \(x.shape) and \(indices.count) indices")
        precondition(indices.allSatisfy { $0 >= 0 && $0 < k }, "gatherRows: an index is outside 0..<\(k)")
        let y = Tensor(shape: [indices.count], storage: indices.enumerated().map { x.storage[$0.offset * k + $0.element] })
        return Variable.result(y, [self], op: "gatherRows") { g in
            var d = Tensor.zeros(x.shape)
            for (i, j) in indices.enumerated() { d.storage[i * k + j] = g.storage[i] }
            return [d]
        }
    }
}
