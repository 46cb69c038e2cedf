import _ConvKernels
@testable import Tensors
import XCTest

/// The direct 3x3 stride-1 kernel (`DirectConvolution`) against the naive loops, on shapes that do not
/// fill its register tiles (channels not a multiple of 8 or 16, small and odd images, padding 0 to 2,
/// batches of 1 and 3), with 1 and 2 threads and each instruction set the CPU runs (AVX2, AVX-512); the
/// one-channel kernels (`conv3x3_one_channel.h`) on the MNIST network's first and last layers and on
/// rows that do not fill their vectors; the layers with few channels that take the im2col path instead;
/// and the reproducibility of both kernels. `WinogradConvolutionTests` runs every test again with the
/// multi-channel passes through Winograd's F(2x2, 3x3), and `Winograd4ConvolutionTests` with the unmasked ones
/// through F(4x4, 3x3).
class DirectConvolutionTests: XCTestCase {
    /// Whether the tests run with `DirectConvolution.isWinogradEnabled`.
    class var winograd: Bool { false }

    /// Whether the tests run with `DirectConvolution.isWinograd4Enabled`, for every Winograd output (not only the
    /// largest): the unmasked passes through F(4x4, 3x3).
    class var winograd4: Bool { false }

    override func setUp() {
        DirectConvolution.isWinogradEnabled = Self.winograd
        DirectConvolution.isWinograd4Enabled = Self.winograd4
        DirectConvolution.minimumWinograd4Side = Self.winograd4 ? DirectConvolution.minimumWinogradSide : .max
        // the small batches here (one image per chunk of the weight gradient) go through Winograd's weight gradient too
        DirectConvolution.minimumWinogradImagesPerChunk = 1
    }

    /// `[n, c, h, w]` input, `o` outputs of a 3x3 kernel with `padding` (stride 1).
    struct Case: CustomStringConvertible {
        var n, c, h, w, o, padding: Int
        var description: String { "input [\(n), \(c), \(h), \(w)], kernel \(o)x3x3, padding \(padding)" }
    }

    static let cases = [
        Case(n: 1, c: 16, h: 3, w: 3, o: 16, padding: 0),  // one output value
        Case(n: 3, c: 17, h: 5, w: 7, o: 19, padding: 1),  // channels not a multiple of 8, a short last block
        Case(n: 3, c: 24, h: 4, w: 3, o: 40, padding: 1),
        Case(n: 1, c: 16, h: 2, w: 5, o: 17, padding: 2),  // smaller than the kernel without padding
        Case(n: 2, c: 24, h: 10, w: 13, o: 20, padding: 2),  // edges two taps deep on every side, a middle between
        Case(n: 3, c: 32, h: 26, w: 26, o: 32, padding: 0),  // the MNIST network's largest layer
        Case(n: 2, c: 16, h: 9, w: 37, o: 16, padding: 1),  // Winograd rows of 19 tiles: three groups of 8, the last short
        Case(n: 2, c: 16, h: 7, w: 5, o: 16, padding: 2),  // Winograd on an image narrower than a vector (rows staged one by one)
        Case(n: 3, c: 20, h: 13, w: 1, o: 18, padding: 1),  // one column
        Case(n: 1, c: 9, h: 6, w: 9, o: 16, padding: 0),  // forward direct; input gradient (9 outputs) through im2col
        Case(n: 3, c: 5, h: 6, w: 9, o: 7, padding: 1),  // few channels both ways: im2col
        // one channel on one side (conv3x3_one_channel.h); the transposed convolutions of these swap the sides
        Case(n: 3, c: 1, h: 28, w: 28, o: 32, padding: 0),  // the MNIST network's first layer
        Case(n: 3, c: 32, h: 26, w: 26, o: 1, padding: 0),  // its decoder's last layer, seen as a convolution
        Case(n: 3, c: 1, h: 5, w: 7, o: 1, padding: 1),  // one channel both ways
        Case(n: 1, c: 1, h: 3, w: 3, o: 1, padding: 0),  // one output value
        Case(n: 3, c: 1, h: 19, w: 37, o: 20, padding: 2),  // rows of 2 full vectors + a short one, a short channel group
        Case(n: 1, c: 1, h: 13, w: 1, o: 17, padding: 1),  // one column
        Case(n: 3, c: 40, h: 11, w: 18, o: 1, padding: 2),  // a short last tile of rows
        Case(n: 3, c: 5, h: 9, w: 17, o: 1, padding: 1),  // few channels in, one out: direct; its weight gradient: im2col
        Case(n: 2, c: 3, h: 17, w: 20, o: 1, padding: 1),  // 8-row tiles at the top and bottom with padding 1
        Case(n: 1, c: 3, h: 2, w: 4, o: 1, padding: 2)  // smaller than the kernel without padding
    ]

    /// Relative tolerance of the comparisons with the naive loops (which sum in Double).
    static let tolerance: Float = 1e-5

    /// The largest absolute difference from the naive loops seen by `check`, per instruction set (printed
    /// at the end of each test).
    var worstDifference: [DirectConvolution.InstructionSet: Float] = [:]

    /// `assertClose` with `tolerance`, keeping the largest absolute difference.
    func check(_ a: Tensor, _ b: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        assertClose(a, b, tolerance: Self.tolerance, what, file: file, line: line)
        guard a.shape == b.shape else { return }
        let difference = zip(a.storage, b.storage).map { abs($0 - $1) }.max() ?? 0
        worstDifference[DirectConvolution.instructionSet] = max(worstDifference[DirectConvolution.instructionSet] ?? 0, difference)
    }

    override func tearDown() {
        for (isa, difference) in worstDifference.sorted(by: { $0.key < $1.key }) where difference > 0 {
            print("\(name): largest |direct (\(isa)) - naive| = \(difference)")
        }
        Parallel.setThreadCount(Parallel.availableCores)
        DirectConvolution.isEnabled = true
        DirectConvolution.instructionSet = DirectConvolution.bestInstructionSet ?? .avx2
        DirectConvolution.isWinogradEnabled = DirectConvolution.defaultWinogradEnabled()
        DirectConvolution.isWinograd4Enabled = DirectConvolution.defaultWinograd4Enabled()
        DirectConvolution.minimumWinograd4Side = DirectConvolution.defaultMinimumWinograd4Side
        DirectConvolution.minimumWinogradImagesPerChunk = DirectConvolution.defaultMinimumWinogradImagesPerChunk
    }

    /// Any three consecutive ranges of an image's `tiles` tiles (`0..<first`, `first..<second`, `second..<tiles`; a range
    /// inside one tile row, one that ends or starts a row, whole rows between), each convolved by `convolve(t0, t1,
    /// &outputs)` into outputs that start as NaN: the first `(first, second)` whose outputs are not `whole`'s bits, or
    /// nil (every output written once, the same bits as the whole image's).
    func firstDifferingSplit(tiles: Int, whole: [Float], _ convolve: (Int, Int, inout [Float]) -> Void) -> (Int, Int)? {
        for first in 0...tiles {
            for second in stride(from: first, through: tiles, by: max(1, tiles / 4)) {
                var parts = [Float](repeating: .nan, count: whole.count)
                for (t0, t1) in [(0, first), (first, second), (second, tiles)] { convolve(t0, t1, &parts) }
                if parts.map(\.bitPattern) != whole.map(\.bitPattern) { return (first, second) }
            }
        }
        return nil
    }

    /// Each instruction set the CPU runs the direct kernel with; on a CPU without AVX2/FMA3 only nil, the
    /// im2col path that every convolution takes there (so the comparisons below still run).
    var kernelChoices: [DirectConvolution.InstructionSet?] {
        DirectConvolution.isSupported ? DirectConvolution.supportedInstructionSets : [nil]
    }

    /// Runs `body` with each kernel choice and 1 and 2 threads, passing a label that names both.
    func forEachKernel(_ body: (String) -> Void) {
        for isa in kernelChoices {
            if let isa { DirectConvolution.instructionSet = isa }
            for threads in [1, 2] {
                Parallel.setThreadCount(threads)
                body("\(isa.map(String.init(describing:)) ?? "im2col"), \(threads) thread(s)")
            }
        }
    }

    /// Which passes of the cases take a direct kernel: both ways with >= 16 channels on each side, and
    /// every pass with one channel on a side, except a weight gradient whose one channel is its output.
    func testDirectKernelChoice() {
        for c in Self.cases {
            let g = ConvolutionGeometry(channels: c.c, height: c.h, width: c.w, kernelHeight: 3, kernelWidth: 3, padding: c.padding)
            let supported = DirectConvolution.isSupported, one = c.c == 1 || c.o == 1
            XCTAssertEqual(
                DirectConvolution.applies(g, inputs: c.c, outputs: c.o), supported && (c.c >= 8 && c.o >= 16 || one), "forward, \(c)")
            XCTAssertEqual(
                DirectConvolution.applies(g, inputs: c.o, outputs: c.c), supported && (c.o >= 8 && c.c >= 16 || one),
                "input gradient, \(c)")
            XCTAssertEqual(
                DirectConvolution.appliesToWeightGradient(g, outputs: c.o), supported && (c.c >= 8 && c.o >= 16 || c.c == 1),
                "weight gradient, \(c)")
        }
        XCTAssertGreaterThanOrEqual(Self.cases.filter { $0.c >= 16 && $0.o >= 16 }.count, 6, "too few cases test the direct kernel")
        XCTAssertGreaterThanOrEqual(Self.cases.filter { $0.c == 1 || $0.o == 1 }.count, 8, "too few cases test the one-channel kernels")
        XCTAssertTrue(DirectConvolution.defaultOneChannelEnabled(environment: [:]), "the one-channel kernels are on by default")
        XCTAssertFalse(
            DirectConvolution.defaultOneChannelEnabled(environment: ["DAFAR_CONV3X3_ONE_CHANNEL": "off"]), "the variable turns them off")
        let first = ConvolutionGeometry(channels: 1, height: 28, width: 28, kernelHeight: 3, kernelWidth: 3)
        DirectConvolution.isOneChannelEnabled = false
        defer { DirectConvolution.isOneChannelEnabled = true }
        XCTAssertFalse(DirectConvolution.applies(first, inputs: 1, outputs: 32), "switched off: the first layer takes im2col")
        XCTAssertFalse(DirectConvolution.appliesToWeightGradient(first, outputs: 32), "switched off: its weight gradient too")
        let strided = ConvolutionGeometry(channels: 32, height: 8, width: 8, kernelHeight: 3, kernelWidth: 3, stride: 2, padding: 1)
        XCTAssertFalse(DirectConvolution.applies(strided, inputs: 32, outputs: 32), "stride 2 takes the im2col path")
        let wide = ConvolutionGeometry(channels: 32, height: 8, width: 8, kernelHeight: 3, kernelWidth: 3, padding: 3)
        XCTAssertFalse(DirectConvolution.applies(wide, inputs: 32, outputs: 32), "padding 3 takes the im2col path")
        let large = ConvolutionGeometry(channels: 32, height: 8, width: 8, kernelHeight: 5, kernelWidth: 5, padding: 2)
        XCTAssertFalse(DirectConvolution.applies(large, inputs: 32, outputs: 32), "a 5x5 kernel takes the im2col path")
    }

    /// Convolution forward (with and without bias and fused ReLU) and input gradient (with and without the
    /// fused ReLU's mask) against the naive loops; the input gradient of a convolution is the transposed
    /// convolution of dY with the same weight.
    func testConvolutionMatchesNaiveLoops() {
        forEachKernel { kernel in
            for (index, c) in Self.cases.enumerated() {
                let seed = UInt64(10 * index)
                let x = randomTensor([c.n, c.c, c.h, c.w], seed: seed), w = randomTensor([c.o, c.c, 3, 3], seed: seed + 1)
                let b = randomTensor([c.o], seed: seed + 2)
                let label = "\(c), \(kernel)"
                let expected = naiveConvolution(x, w, b, stride: 1, padding: c.padding)
                let y = ConvolutionKernels.forward(input: x, weight: w, bias: b, padding: c.padding)
                check(y, expected, "conv2d forward, \(label)")
                let relu = ConvolutionKernels.forward(input: x, weight: w, bias: b, padding: c.padding, reLU: true)
                check(relu, expected.map { max(0, $0) }, "conv2d + ReLU forward, \(label)")
                let noBias = ConvolutionKernels.forward(input: x, weight: w, bias: nil, padding: c.padding)
                check(
                    noBias, naiveConvolution(x, w, nil, stride: 1, padding: c.padding), "conv2d forward without bias, \(label)")

                let dy = randomTensor(y.shape, seed: seed + 3)
                let dx = ConvolutionKernels.backward(input: x, weight: w, outputGradient: dy, padding: c.padding, needWeightGradient: false)
                check(
                    dx.input!, naiveTransposedConvolution(dy, w, nil, stride: 1, padding: c.padding), "conv2d input gradient, \(label)")
                let masked = ConvolutionKernels.backward(
                    input: x, weight: w, outputGradient: dy, padding: c.padding, needWeightGradient: false, reLUOutput: relu)
                let maskedDy = Tensor(shape: dy.shape, storage: zip(dy.storage, relu.storage).map { $1 > 0 ? $0 : 0 })
                check(
                    masked.input!, naiveTransposedConvolution(maskedDy, w, nil, stride: 1, padding: c.padding),
                    "conv2d + ReLU input gradient, \(label)")
            }
        }
    }

    /// Transposed convolution forward and input gradient (a convolution of dY with the same weight).
    func testTransposedConvolutionMatchesNaiveLoops() {
        forEachKernel { kernel in
            // The transposed convolution reads [n, c, h, w] with a [c, o, 3, 3] weight; padding <= 1 keeps its output >= 1x1.
            for (index, c) in Self.cases.enumerated() where c.padding <= 1 {
                let seed = UInt64(1000 + 10 * index)
                let x = randomTensor([c.n, c.c, c.h, c.w], seed: seed), w = randomTensor([c.c, c.o, 3, 3], seed: seed + 1)
                let b = randomTensor([c.o], seed: seed + 2)
                let label = "\(c), \(kernel)"
                let y = ConvolutionKernels.transposedForward(input: x, weight: w, bias: b, padding: c.padding)
                let expected = naiveTransposedConvolution(x, w, b, stride: 1, padding: c.padding)
                check(y, expected, "conv-transpose2d forward, \(label)")
                let relu = ConvolutionKernels.transposedForward(input: x, weight: w, bias: b, padding: c.padding, reLU: true)
                check(relu, expected.map { max(0, $0) }, "conv-transpose2d + ReLU forward, \(label)")

                let dy = randomTensor(y.shape, seed: seed + 3)
                let dx = ConvolutionKernels.transposedBackward(
                    input: x, weight: w, outputGradient: dy, padding: c.padding, needWeightGradient: false)
                check(
                    dx.input!, naiveConvolution(dy, w, nil, stride: 1, padding: c.padding), "conv-transpose2d input gradient, \(label)")
                let masked = ConvolutionKernels.transposedBackward(
                    input: x, weight: w, outputGradient: dy, padding: c.padding, needWeightGradient: false, reLUOutput: relu)
                let maskedDy = Tensor(shape: dy.shape, storage: zip(dy.storage, relu.storage).map { $1 > 0 ? $0 : 0 })
                check(
                    masked.input!, naiveConvolution(maskedDy, w, nil, stride: 1, padding: c.padding),
                    "conv-transpose2d + ReLU input gradient, \(label)")
            }
        }
    }

    /// `dW [O, C, 3, 3]` of a convolution: `sum_{n, y, x} dy[n, o, y, x] * x[n, c, y - p + ky, x - p + kx]`, in Double.
    func naiveWeightGradient(_ x: Tensor, _ dy: Tensor, padding: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]), (o, oh, ow) = (dy.shape[1], dy.shape[2], dy.shape[3])
        var out = [Float](repeating: 0, count: o * c * 9)
        for oc in 0..<o {
            for ic in 0..<c {
                for t in 0..<9 {
                    var s = 0.0
                    for image in 0..<n {
                        for y in 0..<oh {
                            for xo in 0..<ow {
                                let iy = y - padding + t / 3, ix = xo - padding + t % 3
                                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                                s +=
                                    Double(dy.storage[((image * o + oc) * oh + y) * ow + xo])
                                    * Double(x.storage[((image * c + ic) * h + iy) * w + ix])
                            }
                        }
                    }
                    out[(oc * c + ic) * 9 + t] = Float(s)
                }
            }
        }
        return Tensor(shape: [o, c, 3, 3], storage: out)
    }

    /// `t [N, C, ...]` times `mask > 0`, element by element.
    func masked(_ t: Tensor, by mask: Tensor) -> Tensor {
        Tensor(shape: t.shape, storage: zip(t.storage, mask.storage).map { $1 > 0 ? $0 : 0 })
    }

    /// Weight and bias gradients of both layers (with and without a fused ReLU's mask) against the naive
    /// sums; a transposed convolution's weight gradient is the convolution's with the roles swapped.
    func testWeightGradientsMatchNaiveSums() {
        forEachKernel { kernel in
            for (index, c) in Self.cases.enumerated() {
                let seed = UInt64(2000 + 10 * index)
                let x = randomTensor([c.n, c.c, c.h, c.w], seed: seed), w = randomTensor([c.o, c.c, 3, 3], seed: seed + 1)
                let b = randomTensor([c.o], seed: seed + 2)
                let label = "\(c), \(kernel)"
                let relu = ConvolutionKernels.forward(input: x, weight: w, bias: b, padding: c.padding, reLU: true)
                let dy = randomTensor(relu.shape, seed: seed + 3)
                for mask in [nil, relu] {
                    let what = mask == nil ? "conv2d" : "conv2d + ReLU"
                    let expected = mask.map { masked(dy, by: $0) } ?? dy
                    let grads = ConvolutionKernels.backward(
                        input: x, weight: w, outputGradient: dy, padding: c.padding, needInputGradient: false, reLUOutput: mask)
                    check(grads.weight!, naiveWeightGradient(x, expected, padding: c.padding), "\(what) weight gradient, \(label)")
                    check(grads.bias!, ConvolutionKernels.channelSums(expected), "\(what) bias gradient, \(label)")
                }
                guard c.padding <= 1 else { continue }  // the transposed convolution's output must be >= 1x1
                // conv-transpose2d: reads [n, c, h, w] with a [c, o, 3, 3] weight
                let wt = randomTensor([c.c, c.o, 3, 3], seed: seed + 4)
                let yt = ConvolutionKernels.transposedForward(input: x, weight: wt, bias: b, padding: c.padding, reLU: true)
                let dyt = randomTensor(yt.shape, seed: seed + 5)
                for mask in [nil, yt] {
                    let what = mask == nil ? "conv-transpose2d" : "conv-transpose2d + ReLU"
                    let expected = mask.map { masked(dyt, by: $0) } ?? dyt
                    let grads = ConvolutionKernels.transposedBackward(
                        input: x, weight: wt, outputGradient: dyt, padding: c.padding, needInputGradient: false, reLUOutput: mask)
                    check(grads.weight!, naiveWeightGradient(expected, x, padding: c.padding), "\(what) weight gradient, \(label)")
                    check(grads.bias!, ConvolutionKernels.channelSums(expected), "\(what) bias gradient, \(label)")
                }
            }
        }
    }

    /// The direct kernels (each instruction set) and the im2col path agree.
    func testDirectAndIm2colPathsAgree() {
        for c in [Case(n: 5, c: 17, h: 11, w: 10, o: 16, padding: 1), Case(n: 5, c: 1, h: 11, w: 21, o: 16, padding: 1)] {
            compareDirectAndIm2col(c)
        }
    }

    /// Forward and backward of the convolution `c` (with a fused ReLU) through each direct kernel and through im2col.
    func compareDirectAndIm2col(_ c: Case) {
        let x = randomTensor([c.n, c.c, c.h, c.w], seed: 71), w = randomTensor([c.o, c.c, 3, 3], seed: 72)
        let b = randomTensor([c.o], seed: 73), dy = randomTensor([c.n, c.o, c.h, c.w], seed: 74)
        func run() -> (Tensor, ConvolutionKernels.Gradients) {
            let y = ConvolutionKernels.forward(input: x, weight: w, bias: b, padding: c.padding, reLU: true)
            return (y, ConvolutionKernels.backward(input: x, weight: w, outputGradient: dy, padding: c.padding, reLUOutput: y))
        }
        DirectConvolution.isEnabled = false
        let (yIm2col, im2col) = run()
        DirectConvolution.isEnabled = true
        for isa in DirectConvolution.supportedInstructionSets {
            DirectConvolution.instructionSet = isa
            let (y, direct) = run()
            assertClose(y, yIm2col, tolerance: Self.tolerance, "forward, direct (\(isa)) vs im2col, \(c)")
            assertClose(direct.input!, im2col.input!, tolerance: Self.tolerance, "input gradient, direct (\(isa)) vs im2col, \(c)")
            assertClose(direct.weight!, im2col.weight!, tolerance: Self.tolerance, "weight gradient, direct (\(isa)) vs im2col, \(c)")
            assertClose(direct.bias!, im2col.bias!, tolerance: Self.tolerance, "bias gradient, direct (\(isa)) vs im2col, \(c)")
        }
    }

    /// With one thread, repeated calls give the same bits; 2 threads give the same bits as 1; the AVX2
    /// and AVX-512 kernels give the same bits (they perform the same FMAs in the same order). 48 channels
    /// make one pair of 16-channel blocks and a lone block for the AVX-512 tiles.
    func testResultsAreBitReproducible() {
        let x = randomTensor([3, 48, 26, 26], seed: 81), w = randomTensor([48, 48, 3, 3], seed: 82)
        let b = randomTensor([48], seed: 83), dy = randomTensor([3, 48, 24, 24], seed: 84)
        func run() -> [Tensor] {
            let y = ConvolutionKernels.forward(input: x, weight: w, bias: b, reLU: true)
            let dx = ConvolutionKernels.backward(input: x, weight: w, outputGradient: dy, reLUOutput: y)
            let yt = ConvolutionKernels.transposedForward(input: dy, weight: w, bias: b)
            let dxt = ConvolutionKernels.transposedBackward(input: dy, weight: w, outputGradient: x)
            let masked = ConvolutionKernels.transposedBackward(input: dy, weight: w, outputGradient: x, reLUOutput: yt)
            return [y, dx.input!, dx.weight!, dx.bias!, yt, dxt.input!, dxt.weight!, dxt.bias!] + [masked.weight!, masked.bias!]
        }
        assertBitReproducible(run)
    }

    /// The kernel skips the taps that read padding (each rectangle of positions reads the image itself
    /// through the taps that reach it; narrow rows keep a frame of zeros and skip only kernel rows): with
    /// finite weights that changes no bits, so padding p gives the bits of padding 0 on the image framed
    /// with p zeros, forward and input gradient, on both instruction sets, on one thread and with one
    /// image's rows split across threads.
    func testSkippedPaddingTapsChangeNoBits() {
        func framed(_ t: Tensor, _ p: Int) -> Tensor {
            let (n, c, h, w) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
            var out = [Float](repeating: 0, count: n * c * (h + 2 * p) * (w + 2 * p))
            for plane in 0..<(n * c) {
                for y in 0..<h {
                    for x in 0..<w { out[(plane * (h + 2 * p) + y + p) * (w + 2 * p) + x + p] = t.storage[(plane * h + y) * w + x] }
                }
            }
            return Tensor(shape: [n, c, h + 2 * p, w + 2 * p], storage: out)
        }
        func sameBits(_ a: Tensor, _ b: Tensor) -> Bool {
            a.shape == b.shape && zip(a.storage, b.storage).allSatisfy { $0.bitPattern == $1.bitPattern }
        }
        for isa in DirectConvolution.supportedInstructionSets {
            DirectConvolution.instructionSet = isa
            // padding 1 and 2 on rows with a middle of 8 or more columns (rectangles) and fewer (a frame of zeros);
            // padding 0 makes the input gradient's padding 2
            let shapes = [
                ([2, 24, 10, 13], 2), ([1, 17, 3, 4], 2), ([2, 20, 7, 1], 1), ([2, 20, 9, 12], 1), ([1, 32, 24, 24], 2),
                ([2, 16, 10, 10], 0), ([1, 24, 16, 14], 0)
            ]
            for (shape, padding) in shapes {
                let x = randomTensor(shape, seed: 97), w = randomTensor([33, shape[1], 3, 3], seed: 98)
                let b = randomTensor([33], seed: 99)
                for threads in [1, 2, 3] {
                    Parallel.setThreadCount(threads)
                    let label = "input \(shape), padding \(padding), \(isa), \(threads) thread(s)"
                    let y = ConvolutionKernels.forward(input: x, weight: w, bias: b, padding: padding, reLU: true)
                    let reference = ConvolutionKernels.forward(input: framed(x, padding), weight: w, bias: b, reLU: true)
                    XCTAssertTrue(sameBits(y, reference), "forward, \(label)")
                    // the input gradient: padding 2 - p on dY, with and without the ReLU mask of the layer's output
                    let dy = randomTensor(y.shape, seed: 100)
                    let dx = ConvolutionKernels.backward(
                        input: x, weight: w, outputGradient: dy, padding: padding, needWeightGradient: false, reLUOutput: y)
                    // the same sums as a convolution of the framed, masked dY with the weight rotated by 180 degrees
                    let (o, c) = (w.shape[0], w.shape[1])
                    var rotated = [Float](repeating: 0, count: w.count)
                    for i in 0..<o {
                        for j in 0..<c {
                            for t in 0..<9 { rotated[(j * o + i) * 9 + t] = w.storage[(i * c + j) * 9 + 8 - t] }
                        }
                    }
                    // (a masked pass takes F(2x2, 3x3) where an unmasked one may take F(4x4, 3x3): so does its reference)
                    let winograd4 = DirectConvolution.isWinograd4Enabled
                    DirectConvolution.isWinograd4Enabled = false
                    let rotatedReference = ConvolutionKernels.forward(
                        input: framed(masked(dy, by: y), 2 - padding), weight: Tensor(shape: [c, o, 3, 3], storage: rotated), bias: nil)
                    DirectConvolution.isWinograd4Enabled = winograd4
                    XCTAssertTrue(sameBits(dx.input!, rotatedReference), "input gradient, \(label)")
                }
            }
        }
    }

    /// The one-channel kernels (the MNIST network's first layer and its decoder's last, with their ReLU
    /// masks): repeated 1-thread runs, 1 and 2 threads, and AVX2 and AVX-512 give the same bits.
    func testOneChannelResultsAreBitReproducible() {
        let x = randomTensor([5, 1, 28, 28], seed: 85), w = randomTensor([32, 1, 3, 3], seed: 86)
        let b = randomTensor([32], seed: 87), wt = randomTensor([32, 1, 3, 3], seed: 88), bt = randomTensor([1], seed: 89)
        let dy = randomTensor([5, 32, 26, 26], seed: 90), dyt = randomTensor([5, 1, 28, 28], seed: 91)
        func run() -> [Tensor] {
            let y = ConvolutionKernels.forward(input: x, weight: w, bias: b, reLU: true)
            let dx = ConvolutionKernels.backward(input: x, weight: w, outputGradient: dy, reLUOutput: y)
            let yt = ConvolutionKernels.transposedForward(input: y, weight: wt, bias: bt, reLU: true)
            let dxt = ConvolutionKernels.transposedBackward(input: y, weight: wt, outputGradient: dyt, reLUOutput: yt)
            return [y, dx.input!, dx.weight!, dx.bias!, yt, dxt.input!, dxt.weight!, dxt.bias!]
        }
        assertBitReproducible(run)
    }

    /// `run`'s results: the same bits in two 1-thread runs, with 1 and 2 threads, and with every kernel
    /// choice (`kernelChoices`: each instruction set the CPU has, else the im2col path).
    func assertBitReproducible(_ run: () -> [Tensor], file: StaticString = #filePath, line: UInt = #line) {
        var reference: [Tensor]?
        for choice in kernelChoices {
            if let choice { DirectConvolution.instructionSet = choice }
            let isa = choice.map(String.init(describing:)) ?? "im2col"
            Parallel.setThreadCount(1)
            let first = run(), second = run()
            Parallel.setThreadCount(2)
            let two = run()
            for (i, (a, b)) in zip(first, second).enumerated() {
                XCTAssertEqual(
                    a.storage.map(\.bitPattern), b.storage.map(\.bitPattern), "\(isa): result \(i) differs between two 1-thread runs",
                    file: file, line: line)
            }
            for (i, (a, b)) in zip(first, two).enumerated() {
                XCTAssertEqual(
                    a.storage.map(\.bitPattern), b.storage.map(\.bitPattern), "\(isa): result \(i) differs between 1 and 2 threads",
                    file: file, line: line)
            }
            for (i, (a, b)) in zip(reference ?? first, first).enumerated() {
                XCTAssertEqual(
                    a.storage.map(\.bitPattern), b.storage.map(\.bitPattern), "result \(i) differs between AVX2 and \(isa)", file: file,
                    line: line)
            }
            reference = reference ?? first
        }
    }

    /// This machine's best kernel is the one in use, and the tests above ran more than AVX2 where the CPU has AVX-512.
    func testInstructionSetChoice() {
        let best = DirectConvolution.bestInstructionSet
        XCTAssertEqual(DirectConvolution.defaultInstructionSet(environment: [:]), best ?? .avx2, "the best instruction set is the default")
        XCTAssertEqual(
            DirectConvolution.defaultInstructionSet(environment: ["DAFAR_CONV3X3_ISA": "avx2"]), .avx2, "the variable forces AVX2")
        XCTAssertEqual(DirectConvolution.supportedInstructionSets.first, best == nil ? nil : .avx2, "AVX2 is always tested where it runs")
        XCTAssertEqual(DirectConvolution.supportedInstructionSets.last, best)
    }

    /// A batch gives each image the values it has on its own (the kernel never mixes images).
    func testBatchMatchesImageByImage() {
        let x = randomTensor([3, 8, 8, 7], seed: 91), w = randomTensor([19, 8, 3, 3], seed: 92), b = randomTensor([19], seed: 93)
        let whole = ConvolutionKernels.forward(input: x, weight: w, bias: b, padding: 1)
        let parts = (0..<3).map { ConvolutionKernels.forward(input: x.slice($0..<($0 + 1)), weight: w, bias: b, padding: 1) }
        XCTAssertEqual(whole.storage, Tensor.concatenate(parts).storage, "a batch must equal its images one by one")
    }

    /// One image with more threads than images has its output rows split across the threads: the bits of
    /// the image in a batch on one thread, for 2 and 3 threads, each instruction set, padding 0 to 2 (the
    /// split cuts through the top and bottom rows that skip kernel rows), with a mask and a ReLU.
    func testOneImageSplitAcrossThreadsKeepsItsBits() {
        let x = randomTensor([2, 24, 11, 9], seed: 94), w = randomTensor([40, 24, 3, 3], seed: 95)
        let b = randomTensor([40], seed: 96)
        for isa in DirectConvolution.supportedInstructionSets {
            DirectConvolution.instructionSet = isa
            for padding in 0...2 {
                Parallel.setThreadCount(1)
                let batch = ConvolutionKernels.forward(input: x, weight: w, bias: b, padding: padding, reLU: true)
                let mask = randomTensor(batch.shape, seed: 97 + UInt64(padding))
                let backward = ConvolutionKernels.backward(
                    input: x, weight: w, outputGradient: batch, padding: padding, needWeightGradient: false, reLUOutput: mask)
                for threads in [2, 3] {
                    Parallel.setThreadCount(threads)
                    let one = ConvolutionKernels.forward(input: x.slice(1..<2), weight: w, bias: b, padding: padding, reLU: true)
                    XCTAssertEqual(
                        one.storage.map(\.bitPattern), batch.slice(1..<2).storage.map(\.bitPattern),
                        "\(isa), padding \(padding), \(threads) threads")
                    let oneBackward = ConvolutionKernels.backward(
                        input: x.slice(1..<2), weight: w, outputGradient: batch.slice(1..<2), padding: padding,
                        needWeightGradient: false, reLUOutput: mask.slice(1..<2))
                    XCTAssertEqual(
                        oneBackward.input!.storage.map(\.bitPattern), backward.input!.slice(1..<2).storage.map(\.bitPattern),
                        "input gradient, \(isa), padding \(padding), \(threads) threads")
                }
            }
        }
    }

    /// The same for the first layer's kernel (one input channel) and for a convolution pooled in its pass:
    /// with one image, each thread computes and pools its own band of rows (an odd last row included).
    func testOneImageSplitAcrossThreadsKeepsItsBitsWithOneInputChannelAndPooling() {
        defer { Parallel.setThreadCount(Parallel.availableCores) }
        for (channels, outputs, height) in [(1, 20, 13), (1, 20, 12), (24, 40, 13), (24, 40, 14)] {
            let x = randomTensor([2, channels, height, 11], seed: 98), w = randomTensor([outputs, channels, 3, 3], seed: 99)
            let b = randomTensor([outputs], seed: 100)
            for isa in DirectConvolution.supportedInstructionSets {
                DirectConvolution.instructionSet = isa
                for padding in 0...1 {
                    Parallel.setThreadCount(1)
                    let batch = ConvolutionKernels.forward(input: x, weight: w, bias: b, padding: padding, reLU: true)
                    let pooledBatch = ConvolutionKernels.forwardPooled(input: x, weight: w, bias: b, padding: padding, reLU: true)
                    let perImage = pooledBatch.argmax.count / 2
                    for threads in [2, 3] {
                        Parallel.setThreadCount(threads)
                        let image = x.slice(1..<2),
                            what = "\(channels) -> \(outputs), \(height) rows, \(isa), padding \(padding), \(threads) threads"
                        let one = ConvolutionKernels.forward(input: image, weight: w, bias: b, padding: padding, reLU: true)
                        XCTAssertTrue(one.storage.map(\.bitPattern) == batch.slice(1..<2).storage.map(\.bitPattern), what)
                        let pooled = ConvolutionKernels.forwardPooled(input: image, weight: w, bias: b, padding: padding, reLU: true)
                        XCTAssertTrue(
                            pooled.output.storage.map(\.bitPattern) == batch.slice(1..<2).storage.map(\.bitPattern),
                            "pooled stage's output, \(what)")
                        XCTAssertTrue(
                            pooled.pooled.storage.map(\.bitPattern) == pooledBatch.pooled.slice(1..<2).storage.map(\.bitPattern),
                            "pooled, \(what)")
                        XCTAssertTrue(pooled.argmax == Array(pooledBatch.argmax[perImage...]), "argmax, \(what)")
                    }
                }
            }
        }
        DirectConvolution.instructionSet = DirectConvolution.bestInstructionSet ?? .avx2
    }

    /// The one-output-channel kernel (a decoder's last layer, and the input gradient of a first layer) split by
    /// rows for one image: the bits of the image in a batch on one thread, with 2 and 3 threads cutting through
    /// its top and bottom frames of tiles (output heights 7, 12, 16 and 28: no frame, frames of 4 or 6, and of 8),
    /// each instruction set, padding 0 to 2; forward with a ReLU, and the masked input gradient of a 1 -> 20 layer.
    func testOneImageSplitAcrossThreadsKeepsItsBitsWithOneOutputChannel() {
        defer { Parallel.setThreadCount(Parallel.availableCores) }
        for isa in DirectConvolution.supportedInstructionSets {
            DirectConvolution.instructionSet = isa
            for padding in 0...2 {
                for outputHeight in [7, 12, 16, 28] {
                    let height = outputHeight + 2 - 2 * padding
                    let x = randomTensor([2, 24, height, 19], seed: 101), w = randomTensor([1, 24, 3, 3], seed: 102)
                    let b = randomTensor([1], seed: 103)
                    let first = randomTensor([2, 1, height, 19], seed: 104), wFirst = randomTensor([20, 1, 3, 3], seed: 105)
                    Parallel.setThreadCount(1)
                    let batch = ConvolutionKernels.forward(input: x, weight: w, bias: b, padding: padding, reLU: true)
                    let gradient = randomTensor([2, 20, outputHeight, 19 + 2 * padding - 2], seed: 106)
                    let mask = randomTensor(gradient.shape, seed: 107)
                    let backward = ConvolutionKernels.backward(
                        input: first, weight: wFirst, outputGradient: gradient, padding: padding, needWeightGradient: false,
                        reLUOutput: mask)
                    for threads in [2, 3] {
                        Parallel.setThreadCount(threads)
                        let what = "\(outputHeight) rows, \(isa), padding \(padding), \(threads) threads"
                        let one = ConvolutionKernels.forward(input: x.slice(1..<2), weight: w, bias: b, padding: padding, reLU: true)
                        XCTAssertTrue(one.storage.map(\.bitPattern) == batch.slice(1..<2).storage.map(\.bitPattern), what)
                        let oneBackward = ConvolutionKernels.backward(
                            input: first.slice(1..<2), weight: wFirst, outputGradient: gradient.slice(1..<2), padding: padding,
                            needWeightGradient: false, reLUOutput: mask.slice(1..<2))
                        XCTAssertTrue(
                            oneBackward.input!.storage.map(\.bitPattern) == backward.input!.slice(1..<2).storage.map(\.bitPattern),
                            "input gradient, \(what)")
                    }
                }
            }
        }
        DirectConvolution.instructionSet = DirectConvolution.bestInstructionSet ?? .avx2
    }

    /// One image split across threads reads its packed weights from `PackedWeightCache`: the same bits as
    /// packing them per call, and a weight updated in place (as Adam does) is packed again, never read stale.
    func testOneImagesCachedPackedWeightsFollowInPlaceUpdates() {
        defer { Parallel.setThreadCount(Parallel.availableCores) }
        let x = randomTensor([1, 24, 12, 11], seed: 101)
        var weight = randomTensor([40, 24, 3, 3], seed: 102), transposed = randomTensor([24, 40, 3, 3], seed: 103)
        for step in 0..<3 {
            Parallel.setThreadCount(1)  // no row split: packs per call
            let expected = ConvolutionKernels.forward(input: x, weight: weight, bias: nil, padding: 1, reLU: true)
            let expectedTransposed = ConvolutionKernels.transposedForward(input: x, weight: transposed, bias: nil)
            Parallel.setThreadCount(2)
            for call in 0..<2 {  // the first call fills the cache, the second reads it
                let y = ConvolutionKernels.forward(input: x, weight: weight, bias: nil, padding: 1, reLU: true)
                XCTAssertTrue(y.storage.map(\.bitPattern) == expected.storage.map(\.bitPattern), "step \(step), call \(call)")
                let t = ConvolutionKernels.transposedForward(input: x, weight: transposed, bias: nil)
                XCTAssertTrue(
                    t.storage.map(\.bitPattern) == expectedTransposed.storage.map(\.bitPattern), "transposed, step \(step), call \(call)")
            }
            // an optimizer's step: the values change in place, through the tensor's only other reference
            weight.withUnsafeMutableBufferPointer { values in for i in values.indices { values[i] = values[i] * 0.5 + 0.01 } }
            transposed.withUnsafeMutableBufferPointer { values in values[7] += 1 }
        }
    }
}

/// Every test of `DirectConvolutionTests` with the multi-channel passes (at least 8 channels in and 16 out,
/// outputs of at least 6 x 6) through Winograd's F(2x2, 3x3) (`conv3x3_winograd.h`): against the naive loops
/// to the same tolerance, the same bits on both instruction sets, for any thread count, in a batch and one
/// image at a time; and the choice of the pass, its switch, and that it does run (its last bits differ from
/// the direct kernel's).
final class WinogradConvolutionTests: DirectConvolutionTests {
    override class var winograd: Bool { true }

    func testWinogradChoiceAndSwitch() {
        XCTAssertTrue(DirectConvolution.defaultWinogradEnabled(environment: [:]), "on by default")
        XCTAssertFalse(
            DirectConvolution.defaultWinogradEnabled(environment: ["DAFAR_CONV3X3_WINOGRAD": "off"]), "the variable turns it off")
        XCTAssertTrue(DirectConvolution.defaultWinogradEnabled(environment: ["DAFAR_CONV3X3_WINOGRAD": "no"]), "only `off` turns it off")
        XCTAssertTrue(DirectConvolution.usesWinograd(outputHeight: 24, outputWidth: 24))
        XCTAssertTrue(DirectConvolution.usesWinograd(outputHeight: 6, outputWidth: 7))
        XCTAssertFalse(DirectConvolution.usesWinograd(outputHeight: 5, outputWidth: 24), "outputs below 6 x 6 take the direct kernel")
        DirectConvolution.minimumWinogradImagesPerChunk = DirectConvolution.defaultMinimumWinogradImagesPerChunk
        XCTAssertTrue(DirectConvolution.usesWinogradWeightGradient(outputHeight: 24, outputWidth: 24, images: 128, chunks: 8))
        XCTAssertTrue(DirectConvolution.usesWinogradWeightGradient(outputHeight: 24, outputWidth: 24, images: 32, chunks: 8))
        XCTAssertFalse(
            DirectConvolution.usesWinogradWeightGradient(outputHeight: 24, outputWidth: 24, images: 31, chunks: 8),
            "fewer than 4 images per chunk take the direct weight gradient")
        XCTAssertFalse(
            DirectConvolution.usesWinogradWeightGradient(outputHeight: 5, outputWidth: 24, images: 128, chunks: 8),
            "outputs below 6 x 6 take the direct weight gradient")
        DirectConvolution.isWinogradEnabled = false
        XCTAssertFalse(DirectConvolution.usesWinograd(outputHeight: 24, outputWidth: 24), "switched off")
        XCTAssertFalse(
            DirectConvolution.usesWinogradWeightGradient(outputHeight: 24, outputWidth: 24, images: 128, chunks: 8), "switched off")
    }

    /// Weight gradients of batches with several images per chunk, whose small images share the weight gradient's
    /// bands (`images_per_band`: 6 x 6 outputs, 9 tiles, six images a band; 8 x 8 with padding, 16 tiles, three),
    /// with the threshold as built: against the naive sums, on each instruction set and thread count, and
    /// the same bits with 1 and 2 threads and on both instruction sets.
    func testWinogradWeightGradientOfLargerBatches() {
        DirectConvolution.minimumWinogradImagesPerChunk = DirectConvolution.defaultMinimumWinogradImagesPerChunk
        let cases = [Case(n: 41, c: 16, h: 8, w: 8, o: 16, padding: 0), Case(n: 32, c: 24, h: 6, w: 6, o: 40, padding: 2)]
        for (index, c) in cases.enumerated() {
            let seed = UInt64(3000 + 10 * index)
            let x = randomTensor([c.n, c.c, c.h, c.w], seed: seed), w = randomTensor([c.o, c.c, 3, 3], seed: seed + 1)
            let dy = randomTensor([c.n, c.o, c.h + 2 * c.padding - 2, c.w + 2 * c.padding - 2], seed: seed + 2)
            var results: [[UInt32]] = []
            forEachKernel { kernel in
                let grads = ConvolutionKernels.backward(
                    input: x, weight: w, outputGradient: dy, padding: c.padding, needInputGradient: false)
                check(grads.weight!, naiveWeightGradient(x, dy, padding: c.padding), "weight gradient, \(c), \(kernel)")
                results.append(grads.weight!.storage.map(\.bitPattern))
            }
            XCTAssertTrue(results.allSatisfy { $0 == results[0] }, "\(c): the same bits on every instruction set and thread count")
        }
    }

    /// `conv3x3_winograd_image_tiles`, how two threads share an image whose tile rows do not split evenly: any three
    /// consecutive ranges of tiles, cutting tile rows anywhere (a range inside one row, one that ends or starts a
    /// row, whole rows between), write together the bits of the whole image, every output once (none left NaN), with
    /// and without a mask, on each instruction set: 10 x 10 and 26 x 26 outputs as in the MNIST network's E.5, D.1
    /// and D.6, 7 x 7 (a last tile row and column of one output) and 9 x 5.
    func testRangesOfTilesKeepTheImagesBits() {
        guard DirectConvolution.isSupported else { return }
        let cases = [
            Case(n: 1, c: 32, h: 12, w: 12, o: 64, padding: 0), Case(n: 1, c: 16, h: 8, w: 8, o: 20, padding: 2),
            Case(n: 1, c: 8, h: 24, w: 24, o: 16, padding: 2), Case(n: 1, c: 9, h: 9, w: 9, o: 16, padding: 0),
            Case(n: 1, c: 16, h: 9, w: 5, o: 17, padding: 1)
        ]
        for (index, c) in cases.enumerated() {
            let seed = UInt64(4000 + 10 * index)
            let x = randomTensor([c.c, c.h, c.w], seed: seed), mask = randomTensor([c.c, c.h, c.w], seed: seed + 1)
            let w = randomTensor([c.o, c.c, 3, 3], seed: seed + 2), b = randomTensor([c.o], seed: seed + 3)
            let (oh, ow) = (c.h + 2 * c.padding - 2, c.w + 2 * c.padding - 2)
            let tiles = (oh + 1) / 2 * ((ow + 1) / 2), count = c.o * oh * ow
            var packed = [Float](repeating: 0, count: Int(conv3x3_winograd_packed_count(Int32(c.o), Int32(c.c))))
            conv3x3_winograd_pack(&packed, w.storage, Int32(c.o), Int32(c.c), 0)
            var scratch = [Float](
                repeating: 0, count: conv3x3_winograd_scratch_count(Int32(c.c), Int32(c.h), Int32(c.w), Int32(c.o), Int32(c.padding)))
            for isa in DirectConvolution.supportedInstructionSets {
                for masked in [false, true] {
                    let m: [Float]? = masked ? mask.storage : nil
                    var whole = [Float](repeating: .nan, count: count)
                    conv3x3_winograd_image_rows(
                        &whole, x.storage, m, packed, b.storage, 1, Int32(c.c), Int32(c.h), Int32(c.w), Int32(c.o), Int32(c.padding),
                        0, Int32(oh), &scratch, isa.rawValue, 0)
                    let differing = firstDifferingSplit(tiles: tiles, whole: whole) { t0, t1, parts in
                        conv3x3_winograd_image_tiles(
                            &parts, x.storage, m, packed, b.storage, 1, Int32(c.c), Int32(c.h), Int32(c.w), Int32(c.o),
                            Int32(c.padding), Int32(t0), Int32(t1), &scratch, isa.rawValue)
                    }
                    if let (first, second) = differing {
                        return XCTFail(
                            "\(c), \(isa), mask \(masked): tiles 0..<\(first), ..<\(second), ..<\(tiles) differ from the whole image")
                    }
                }
            }
        }
    }

    /// The MNIST network's largest layer (its input and weight gradients through a ReLU's mask, and the weight
    /// gradient of the transposed convolution of the decoder, whose bias gradient sums its input) through
    /// Winograd and through the direct kernel: within the tolerance of each other, and not the same bits (so
    /// Winograd ran).
    func testWinogradRunsAndAgreesWithTheDirectKernel() {
        guard DirectConvolution.isSupported else { return }
        let x = randomTensor([2, 32, 26, 26], seed: 111), w = randomTensor([32, 32, 3, 3], seed: 112), b = randomTensor([32], seed: 113)
        let dy = randomTensor([2, 32, 24, 24], seed: 114)
        func run() -> [Tensor] {
            let y = ConvolutionKernels.forward(input: x, weight: w, bias: b, reLU: true)
            let gradients = ConvolutionKernels.backward(input: x, weight: w, outputGradient: dy, reLUOutput: y)
            let yt = ConvolutionKernels.transposedForward(input: dy, weight: w, bias: b, reLU: true)
            let transposed = ConvolutionKernels.transposedBackward(input: dy, weight: w, outputGradient: x, reLUOutput: yt)
            return [y, gradients.input!, gradients.weight!, transposed.weight!]
        }
        let winograd = run()
        DirectConvolution.isWinogradEnabled = false
        let direct = run()
        for (index, what) in ["forward", "input gradient", "weight gradient", "transposed weight gradient"].enumerated() {
            assertClose(winograd[index], direct[index], tolerance: Self.tolerance, "\(what), Winograd vs direct")
            XCTAssertNotEqual(
                winograd[index].storage.map(\.bitPattern), direct[index].storage.map(\.bitPattern), "\(what): Winograd did not run")
        }
    }

    /// A transposed convolution that reads the 2x nearest upsampling of its input in cache (`upsampling: true`), or that
    /// applies the sigmoid to the outputs it makes (`sigmoid: true`), or both, gives the bits of the same layer on the
    /// upsampled tensor followed by the sigmoid's pass: one-channel, Winograd, direct and im2col shapes, batches of one
    /// (split across 2 and 3 threads by tiles or rows, each thread upsampling only the rows it reads) and of three.
    /// The scratch memory is filled with other values first, so that a row read but not upsampled would show.
    func testUpsamplingAndSigmoidInCacheMatchTheLayersOneByOne() {
        defer { Parallel.setThreadCount(Parallel.availableCores) }
        // (input channels, output channels, source height, source width, padding): D.0 -> D.1 and D.5 -> D.6 of the
        // MNIST decoder, a one-output layer, odd tile counts, an output too small for Winograd, too few channels
        let cases = [
            (64, 64, 4, 4, 0), (32, 32, 12, 12, 0), (32, 1, 9, 7, 1), (24, 20, 5, 6, 0), (20, 24, 7, 5, 2),
            (16, 32, 1, 2, 0), (1, 20, 8, 7, 1), (4, 5, 6, 6, 1)
        ]
        for isa in kernelChoices {
            if let isa { DirectConvolution.instructionSet = isa }
            for (index, (inputs, outputs, height, width, padding)) in cases.enumerated() {
                let seed = UInt64(200 + 10 * index)
                let w = randomTensor([inputs, outputs, 3, 3], seed: seed), b = randomTensor([outputs], seed: seed + 1)
                for images in [1, 3] {
                    let x = randomTensor([images, inputs, height, width], seed: seed + 2)
                    let upsampled = PoolingKernels.upsampleNearest(x, height: 2 * height, width: 2 * width)
                    for threads in [1, 2, 3] {
                        Parallel.setThreadCount(threads)
                        let what =
                            "\(isa.map(String.init(describing:)) ?? "im2col"), case \(index), \(images) image(s), \(threads) thread(s)"
                        for reLU in [false, true] {
                            for (upsampling, sigmoid) in [(true, false), (true, true), (false, true)] {
                                let plain = ConvolutionKernels.transposedForward(
                                    input: upsampling ? upsampled : x, weight: w, bias: b, padding: padding, reLU: reLU)
                                let expected = sigmoid ? plain.map(Tensor.sigmoid) : plain
                                // leave other values in the scratch buffers the fused pass takes
                                _ = ConvolutionKernels.transposedForward(
                                    input: randomTensor(upsampled.shape, seed: seed + 3, low: 50, high: 90), weight: w, bias: b,
                                    padding: padding, reLU: reLU)
                                let fused = ConvolutionKernels.transposedForward(
                                    input: x, weight: w, bias: b, padding: padding, reLU: reLU, upsampling: upsampling,
                                    sigmoid: sigmoid)
                                let label = "\(what), ReLU \(reLU), upsampling \(upsampling), sigmoid \(sigmoid)"
                                XCTAssertEqual(fused.shape, expected.shape, label)
                                XCTAssertTrue(fused.storage.map(\.bitPattern) == expected.storage.map(\.bitPattern), label)
                            }
                        }
                    }
                }
            }
        }
        DirectConvolution.instructionSet = DirectConvolution.bestInstructionSet ?? .avx2
    }
}

/// Every test of `DirectConvolutionTests` with the multi-channel passes whose kernels apply no mask (the forward
/// passes, the input gradients of layers without a ReLU on their input, and those that unpool or upsample in cache)
/// through Winograd's F(4x4, 3x3) (`conv3x3_winograd4.h`) on every Winograd output, not only the largest (the
/// masked passes through F(2x2, 3x3)): against the naive loops to the same tolerance, the same bits on both
/// instruction sets, for any thread count, in a batch and one image at a time; and the choice of the pass, its
/// switch, any split of an image's tiles, and that it does run.
final class Winograd4ConvolutionTests: DirectConvolutionTests {
    override class var winograd: Bool { true }
    override class var winograd4: Bool { true }

    func testWinograd4ChoiceAndSwitch() {
        XCTAssertTrue(DirectConvolution.defaultWinograd4Enabled(environment: [:]), "on by default")
        XCTAssertFalse(
            DirectConvolution.defaultWinograd4Enabled(environment: ["DAFAR_CONV3X3_WINOGRAD4": "off"]), "the variable turns it off")
        DirectConvolution.minimumWinograd4Side = DirectConvolution.defaultMinimumWinograd4Side
        XCTAssertTrue(DirectConvolution.usesWinograd4(outputHeight: 24, outputWidth: 24), "E.2 of the MNIST network")
        XCTAssertTrue(DirectConvolution.usesWinograd4(outputHeight: 26, outputWidth: 26), "D.6")
        XCTAssertFalse(DirectConvolution.usesWinograd4(outputHeight: 10, outputWidth: 10), "E.5, D.1: F(2x2, 3x3)")
        XCTAssertFalse(DirectConvolution.usesWinograd4(outputHeight: 19, outputWidth: 40), "a side below 20")
        DirectConvolution.isWinogradEnabled = false
        XCTAssertFalse(DirectConvolution.usesWinograd4(outputHeight: 24, outputWidth: 24), "no Winograd at all")
        DirectConvolution.isWinogradEnabled = true
        DirectConvolution.isWinograd4Enabled = false
        XCTAssertFalse(DirectConvolution.usesWinograd4(outputHeight: 24, outputWidth: 24), "switched off")
        XCTAssertTrue(DirectConvolution.usesWinograd(outputHeight: 24, outputWidth: 24), "switched off: F(2x2, 3x3)")
    }

    /// `conv3x3_winograd4_image_tiles` over any three consecutive ranges of tiles (a range inside one tile row, one
    /// that ends or starts a row, whole rows between, ranges longer than a band) writes together the bits of the
    /// whole image, every output once (none left NaN), on each instruction set: 24 x 24 and 26 x 26 outputs as the
    /// MNIST network's E.2 and D.6, rows and columns of tiles cut short (9 x 5, 7 x 7 with padding 2), a row of
    /// tiles longer than eight (a second group of the input transform), and output channels not a multiple of 16.
    func testRangesOfTilesKeepTheImagesBits() {
        guard DirectConvolution.isSupported else { return }
        let cases = [
            Case(n: 1, c: 32, h: 26, w: 26, o: 32, padding: 0), Case(n: 1, c: 32, h: 24, w: 24, o: 32, padding: 2),
            Case(n: 1, c: 16, h: 9, w: 5, o: 17, padding: 1), Case(n: 1, c: 9, h: 7, w: 7, o: 16, padding: 2),
            Case(n: 1, c: 8, h: 10, w: 41, o: 20, padding: 1)
        ]
        for (index, c) in cases.enumerated() {
            let seed = UInt64(5000 + 10 * index)
            let x = randomTensor([c.c, c.h, c.w], seed: seed)
            let w = randomTensor([c.o, c.c, 3, 3], seed: seed + 2), b = randomTensor([c.o], seed: seed + 3)
            let (oh, ow) = (c.h + 2 * c.padding - 2, c.w + 2 * c.padding - 2)
            let tiles = (oh + 3) / 4 * ((ow + 3) / 4), count = c.o * oh * ow
            var packed = [Float](repeating: 0, count: Int(conv3x3_winograd4_packed_count(Int32(c.o), Int32(c.c))))
            conv3x3_winograd4_pack(&packed, w.storage, Int32(c.o), Int32(c.c), 0)
            // NaN in the scratch memory: a value read before it is written would show in the outputs
            var scratch = [Float](
                repeating: .nan, count: conv3x3_winograd4_scratch_count(Int32(c.c), Int32(c.h), Int32(c.w), Int32(c.o), Int32(c.padding)))
            var results: [[UInt32]] = []
            for isa in DirectConvolution.supportedInstructionSets {
                var whole = [Float](repeating: .nan, count: count)
                conv3x3_winograd4_image_tiles(
                    &whole, x.storage, packed, b.storage, 1, Int32(c.c), Int32(c.h), Int32(c.w), Int32(c.o), Int32(c.padding), 0,
                    Int32(tiles), &scratch, isa.rawValue)
                XCTAssertFalse(whole.contains { $0.isNaN }, "\(c), \(isa): every output written")
                results.append(whole.map(\.bitPattern))
                let differing = firstDifferingSplit(tiles: tiles, whole: whole) { t0, t1, parts in
                    conv3x3_winograd4_image_tiles(
                        &parts, x.storage, packed, b.storage, 1, Int32(c.c), Int32(c.h), Int32(c.w), Int32(c.o), Int32(c.padding),
                        Int32(t0), Int32(t1), &scratch, isa.rawValue)
                }
                if let (first, second) = differing {
                    return XCTFail("\(c), \(isa): tiles 0..<\(first), ..<\(second), ..<\(tiles) differ from the whole image")
                }
            }
            XCTAssertTrue(results.allSatisfy { $0 == results[0] }, "\(c): the same bits on every instruction set")
        }
    }

    /// The MNIST network's largest layers (E.2's forward, D.6's transposed forward from an upsampled input, one image
    /// split across two threads and a batch) through F(4x4, 3x3) and through F(2x2, 3x3) with the default threshold:
    /// within the tolerance of each other, not the same bits (so F(4x4, 3x3) ran), and F(4x4, 3x3)'s largest
    /// difference from the naive loops printed (its rounding, about ten times F(2x2, 3x3)'s).
    func testWinograd4RunsAndAgreesWithF2() {
        guard DirectConvolution.isSupported else { return }
        defer { Parallel.setThreadCount(Parallel.availableCores) }
        DirectConvolution.minimumWinograd4Side = DirectConvolution.defaultMinimumWinograd4Side
        let w = randomTensor([32, 32, 3, 3], seed: 121), b = randomTensor([32], seed: 122)
        for (images, threads) in [(1, 2), (3, 2), (1, 1)] {
            Parallel.setThreadCount(threads)
            let x = randomTensor([images, 32, 26, 26], seed: 123), small = randomTensor([images, 32, 12, 12], seed: 124)
            func run() -> [Tensor] {
                [
                    ConvolutionKernels.forward(input: x, weight: w, bias: b, reLU: true),
                    ConvolutionKernels.transposedForward(input: small, weight: w, bias: b, padding: 0, reLU: false, upsampling: true)
                ]
            }
            let f4 = run()
            DirectConvolution.isWinograd4Enabled = false
            let f2 = run()
            DirectConvolution.isWinograd4Enabled = true
            let naive = naiveConvolution(x, w, b, stride: 1, padding: 0).map { max($0, 0) }
            check(f4[0], naive, "E.2 forward, F(4x4, 3x3) vs naive, \(images) image(s), \(threads) thread(s)")
            for (index, what) in ["E.2 forward", "D.6 transposed forward"].enumerated() {
                assertClose(f4[index], f2[index], tolerance: Self.tolerance, "\(what), F(4x4, 3x3) vs F(2x2, 3x3)")
                XCTAssertNotEqual(
                    f4[index].storage.map(\.bitPattern), f2[index].storage.map(\.bitPattern), "\(what): F(4x4, 3x3) did not run")
            }
        }
    }
}
