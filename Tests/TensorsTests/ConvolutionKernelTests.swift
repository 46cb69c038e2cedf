@testable import Tensors
import XCTest

/// The batched im2col + GEMM convolution kernels against direct loops.
final class ConvolutionKernelTests: XCTestCase {
    /// One convolution configuration: `[n, c, h, w]` input, `[o, c, kh, kw]` weight.
    struct Case: CustomStringConvertible {
        var n, c, h, w, o, kh, kw, stride, padding: Int
        var description: String { "input [\(n), \(c), \(h), \(w)], kernel \(o)x\(kh)x\(kw), stride \(stride), padding \(padding)" }
    }

    static let convolutionCases = [
        Case(n: 2, c: 3, h: 7, w: 5, o: 4, kh: 3, kw: 3, stride: 1, padding: 0),
        Case(n: 3, c: 2, h: 8, w: 6, o: 3, kh: 3, kw: 3, stride: 2, padding: 1),
        Case(n: 1, c: 1, h: 5, w: 9, o: 2, kh: 2, kw: 3, stride: 2, padding: 0),
        Case(n: 2, c: 4, h: 6, w: 6, o: 5, kh: 1, kw: 1, stride: 1, padding: 1),
        Case(n: 1, c: 2, h: 9, w: 7, o: 3, kh: 4, kw: 4, stride: 3, padding: 2),
        Case(n: 2, c: 2, h: 4, w: 4, o: 2, kh: 3, kw: 3, stride: 1, padding: 2),
        Case(n: 2, c: 3, h: 5, w: 5, o: 2, kh: 5, kw: 5, stride: 1, padding: 0),
        Case(n: 2, c: 2, h: 6, w: 7, o: 3, kh: 3, kw: 2, stride: 2, padding: 1)
    ]

    func testOutputSizeFormula() {
        XCTAssertEqual(ConvolutionGeometry.outputSize(input: 7, kernel: 3, stride: 1, padding: 0), 5)
        XCTAssertEqual(ConvolutionGeometry.outputSize(input: 7, kernel: 3, stride: 2, padding: 1), 4)
        XCTAssertEqual(ConvolutionGeometry.outputSize(input: 8, kernel: 3, stride: 2, padding: 1), 4)
        XCTAssertEqual(ConvolutionGeometry.outputSize(input: 5, kernel: 2, stride: 2, padding: 0), 2, "floor mode drops the last row")
        XCTAssertEqual(ConvolutionGeometry.outputSize(input: 2, kernel: 5, stride: 1, padding: 0), 0)
        let g = ConvolutionGeometry(channels: 3, height: 9, width: 6, kernelHeight: 3, kernelWidth: 2, stride: 2, padding: 1)
        XCTAssertEqual([g.outputHeight, g.outputWidth, g.patchSize, g.outputPositions, g.imageSize], [5, 4, 18, 20, 162])
    }

    func testForwardMatchesDirectConvolution() {
        for (index, c) in Self.convolutionCases.enumerated() {
            let seed = UInt64(100 + index)
            let x = randomTensor([c.n, c.c, c.h, c.w], seed: seed)
            let w = randomTensor([c.o, c.c, c.kh, c.kw], seed: seed + 1000)
            let b = randomTensor([c.o], seed: seed + 2000)
            let fast = ConvolutionKernels.forward(input: x, weight: w, bias: b, stride: c.stride, padding: c.padding)
            assertClose(fast, naiveConvolution(x, w, b, stride: c.stride, padding: c.padding), tolerance: 1e-5, "conv2d, \(c)")
            let noBias = ConvolutionKernels.forward(input: x, weight: w, bias: nil, stride: c.stride, padding: c.padding)
            assertClose(
                noBias, naiveConvolution(x, w, nil, stride: c.stride, padding: c.padding), tolerance: 1e-5,
                "conv2d without bias, \(c)")
        }
    }

    /// A batch larger than one im2col chunk: the chunk offsets must line up.
    func testForwardAndBackwardAcrossChunks() {
        let c = Case(n: 20, c: 16, h: 24, w: 24, o: 2, kh: 5, kw: 5, stride: 1, padding: 2)
        let g = ConvolutionGeometry(
            channels: c.c, height: c.h, width: c.w, kernelHeight: c.kh, kernelWidth: c.kw,
            stride: c.stride, padding: c.padding)
        let chunk = Im2Col.chunkSize(images: c.n, floatsPerImage: (g.patchSize + c.o) * g.outputPositions)
        XCTAssertLessThan(chunk, c.n, "the batch must span several chunks for this test to mean anything")
        XCTAssertNotEqual(c.n % chunk, 0, "the last chunk should be partial")
        let x = randomTensor([c.n, c.c, c.h, c.w], seed: 7)
        let w = randomTensor([c.o, c.c, c.kh, c.kw], seed: 8)
        let b = randomTensor([c.o], seed: 9)
        let fast = ConvolutionKernels.forward(input: x, weight: w, bias: b, stride: c.stride, padding: c.padding)
        assertClose(fast, naiveConvolution(x, w, b, stride: c.stride, padding: c.padding), tolerance: 1e-5, "chunked conv2d, \(c)")

        // Backward over the whole batch equals backward image by image (summed for the weight).
        let dy = randomTensor(fast.shape, seed: 10)
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
        assertClose(whole.input!, Tensor.concatenate(dInputs), tolerance: 1e-5, "chunked conv2d input gradient")
        assertClose(whole.weight!, dWeight, tolerance: 1e-4, "chunked conv2d weight gradient")
        assertClose(whole.bias!, dBias, tolerance: 1e-4, "chunked conv2d bias gradient")
    }

    static let transposedCases = [
        Case(n: 2, c: 3, h: 3, w: 4, o: 2, kh: 3, kw: 3, stride: 1, padding: 0),
        Case(n: 2, c: 2, h: 4, w: 3, o: 3, kh: 3, kw: 3, stride: 2, padding: 1),
        Case(n: 1, c: 2, h: 3, w: 3, o: 2, kh: 2, kw: 2, stride: 2, padding: 0),
        Case(n: 1, c: 1, h: 2, w: 5, o: 2, kh: 4, kw: 4, stride: 2, padding: 1),
        Case(n: 2, c: 2, h: 3, w: 3, o: 2, kh: 3, kw: 2, stride: 3, padding: 1),
        Case(n: 3, c: 3, h: 5, w: 4, o: 1, kh: 3, kw: 3, stride: 1, padding: 1)
    ]

    func testTransposedForwardMatchesScatter() {
        for (index, c) in Self.transposedCases.enumerated() {
            let seed = UInt64(300 + index)
            let x = randomTensor([c.n, c.c, c.h, c.w], seed: seed)
            let w = randomTensor([c.c, c.o, c.kh, c.kw], seed: seed + 1000)
            let b = randomTensor([c.o], seed: seed + 2000)
            let fast = ConvolutionKernels.transposedForward(input: x, weight: w, bias: b, stride: c.stride, padding: c.padding)
            XCTAssertEqual(
                fast.shape, [c.n, c.o, (c.h - 1) * c.stride - 2 * c.padding + c.kh, (c.w - 1) * c.stride - 2 * c.padding + c.kw],
                "conv-transpose2d output shape, \(c)")
            assertClose(
                fast, naiveTransposedConvolution(x, w, b, stride: c.stride, padding: c.padding), tolerance: 1e-5,
                "conv-transpose2d, \(c)")
        }
    }

    func testTransposedAcrossChunks() {
        let c = Case(n: 20, c: 2, h: 24, w: 24, o: 16, kh: 5, kw: 5, stride: 1, padding: 2)
        let chunk = Im2Col.chunkSize(images: c.n, floatsPerImage: (c.o * c.kh * c.kw + c.c) * c.h * c.w)
        XCTAssertLessThan(chunk, c.n, "the batch must span several chunks for this test to mean anything")
        let x = randomTensor([c.n, c.c, c.h, c.w], seed: 11)
        let w = randomTensor([c.c, c.o, c.kh, c.kw], seed: 12)
        let b = randomTensor([c.o], seed: 13)
        let fast = ConvolutionKernels.transposedForward(input: x, weight: w, bias: b, stride: c.stride, padding: c.padding)
        assertClose(
            fast, naiveTransposedConvolution(x, w, b, stride: c.stride, padding: c.padding), tolerance: 1e-5,
            "chunked conv-transpose2d, \(c)")
        let dy = randomTensor(fast.shape, seed: 14)
        let whole = ConvolutionKernels.transposedBackward(input: x, weight: w, outputGradient: dy, stride: c.stride, padding: c.padding)
        var dWeight = Tensor.zeros(w.shape), dInputs: [Tensor] = []
        for i in 0..<c.n {
            let part = ConvolutionKernels.transposedBackward(
                input: x.slice(i..<(i + 1)), weight: w, outputGradient: dy.slice(i..<(i + 1)),
                stride: c.stride, padding: c.padding)
            dWeight.add(part.weight!)
            dInputs.append(part.input!)
        }
        assertClose(whole.input!, Tensor.concatenate(dInputs), tolerance: 1e-5, "chunked conv-transpose2d input gradient")
        assertClose(whole.weight!, dWeight, tolerance: 1e-4, "chunked conv-transpose2d weight gradient")
        assertClose(whole.bias!, ConvolutionKernels.channelSums(dy), tolerance: 1e-6, "conv-transpose2d bias gradient")
    }

    /// A transposed convolution is the adjoint of the convolution with the same weight:
    /// `<convT(y), x> == <y, conv(x)>` (no bias).
    func testTransposedIsAdjointOfConvolution() {
        for c in Self.convolutionCases {
            let x = randomTensor([c.n, c.c, c.h, c.w], seed: 21)
            let w = randomTensor([c.o, c.c, c.kh, c.kw], seed: 22)
            let y = ConvolutionKernels.forward(input: x, weight: w, bias: nil, stride: c.stride, padding: c.padding)
            // Only sizes that the transposed convolution reproduces exactly (no floor-mode remainder).
            guard (c.h + 2 * c.padding - c.kh) % c.stride == 0, (c.w + 2 * c.padding - c.kw) % c.stride == 0 else { continue }
            let r = randomTensor(y.shape, seed: 23)
            let back = ConvolutionKernels.transposedForward(input: r, weight: w, bias: nil, stride: c.stride, padding: c.padding)
            XCTAssertEqual(back.shape, x.shape, "conv-transpose2d restores the input shape, \(c)")
            let lhs = dot(back.storage, x.storage), rhs = dot(r.storage, y.storage)
            XCTAssertEqual(lhs, rhs, accuracy: 1e-4 * max(1, abs(rhs)), "<convT(r), x> vs <r, conv(x)>, \(c)")
        }
    }

    /// Gradients that are not asked for are skipped; the others do not change.
    func testSkippedGradients() {
        let x = randomTensor([2, 2, 5, 5], seed: 31), w = randomTensor([3, 2, 3, 3], seed: 32)
        let dy = randomTensor([2, 3, 3, 3], seed: 33)
        let full = ConvolutionKernels.backward(input: x, weight: w, outputGradient: dy)
        let noInput = ConvolutionKernels.backward(input: x, weight: w, outputGradient: dy, needInputGradient: false)
        XCTAssertNil(noInput.input)
        XCTAssertEqual(noInput.weight, full.weight)
        XCTAssertEqual(noInput.bias, full.bias)
        let inputOnly = ConvolutionKernels.backward(input: x, weight: w, outputGradient: dy, needWeightGradient: false)
        XCTAssertNil(inputOnly.weight)
        XCTAssertNil(inputOnly.bias)
        XCTAssertEqual(inputOnly.input, full.input)

        let xt = randomTensor([2, 3, 3, 3], seed: 34), wt = randomTensor([3, 2, 3, 3], seed: 35)
        let dyt = randomTensor([2, 2, 5, 5], seed: 36)
        let fullT = ConvolutionKernels.transposedBackward(input: xt, weight: wt, outputGradient: dyt)
        let inputOnlyT = ConvolutionKernels.transposedBackward(input: xt, weight: wt, outputGradient: dyt, needWeightGradient: false)
        XCTAssertNil(inputOnlyT.weight)
        XCTAssertNil(inputOnlyT.bias)
        XCTAssertEqual(inputOnlyT.input, fullT.input)
        let noInputT = ConvolutionKernels.transposedBackward(input: xt, weight: wt, outputGradient: dyt, needInputGradient: false)
        XCTAssertNil(noInputT.input)
        XCTAssertEqual(noInputT.weight, fullT.weight)
    }

    /// One and two threads must give bit-identical results (no race, no order dependence).
    func testThreadCountDoesNotChangeResults() {
        let saved = Parallel.threadCount
        defer { Parallel.setThreadCount(saved) }
        let x = randomTensor([20, 16, 24, 24], seed: 41), w = randomTensor([2, 16, 5, 5], seed: 42), b = randomTensor([2], seed: 43)
        let xt = randomTensor([6, 2, 24, 24], seed: 44), wt = randomTensor([2, 16, 5, 5], seed: 45)
        let bt = randomTensor([16], seed: 46)
        func run() -> [Tensor] {
            let y = ConvolutionKernels.forward(input: x, weight: w, bias: b, stride: 2, padding: 2)
            let grads = ConvolutionKernels.backward(input: x, weight: w, outputGradient: y, stride: 2, padding: 2)
            let yt = ConvolutionKernels.transposedForward(input: xt, weight: wt, bias: bt, stride: 1, padding: 1)
            let gradsT = ConvolutionKernels.transposedBackward(input: xt, weight: wt, outputGradient: yt, stride: 1, padding: 1)
            let pooled = PoolingKernels.maxPool(x, size: 2).output
            return [y, grads.input!, grads.weight!, grads.bias!, yt, gradsT.input!, gradsT.weight!, pooled, x.softmaxRows()]
        }
        Parallel.setThreadCount(1)
        let one = run()
        Parallel.setThreadCount(2)
        XCTAssertEqual(Parallel.threadCount, 2)
        let two = run()
        for (i, (a, b)) in zip(one, two).enumerated() {
            XCTAssertEqual(a.storage, b.storage, "result \(i) differs between 1 and 2 threads")
        }
    }
}
