import _ConvKernels
@testable import Tensors
import XCTest

/// Max pooling (floor mode, argmax) and nearest-neighbour upsampling.
final class PoolingKernelTests: XCTestCase {
    /// 7x7 pooled by 2 is 3x3 (PyTorch's floor mode): the last row and column are dropped.
    func testMaxPoolFloorMode() {
        var values = (0..<49).map { Float(($0 * 17) % 49) }  // distinct, scrambled
        for i in 0..<7 { values[6 * 7 + i] = 1000; values[i * 7 + 6] = 1000 }  // last row/column must be ignored
        let x = Tensor(shape: [1, 1, 7, 7], storage: values)
        let (y, argmax) = PoolingKernels.maxPool(x, size: 2)
        XCTAssertEqual(y.shape, [1, 1, 3, 3])
        for oy in 0..<3 {
            for ox in 0..<3 {
                let window = [(0, 0), (0, 1), (1, 0), (1, 1)].map { (2 * oy + $0.0) * 7 + 2 * ox + $0.1 }
                let best = window.max { values[$0] < values[$1] }!
                XCTAssertEqual(y.storage[oy * 3 + ox], values[best], "max of window (\(oy), \(ox))")
                XCTAssertEqual(Int(argmax[oy * 3 + ox]), best, "argmax of window (\(oy), \(ox))")
            }
        }
        XCTAssertFalse(y.storage.contains(1000), "the floor mode must ignore the 7th row and column")
    }

    func testMaxPoolPlanesAndBackward() {
        let x = randomTensor([2, 3, 6, 4], seed: 5)
        let (y, argmax) = PoolingKernels.maxPool(x, size: 3)
        XCTAssertEqual(y.shape, [2, 3, 2, 1])
        for plane in 0..<6 {
            for oy in 0..<2 {
                var best = -Float.infinity
                for dy in 0..<3 { for dx in 0..<3 { best = max(best, x.storage[plane * 24 + (3 * oy + dy) * 4 + dx]) } }
                XCTAssertEqual(y.storage[plane * 2 + oy], best, "plane \(plane) row \(oy)")
            }
        }
        let dy = randomTensor(y.shape, seed: 6)
        let dx = PoolingKernels.maxPoolBackward(outputGradient: dy, argmax: argmax, inputShape: x.shape)
        XCTAssertEqual(dx.shape, x.shape)
        for o in 0..<y.count {
            let plane = o / 2
            XCTAssertEqual(dx.storage[plane * 24 + Int(argmax[o])], dy.storage[o], "gradient routed to the argmax of output \(o)")
        }
        XCTAssertEqual(dx.storage.filter { $0 != 0 }.count, y.count, "every other input gets no gradient")
        XCTAssertEqual(dx.sum(), dy.sum(), accuracy: 1e-5)
    }

    /// The 2 x 2 kernel (AVX-512, AVX2 and the portable loop) against the scalar rule, bit for bit: ties (the first
    /// in row-major window order wins), NaNs (a NaN wins, the last if several), signed zeros, infinities, odd
    /// sizes (floor mode) and rows of more than 16 windows.
    func testMaxPool2x2KernelMatchesTheScalarRule() {
        var generator = SeededGenerator(seed: 21)
        let specials: [Float] = [.nan, -.nan, 0, -0, .infinity, -.infinity, 1, 1, 0.5]
        for (h, w) in [(5, 7), (8, 24), (6, 34), (2, 2), (3, 65)] {
            let values = (0..<(2 * h * w)).map { i -> Float in
                i % 5 == 0 ? specials[Int(generator.next() % UInt64(specials.count))] : Float(Int(generator.next() % 7)) / 4
            }
            let x = Tensor(shape: [2, 1, h, w], storage: values)
            var expected = [Float](), expectedArgmax = [Int32]()
            for plane in 0..<2 {
                for y in 0..<(h / 2) {
                    for column in 0..<(w / 2) {
                        var at = 2 * y * w + 2 * column, best = values[plane * h * w + at]
                        for i in [at + 1, at + w, at + w + 1] {
                            let v = values[plane * h * w + i]
                            if (v > best) != v.isNaN { (best, at) = (v, i) }
                        }
                        expected.append(best)
                        expectedArgmax.append(Int32(at))
                    }
                }
            }
            let choices: [DirectConvolution.InstructionSet?] =
                DirectConvolution.isSupported ? DirectConvolution.supportedInstructionSets : [nil]
            for isa in choices {
                if let isa { DirectConvolution.instructionSet = isa }  // none: the portable loop
                defer { DirectConvolution.instructionSet = DirectConvolution.bestInstructionSet ?? .avx2 }
                let (y, argmax) = PoolingKernels.maxPool(x, size: 2)
                XCTAssertEqual(y.storage.map(\.bitPattern), expected.map(\.bitPattern), "\(h) x \(w), \(String(describing: isa))")
                XCTAssertEqual(argmax, expectedArgmax, "\(h) x \(w), \(String(describing: isa))")
                // Row bands (how the threads that split one image pool each its own rows): any split of the
                // output rows gives the whole planes' values and argmax (counted from each plane's start), with
                // this instruction set's body and with the portable loop.
                for cut in 0...(h / 2) {
                    for band in Set([DirectConvolution.poolingInstructionSet, Int32(CONV3X3_ISA_NONE)]).sorted() {
                        var banded = [Float](repeating: .nan, count: expected.count)
                        var bandedArgmax = [Int32](repeating: -1, count: expected.count)
                        x.withUnsafeBufferPointer { input in
                            for (y0, y1) in [(0, cut), (cut, h / 2)] {
                                max_pool_2x2_rows(
                                    &banded, &bandedArgmax, input.baseAddress!, 2, Int32(h), Int32(w), Int32(y0), Int32(y1),
                                    band)
                            }
                        }
                        XCTAssertEqual(banded.map(\.bitPattern), expected.map(\.bitPattern), "\(h) x \(w) cut at \(cut), isa \(band)")
                        XCTAssertEqual(bandedArgmax, expectedArgmax, "\(h) x \(w) cut at \(cut), isa \(band)")
                    }
                }
            }
        }
    }

    func testUpsampleIntegerFactor() {
        let x = Tensor(shape: [1, 1, 2, 2], storage: [1, 2, 3, 4])
        let y = PoolingKernels.upsampleNearest(x, height: 4, width: 4)
        XCTAssertEqual(y.storage, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        let dx = PoolingKernels.upsampleNearestBackward(
            outputGradient: Tensor(shape: [1, 1, 4, 4], storage: (0..<16).map(Float.init)),
            inputShape: [1, 1, 2, 2])
        XCTAssertEqual(dx.storage, [10, 18, 42, 50] as [Float], "sums of the 2x2 blocks 0+1+4+5, 2+3+6+7, 8+9+12+13, 10+11+14+15")
    }

    /// The exact factor 2 (its own loops) against the general rule, `floor(o / 2)`, bit for bit, the
    /// backward summed in the general loop's order (row by row, left to right, from zero).
    func testUpsampleByTwoHasTheGeneralLoopsBits() {
        var generator = SeededGenerator(seed: 12)
        let (n, c, h, w) = (2, 3, 5, 6)
        let x = Tensor.uniform([n, c, h, w], using: &generator),
            dy = Tensor.uniform([n, c, 2 * h, 2 * w], using: &generator).map { $0 - 0.5 }
        let y = PoolingKernels.upsampleNearest(x, height: 2 * h, width: 2 * w)
        var expected = [Float](repeating: 0, count: n * c * h * w)
        for plane in 0..<(n * c) {
            for oy in 0..<(2 * h) {
                for ox in 0..<(2 * w) {
                    let o = (plane * 2 * h + oy) * 2 * w + ox, i = (plane * h + oy / 2) * w + ox / 2
                    XCTAssertEqual(y.storage[o].bitPattern, x.storage[i].bitPattern)
                    expected[i] += dy.storage[o]
                }
            }
        }
        let dx = PoolingKernels.upsampleNearestBackward(outputGradient: dy, inputShape: x.shape)
        XCTAssertEqual(dx.storage.map(\.bitPattern), expected.map(\.bitPattern))
    }

    /// 3 -> 7 follows PyTorch's `floor(o * in / out)`: sources 0, 0, 0, 1, 1, 2, 2.
    func testUpsampleNonIntegerSize() {
        let x = Tensor(shape: [1, 2, 3, 1], storage: [10, 20, 30, 40, 50, 60])
        let y = PoolingKernels.upsampleNearest(x, height: 7, width: 2)
        XCTAssertEqual(y.shape, [1, 2, 7, 2])
        let rows = [10, 10, 10, 20, 20, 30, 30] as [Float]
        XCTAssertEqual(Array(y.storage[0..<14]), rows.flatMap { [$0, $0] })
        XCTAssertEqual(Array(y.storage[14..<28]), rows.map { $0 + 30 }.flatMap { [$0, $0] })
        let dx = PoolingKernels.upsampleNearestBackward(outputGradient: Tensor(shape: [1, 2, 7, 2], repeating: 1), inputShape: x.shape)
        XCTAssertEqual(dx.storage, [6, 4, 4, 6, 4, 4], "each source collects the gradient of its copies")
    }
}
