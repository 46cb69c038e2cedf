import Autodiff
import Tensors
import XCTest

/// A tape must be freed once nothing refers to it: backward closures capture
/// tensors and flags, never `Variable`s (which hold their tape strongly).
final class TapeLifetimeTests: XCTestCase {
    func testTapeIsReleasedAfterAStepThroughEveryLayerKind() {
        weak var released: Tape?
        do {
            let tape = Tape()
            released = tape
            let x = tape.watch(Tensor(shape: [2, 1, 6, 6], repeating: 0.5))
            let w = tape.watch(Tensor(shape: [2, 1, 3, 3], repeating: 0.1))
            let b = tape.watch(Tensor(shape: [2], repeating: 0.1))
            let wt = tape.watch(Tensor(shape: [2, 1, 3, 3], repeating: 0.1))
            let bt = tape.watch(Tensor(shape: [1], repeating: 0.1))
            let conv = conv2d(x, weight: w, bias: b).relu()  // [2, 2, 4, 4]
            let back = convTranspose2d(conv, weight: wt, bias: bt).sigmoid()  // [2, 1, 6, 6]
            let pooled = conv.maxPool2d(size: 2).upsampleNearest(height: 4, width: 4).flattened()  // [2, 32]
            let dw = tape.watch(Tensor(shape: [3, 32], repeating: 0.01))
            let db = tape.watch(Tensor(shape: [3], repeating: 0))
            let logits = linear(pooled, weight: dw, bias: db)
            let loss =
                softmaxCrossEntropy(logits: logits, labels: [0, 2]) + meanSquaredError(back, x)
                + l2NormPerSample(back - x).mean() + logits.logSumExp().sum() + logits.maxRows().sum()
                + logits.gatherRows([1, 0]).sum() + (logits * logits / (logits.abs() + 1)).sum()
                + jensenShannonDivergencePerSample(logits, logits * 0.5, temperature: 2).sum()
                + maximum(logits, logits * 0.5).sum()
            _ = tape.gradients(of: loss)
        }
        XCTAssertNil(released, "the tape (and every activation it holds) leaked through a reference cycle")
    }
}
