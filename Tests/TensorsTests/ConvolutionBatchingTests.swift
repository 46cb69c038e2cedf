@testable import Tensors
import XCTest

/// The per-chunk batching of the convolution kernels: groups of several small images per
/// GEMM (gathered through `imagesToRows`), one image per GEMM for large outputs, pointwise
/// kernels without im2col, and gradients that do not depend on the thread count.
final class ConvolutionBatchingTests: XCTestCase {
    /// `[n, c, h, w]` input, `o` outputs, square `kernel`, `stride`, `padding`.
    struct Case: CustomStringConvertible {
        var n, c, h, w, o, kernel, stride, padding: Int
        var description: String { "input [\(n), \(c), \(h), \(w)], kernel \(o)x\(kernel)x\(kernel), stride \(stride), padding \(padding)" }
    }

    static let cases = [
        Case(n: 19, c: 3, h: 6, w: 7, o: 4, kernel: 3, stride: 1, padding: 0),  // groups of small images
        Case(n: 23, c: 2, h: 9, w: 8, o: 3, kernel: 3, stride: 2, padding: 1),  // strided, padded, groups
        Case(n: 11, c: 5, h: 4, w: 4, o: 6, kernel: 1, stride: 1, padding: 0),  // pointwise, groups
        Case(n: 3, c: 4, h: 17, w: 17, o: 2, kernel: 1, stride: 1, padding: 0),  // pointwise, one image per GEMM
        Case(n: 10, c: 2, h: 18, w: 18, o: 3, kernel: 3, stride: 1, padding: 0)  // 256 positions: one image per GEMM
    ]

    func tensors(_ c: Case, seed: UInt64) -> (x: Tensor, w: Tensor, b: Tensor) {
        (
            randomTensor([c.n, c.c, c.h, c.w], seed: seed), randomTensor([c.o, c.c, c.kernel, c.kernel], seed: seed + 1),
            randomTensor([c.o], seed: seed + 2)
        )
    }

    func testConvolutionForwardAndBackwardMatchImageByImage() {
        for (index, c) in Self.cases.enumerated() {
            let (x, w, b) = tensors(c, seed: UInt64(10 * index))
            let y = ConvolutionKernels.forward(input: x, weight: w, bias: b, stride: c.stride, padding: c.padding)
            assertClose(y, naiveConvolution(x, w, b, stride: c.stride, padding: c.padding), tolerance: 1e-5, "conv2d, \(c)")
            let dy = randomTensor(y.shape, seed: UInt64(10 * index + 5))
            let whole = ConvolutionKernels.backward(input: x, weight: w, outputGradient: dy, stride: c.stride, padding: c.padding)
            var dWeight = Tensor.zeros(w.shape), dBias = Tensor.zeros([c.o]), dInputs: [Tensor] = []
            for i in 0..<c.n {
                let part = ConvolutionKernels.backward(
                    input: x.slice(i..<(i + 1)), weight: w, outputGradient: dy.slice(i..<(i + 1)),
                    stride: c.stride, padding: c.padding)
                dWeight.add(part.weight!)
                dBias.add(part.bias!)
                dInputs.append(part.input!)
            }
            assertClose(whole.input!, Tensor.concatenate(dInputs), tolerance: 1e-5, "conv2d input gradient, \(c)")
            assertClose(whole.weight!, dWeight, tolerance: 1e-4, "conv2d weight gradient, \(c)")
            assertClose(whole.bias!, dBias, tolerance: 1e-4, "conv2d bias gradient, \(c)")
        }
    }

    func testTransposedConvolutionForwardAndBackwardMatchImageByImage() {
        for (index, c) in Self.cases.enumerated() {
            // The transposed convolution reads [n, c, h, w] with an [c, o, k, k] weight.
            let x = randomTensor([c.n, c.c, c.h, c.w], seed: UInt64(100 + index))
            let w = randomTensor([c.c, c.o, c.kernel, c.kernel], seed: UInt64(200 + index))
            let b = randomTensor([c.o], seed: UInt64(300 + index))
            let y = ConvolutionKernels.transposedForward(input: x, weight: w, bias: b, stride: c.stride, padding: c.padding)
            assertClose(
                y, naiveTransposedConvolution(x, w, b, stride: c.stride, padding: c.padding), tolerance: 1e-5,
                "conv-transpose2d, \(c)")
            let dy = randomTensor(y.shape, seed: UInt64(400 + index))
            let whole = ConvolutionKernels.transposedBackward(
                input: x, weight: w, outputGradient: dy, stride: c.stride,
                padding: c.padding)
            var dWeight = Tensor.zeros(w.shape), dBias = Tensor.zeros([c.o]), dInputs: [Tensor] = []
            for i in 0..<c.n {
                let part = ConvolutionKernels.transposedBackward(
                    input: x.slice(i..<(i + 1)), weight: w,
                    outputGradient: dy.slice(i..<(i + 1)),
                    stride: c.stride, padding: c.padding)
                dWeight.add(part.weight!)
                dBias.add(part.bias!)
                dInputs.append(part.input!)
            }
            assertClose(whole.input!, Tensor.concatenate(dInputs), tolerance: 1e-5, "conv-transpose2d input gradient, \(c)")
            assertClose(whole.weight!, dWeight, tolerance: 1e-4, "conv-transpose2d weight gradient, \(c)")
            assertClose(whole.bias!, dBias, tolerance: 1e-4, "conv-transpose2d bias gradient, \(c)")
        }
    }

    /// Partial weight gradients are summed over a split that depends on the batch only, so
    /// 1, 2 and 3 threads give bit-identical results.
    func testGradientsDoNotDependOnTheThreadCount() {
        defer { Parallel.setThreadCount(Parallel.availableCores) }
        for (index, c) in Self.cases.enumerated() {
            let (x, w, _) = tensors(c, seed: UInt64(500 + index))
            let g = ConvolutionGeometry(
                channels: c.c, height: c.h, width: c.w, kernelHeight: c.kernel, kernelWidth: c.kernel,
                stride: c.stride, padding: c.padding)
            let dy = randomTensor([c.n, c.o, g.outputHeight, g.outputWidth], seed: UInt64(600 + index))
            var results: [ConvolutionKernels.Gradients] = []
            for threads in [1, 2, 3] {
                Parallel.setThreadCount(threads)
                results.append(
                    ConvolutionKernels.backward(
                        input: x, weight: w, outputGradient: dy, stride: c.stride,
                        padding: c.padding))
            }
            for (threads, r) in zip([2, 3], results.dropFirst()) {
                XCTAssertEqual(r.weight, results[0].weight, "weight gradient with \(threads) threads differs from 1 thread, \(c)")
                XCTAssertEqual(r.bias, results[0].bias, "bias gradient with \(threads) threads differs from 1 thread, \(c)")
                XCTAssertEqual(r.input, results[0].input, "input gradient with \(threads) threads differs from 1 thread, \(c)")
            }
        }
    }

    /// The GEMM wrapper splits large products into column or row blocks: each must match one call.
    func testSplitGEMMMatchesOneCall() {
        defer { Parallel.setThreadCount(Parallel.availableCores) }
        for (m, n, k, ta, tb) in [
            (150, 301, 70, false, false), (301, 40, 90, true, false), (64, 257, 130, false, true),
            (200, 33, 160, true, true)
        ] {
            let a = randomTensor(ta ? [k, m] : [m, k], seed: 1), b = randomTensor(tb ? [n, k] : [k, n], seed: 2)
            Parallel.setThreadCount(1)
            let serial = a.matmul(b, transposeSelf: ta, transposeOther: tb)
            Parallel.setThreadCount(3)
            XCTAssertGreaterThan(2 * Double(m * n * k), BLAS.parallelThreshold, "the product must be large enough to split")
            let split = a.matmul(b, transposeSelf: ta, transposeOther: tb)
            assertClose(split, serial, tolerance: 1e-5, "split GEMM \(m)x\(n)x\(k) transposeA \(ta) transposeB \(tb)")
        }
    }
}
