import Autodiff
import Tensors
import XCTest

/// Gradient checks of matmul, linear, convolutions, pooling, upsampling and reshapes,
/// against inputs, weights and biases (tolerance: `FiniteDifference`).
final class ConvolutionGradientTests: XCTestCase {
    func testMatmul() {
        let a = randomTensor([3, 4], seed: 1), b = randomTensor([4, 5], seed: 2)
        assertGradientsMatch("matmul [3, 4] x [4, 5]", inputs: [a, b]) { weightedSum($0[0].matmul($0[1])) }
    }

    func testLinear() {
        let x = randomTensor([3, 4], seed: 3), w = randomTensor([5, 4], seed: 4), b = randomTensor([5], seed: 5)
        assertGradientsMatch("linear with bias", inputs: [x, w, b]) { weightedSum(linear($0[0], weight: $0[1], bias: $0[2])) }
        assertGradientsMatch("linear without bias", inputs: [x, w]) { weightedSum(linear($0[0], weight: $0[1], bias: nil)) }
        assertGradientsMatch("linear + ReLU", inputs: [x, w, b]) { weightedSum(linear($0[0], weight: $0[1], bias: $0[2], reLU: true)) }
        assertGradientsMatch("linear + ReLU without bias", inputs: [x, w]) {
            weightedSum(linear($0[0], weight: $0[1], bias: nil, reLU: true))
        }
        // Forward: x W^T + b.
        let y = linear(Variable(x), weight: Variable(w), bias: Variable(b)).value
        let expected = Broadcasting.apply(x.matmul(w, transposeOther: true), b, +)
        XCTAssertEqual(y.shape, [3, 5])
        for i in 0..<y.count { XCTAssertEqual(y.storage[i], expected.storage[i], accuracy: 1e-6) }
        let rectified = linear(Variable(x), weight: Variable(w), bias: Variable(b), reLU: true).value
        XCTAssertEqual(rectified.storage, y.storage.map { $0 > 0 ? $0 : 0 }, "the fused ReLU is max(0, x W^T + b)")
        XCTAssertTrue(rectified.storage.contains(0) && rectified.storage.contains { $0 > 0 }, "the seeds cover both sides")
    }

    func testLinearOfOneRow() {
        // One row takes the matrix-vector product (sgemv): the same values as its row of a batch, gradients checked too.
        let batch = randomTensor([3, 40], seed: 6), w = randomTensor([7, 40], seed: 7), b = randomTensor([7], seed: 8)
        let x = batch.slice(1..<2)
        assertGradientsMatch("linear of one row", inputs: [x, w, b]) { weightedSum(linear($0[0], weight: $0[1], bias: $0[2])) }
        let alone = linear(Variable(x), weight: Variable(w), bias: Variable(b)).value
        let inBatch = linear(Variable(batch), weight: Variable(w), bias: Variable(b)).value
        XCTAssertEqual(alone.shape, [1, 7])
        for j in 0..<7 { XCTAssertEqual(alone.storage[j], inBatch.storage[7 + j], accuracy: 1e-5) }
    }

    func testConv2dStrideAndPadding() {
        for (stride, padding) in [(1, 0), (1, 1), (2, 0), (2, 1)] {
            let seed = UInt64(10 * stride + padding)
            let x = randomTensor([2, 2, 5, 6], seed: seed), w = randomTensor([3, 2, 3, 3], seed: seed + 1)
            let b = randomTensor([3], seed: seed + 2)
            assertGradientsMatch("conv2d stride \(stride) padding \(padding)", inputs: [x, w, b]) {
                weightedSum(conv2d($0[0], weight: $0[1], bias: $0[2], stride: stride, padding: padding))
            }
        }
        let x = randomTensor([1, 1, 4, 5], seed: 40), w = randomTensor([2, 1, 2, 2], seed: 41)
        assertGradientsMatch("conv2d without bias", inputs: [x, w]) { weightedSum(conv2d($0[0], weight: $0[1], bias: nil, stride: 2)) }
    }

    func testConvTranspose2dStrideAndPadding() {
        for (stride, padding) in [(1, 0), (1, 1), (2, 0), (2, 1)] {
            let seed = UInt64(100 + 10 * stride + padding)
            let x = randomTensor([2, 3, 3, 4], seed: seed), w = randomTensor([3, 2, 3, 3], seed: seed + 1)
            let b = randomTensor([2], seed: seed + 2)
            assertGradientsMatch("convTranspose2d stride \(stride) padding \(padding)", inputs: [x, w, b]) {
                weightedSum(convTranspose2d($0[0], weight: $0[1], bias: $0[2], stride: stride, padding: padding))
            }
        }
        let x = randomTensor([1, 2, 2, 3], seed: 50), w = randomTensor([2, 1, 4, 4], seed: 51)
        assertGradientsMatch("convTranspose2d kernel 4 stride 2 padding 1, no bias", inputs: [x, w]) {
            weightedSum(convTranspose2d($0[0], weight: $0[1], bias: nil, stride: 2, padding: 1))
        }
    }

    /// With constant weights (attacks) only the input gradient is computed, and it is still right.
    func testInputGradientWithConstantWeights() {
        let x = randomTensor([2, 2, 5, 5], seed: 70), w = Variable(randomTensor([3, 2, 3, 3], seed: 71))
        let b = Variable(randomTensor([3], seed: 72))
        assertGradientsMatch("conv2d input only", inputs: [x]) { weightedSum(conv2d($0[0], weight: w, bias: b, stride: 2, padding: 1)) }
        let wt = Variable(randomTensor([2, 3, 3, 3], seed: 73)), bt = Variable(randomTensor([3], seed: 74))
        assertGradientsMatch("convTranspose2d input only", inputs: [x]) {
            weightedSum(convTranspose2d($0[0], weight: wt, bias: bt, stride: 2, padding: 1))
        }
        let xl = randomTensor([3, 4], seed: 75), wl = Variable(randomTensor([2, 4], seed: 76)), bl = Variable(randomTensor([2], seed: 77))
        assertGradientsMatch("linear input only", inputs: [xl]) { weightedSum(linear($0[0], weight: wl, bias: bl)) }
    }

    /// The fused convolution + ReLU + 2 x 2 pooling op, away from its kinks: distinct inputs 0.05 apart, a
    /// weight that copies channel `o` to output `o` (its centre tap), a bias of 0.025, so that no step moves
    /// a window's maximum or crosses the ReLU's zero. The input and bias gradients (the backward unpools, then
    /// the convolution's backward), and the input gradient alone with constant parameters (each image's
    /// gradient unpooled in cache before the direct kernel's input-gradient pass: 16 -> 16 channels), odd
    /// output sizes. Its weight gradient is the convolution's (`FusedReLUTests`: the same bits as the layers).
    func testConv2dMaxPool() {
        let x = distinctValues([2, 16, 7, 6], seed: 80)
        let w = Variable(
            Tensor(shape: [16, 16, 3, 3], storage: (0..<(16 * 16 * 9)).map { i in i % 9 == 4 && (i / 9) % 16 == i / 144 ? 1 : 0 }))
        let b = Tensor(shape: [16], repeating: 0.025)
        assertGradientsMatch("conv2d + ReLU + maxPool2d, input and bias", inputs: [x, b]) {
            weightedSum(conv2dMaxPool($0[0], weight: w, bias: $0[1], reLU: true))
        }
        let bc = Variable(b)
        for padding in [0, 1] {
            assertGradientsMatch("conv2d + ReLU + maxPool2d, input only, padding \(padding)", inputs: [x]) {
                weightedSum(conv2dMaxPool($0[0], weight: w, bias: bc, padding: padding, reLU: true))
            }
        }
    }

    func testMaxPool() {
        // Distinct values 0.05 apart, so that a step of 0.01 never changes the argmax.
        let x = distinctValues([2, 2, 5, 5], seed: 6)
        assertGradientsMatch("maxPool2d size 2 on 5x5 (floor mode)", inputs: [x]) { weightedSum($0[0].maxPool2d(size: 2)) }
        let y = distinctValues([1, 3, 6, 6], seed: 7)
        assertGradientsMatch("maxPool2d size 3", inputs: [y]) { weightedSum($0[0].maxPool2d(size: 3)) }
    }

    func testUpsampleNearest() {
        let x = randomTensor([2, 2, 3, 3], seed: 8)
        assertGradientsMatch("upsampleNearest 3x3 -> 6x6", inputs: [x]) { weightedSum($0[0].upsampleNearest(height: 6, width: 6)) }
        assertGradientsMatch("upsampleNearest 3x3 -> 7x5", inputs: [x]) { weightedSum($0[0].upsampleNearest(height: 7, width: 5)) }
        XCTAssertEqual(Variable(x).upsampleNearest(height: 7, width: 5).shape, [2, 2, 7, 5])
    }

    func testReshapeAndFlatten() {
        let x = randomTensor([2, 3, 2, 2], seed: 9)
        assertGradientsMatch("reshaped", inputs: [x]) { weightedSum($0[0].reshaped([4, 6])) }
        assertGradientsMatch("flattened", inputs: [x]) { weightedSum($0[0].flattened()) }
        let flat = Variable(x).flattened()
        XCTAssertEqual(flat.shape, [2, 12])
        XCTAssertEqual(flat.value.storage, x.storage)
    }

    /// A small network end to end: conv -> relu -> pool -> flatten -> linear -> cross-entropy.
    func testComposedNetwork() {
        let x = randomTensor([2, 1, 6, 6], seed: 60), w1 = randomTensor([2, 1, 3, 3], seed: 61), b1 = randomTensor([2], seed: 62)
        let w2 = randomTensor([3, 8], seed: 63), b2 = randomTensor([3], seed: 64)
        // Pre-activations near zero would make relu/max kinks fall within one step: check they do not.
        let pre = conv2d(Variable(x), weight: Variable(w1), bias: Variable(b1), padding: 0).value
        XCTAssertGreaterThan(pre.storage.map { abs($0) }.min()!, 0.011, "seed gives pre-activations away from the relu kink")
        assertGradientsMatch("conv-relu-pool-dense-cross-entropy", inputs: [x, w1, b1, w2, b2]) { v in
            let h = conv2d(v[0], weight: v[1], bias: v[2]).relu().maxPool2d(size: 2).flattened()
            return softmaxCrossEntropy(logits: linear(h, weight: v[3], bias: v[4]), labels: [2, 0])
        }
    }
}
