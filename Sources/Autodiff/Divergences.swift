import Foundation
import Tensors

/// Jensen-Shannon divergence between the tempered softmax outputs of two logit batches,
/// per row: `[N, K], [N, K] -> [N]`.
///
/// With `p = softmax(a / T)`, `q = softmax(b / T)` and `m = (p + q) / 2`,
/// `JSD = 1/2 KL(p || m) + 1/2 KL(q || m)` (natural logarithm, so `0 <= JSD <= ln 2`).
/// This is MagNet's detector II (Meng and Chen 2017) and DAFAR's decision-feedback score.
///
/// The logarithms come from a max-shifted log-softmax and `log m = log 1/2 + logaddexp(log p, log q)`,
/// so rows whose probabilities underflow to 0 stay finite; sums run in Double.
/// Backward, with `g_i = dJSD/dp_i = 1/2 log(p_i / m_i)` (and likewise for q):
/// `dJSD/da_j = p_j (g_j - sum_i p_i g_i) / T`.
public func jensenShannonDivergencePerSample(_ a: Variable, _ b: Variable, temperature: Float) -> Variable {
    precondition(
        a.shape == b.shape && a.value.rank == 2,
        "Jensen-Shannon divergence needs two [N, K] logit batches of one shape, got \(a.shape) and \(b.shape)")
    precondition(temperature > 0 && temperature.isFinite, "Jensen-Shannon divergence: the temperature must be positive, got \(temperature)")
    let n = a.shape[0], k = a.shape[1]
    let inverse = 1 / temperature
    let logP = a.value.map { $0 * inverse }.logSoftmaxRows()  // [N, K]
    let logQ = b.value.map { $0 * inverse }.logSoftmaxRows()  // [N, K]
    // dJSD/dp and dJSD/dq per element, kept for the backward pass: [N, K] each.
    var halfLogRatioP = [Double](repeating: 0, count: n * k), halfLogRatioQ = [Double](repeating: 0, count: n * k)
    var divergences = [Float](repeating: 0, count: n)
    logP.withUnsafeBufferPointer { lp in
        logQ.withUnsafeBufferPointer { lq in
            for i in 0..<n {
                var sum = 0.0
                for j in i * k..<(i + 1) * k {
                    let x = Double(lp[j]), y = Double(lq[j])
                    let high = max(x, y)
                    let logM = -M_LN2 + high + Foundation.log(Foundation.exp(x - high) + Foundation.exp(y - high))
                    halfLogRatioP[j] = 0.5 * (x - logM)
                    halfLogRatioQ[j] = 0.5 * (y - logM)
                    sum += Foundation.exp(x) * halfLogRatioP[j] + Foundation.exp(y) * halfLogRatioQ[j]
                }
                divergences[i] = Float(max(0, sum))
            }
        }
    }
    return Variable.result(Tensor(shape: [n], storage: divergences), [a, b], op: "jensenShannonDivergence") { g in
        /// d/d logits of one side: p_j (g_j - sum_i p_i g_i) / T, times the upstream gradient of the row.
        func logitGradient(_ logProbabilities: Tensor, _ halfLogRatio: [Double]) -> Tensor {
            Tensor(shape: [n, k]) { out in
                logProbabilities.withUnsafeBufferPointer { lp in
                    for i in 0..<n {
                        var mean = 0.0
                        for j in i * k..<(i + 1) * k { mean += Foundation.exp(Double(lp[j])) * halfLogRatio[j] }
                        let scale = Double(g.storage[i]) * Double(inverse)
                        for j in i * k..<(i + 1) * k {
                            out[j] = Float(Foundation.exp(Double(lp[j])) * (halfLogRatio[j] - mean) * scale)
                        }
                    }
                }
            }
        }
        return [logitGradient(logP, halfLogRatioP), logitGradient(logQ, halfLogRatioQ)]
    }
}

/// Element-wise maximum of two variables of one shape: the gradient goes to `a` where `a > b`
/// and to `b` elsewhere (ties to `b`).
public func maximum(_ a: Variable, _ b: Variable) -> Variable {
    precondition(a.shape == b.shape, "maximum: shape \(a.shape) does not match shape \(b.shape)")
    let takesA = zip(a.value.storage, b.value.storage).map { $0 > $1 }
    let shape = a.shape  // capture the shape, not the Variable: a Variable holds its tape (no cycle)
    let value = Tensor(shape: shape, storage: zip(a.value.storage, b.value.storage).map { Swift.max($0, $1) })
    return Variable.result(value, [a, b], op: "maximum") { g in
        [
            Tensor(shape: shape, storage: zip(g.storage, takesA).map { $1 ? $0 : 0 }),
            Tensor(shape: shape, storage: zip(g.storage, takesA).map { $1 ? 0 : $0 })
        ]
    }
}
