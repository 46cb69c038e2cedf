import Tensors

/// Softmax cross-entropy on logits `[N, K]` with integer labels, per sample: `[N]`.
///
/// `-log softmax(logits)[i, label_i]`, computed through a max-shifted log-softmax.
public func softmaxCrossEntropyPerSample(logits: Variable, labels: [Int]) -> Variable {
    let x = logits.value
    precondition(
        x.rank == 2 && labels.count == x.shape[0],
        "cross-entropy needs [N, K] logits and N labels, got shape \(x.shape) and \(labels.count) labels")
    let k = x.shape[1]
    precondition(labels.allSatisfy { $0 >= 0 && $0 < k }, "cross-entropy: a label is outside 0..<\(k)")
    let logp = x.logSoftmaxRows()
    let losses = Tensor(shape: [labels.count], storage: labels.enumerated().map { -logp.storage[$0.offset * k + $0.element] })
    return Variable.result(losses, [logits], op: "softmaxCrossEntropy") { g in
        // d loss_i / d x_ij = g_i * (softmax_ij - [j == label_i])
        var d = logp.map { expf($0) }
        d.withUnsafeMutableBufferPointer { p in
            for (i, label) in labels.enumerated() {
                p[i * k + label] -= 1
                for j in 0..<k { p[i * k + j] *= g.storage[i] }
            }
        }
        return [d]
    }
}

/// Mean softmax cross-entropy over the batch (a scalar).
public func softmaxCrossEntropy(logits: Variable, labels: [Int]) -> Variable {
    softmaxCrossEntropyPerSample(logits: logits, labels: labels).mean()
}

/// Mean squared error over all elements (a scalar).
public func meanSquaredError(_ prediction: Variable, _ target: Variable) -> Variable {
    precondition(
        prediction.shape == target.shape,
        "mean squared error: shape \(prediction.shape) does not match shape \(target.shape)")
    return (prediction - target).square().mean()
}

/// Per-sample L2 norm over every axis but the first: `[N, ...] -> [N]`.
/// The gradient `x / ||x||` is taken as 0 where the norm is 0.
public func l2NormPerSample(_ x: Variable) -> Variable {
    let v = x.value, n = v.batchSize, item = v.itemCount
    let norms = v.l2NormsPerSample()
    return Variable.result(Tensor(shape: [n], storage: norms), [x], op: "l2Norm") { g in
        [
            Tensor(shape: v.shape) { out in
                v.withUnsafeBufferPointer { p in
                    for i in 0..<n {
                        let scale = norms[i] > 0 ? g.storage[i] / norms[i] : 0
                        for j in 0..<item { out[i * item + j] = p[i * item + j] * scale }
                    }
                }
            }
        ]
    }
}

/// Per-sample L1 norm over every axis but the first: `[N, ...] -> [N]`.
public func l1NormPerSample(_ x: Variable) -> Variable {
    x.abs().sumPerSample()
}

#if canImport(Glibc)
    import Glibc
#endif
