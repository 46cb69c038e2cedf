@testable import Tensors
import XCTest

/// im2col / col2im and the transposed-convolution geometry.
final class Im2ColTests: XCTestCase {
    static let geometries: [(ConvolutionGeometry, images: Int)] = [
        (ConvolutionGeometry(channels: 2, height: 5, width: 6, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 0), 2),
        (ConvolutionGeometry(channels: 2, height: 5, width: 6, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1), 3),
        (ConvolutionGeometry(channels: 3, height: 7, width: 5, kernelHeight: 3, kernelWidth: 3, stride: 2, padding: 0), 2),
        (ConvolutionGeometry(channels: 1, height: 8, width: 8, kernelHeight: 3, kernelWidth: 3, stride: 2, padding: 1), 2),
        (ConvolutionGeometry(channels: 2, height: 6, width: 9, kernelHeight: 2, kernelWidth: 4, stride: 3, padding: 2), 1),
        (ConvolutionGeometry(channels: 1, height: 3, width: 3, kernelHeight: 1, kernelWidth: 1, stride: 1, padding: 2), 2),
        (ConvolutionGeometry(channels: 2, height: 4, width: 4, kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1), 2),
        // Rows of 8 floats and more: the vector copy (and add, in col2im) plus its scalar tail.
        (ConvolutionGeometry(channels: 2, height: 6, width: 21, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 0), 2),
        (ConvolutionGeometry(channels: 2, height: 7, width: 19, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1), 2),
        (ConvolutionGeometry(channels: 1, height: 10, width: 10, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 0), 3),
        // Kernel wider than image plus one side of padding: some kernel columns never touch the image.
        (ConvolutionGeometry(channels: 1, height: 2, width: 1, kernelHeight: 3, kernelWidth: 5, stride: 1, padding: 2), 2)
    ]

    func im2col(_ x: Tensor, _ g: ConvolutionGeometry, images: Int) -> [Float] {
        var columns = [Float](repeating: .nan, count: g.patchSize * images * g.outputPositions)
        columns.withUnsafeMutableBufferPointer { c in
            x.withUnsafeBufferPointer { Im2Col.im2col(c.baseAddress!, $0.baseAddress!, geometry: g, images: images) }
        }
        return columns
    }

    /// `col2im` is the adjoint of `im2col`: `<col2im(y), x> == <y, im2col(x)>` for random x, y.
    func testCol2imIsAdjointOfIm2col() {
        for (index, (g, images)) in Self.geometries.enumerated() {
            let x = randomTensor([images, g.channels, g.height, g.width], seed: UInt64(index))
            let y = randomTensor([g.patchSize, images * g.outputPositions], seed: UInt64(50 + index))
            let columns = im2col(x, g, images: images)
            XCTAssertFalse(columns.contains { $0.isNaN }, "im2col must write every column element, \(g)")
            var image = [Float](repeating: 0, count: x.count)
            image.withUnsafeMutableBufferPointer { dst in
                y.withUnsafeBufferPointer { Im2Col.col2im(dst.baseAddress!, $0.baseAddress!, geometry: g, images: images) }
            }
            let lhs = dot(image, x.storage), rhs = dot(y.storage, columns)
            XCTAssertEqual(lhs, rhs, accuracy: 1e-4 * max(1, abs(rhs)), "<col2im(y), x> vs <y, im2col(x)> for \(g), \(images) images")
        }
    }

    /// Every column element is the padded input pixel it names.
    func testIm2colElementsAgainstDefinition() {
        for (index, (g, images)) in Self.geometries.enumerated() {
            let x = randomTensor([images, g.channels, g.height, g.width], seed: UInt64(200 + index))
            let columns = im2col(x, g, images: images)
            let length = images * g.outputPositions
            var mismatches = 0
            for c in 0..<g.channels {
                for kh in 0..<g.kernelHeight {
                    for kw in 0..<g.kernelWidth {
                        let row = (c * g.kernelHeight + kh) * g.kernelWidth + kw
                        for n in 0..<images {
                            for oy in 0..<g.outputHeight {
                                for ox in 0..<g.outputWidth {
                                    let iy = oy * g.stride - g.padding + kh, ix = ox * g.stride - g.padding + kw
                                    let inside = iy >= 0 && iy < g.height && ix >= 0 && ix < g.width
                                    let expected = inside ? x.storage[((n * g.channels + c) * g.height + iy) * g.width + ix] : 0
                                    let column = n * g.outputPositions + oy * g.outputWidth + ox
                                    if columns[row * length + column] != expected { mismatches += 1 }
                                }
                            }
                        }
                    }
                }
            }
            XCTAssertEqual(mismatches, 0, "im2col elements differ from the padded input for \(g), \(images) images")
        }
    }

    /// col2im accumulates into its destination instead of overwriting it.
    func testCol2imAccumulates() {
        let g = ConvolutionGeometry(channels: 1, height: 3, width: 3, kernelHeight: 2, kernelWidth: 2, stride: 1, padding: 0)
        let ones = [Float](repeating: 1, count: g.patchSize * g.outputPositions)
        var image = [Float](repeating: 10, count: 9)
        image.withUnsafeMutableBufferPointer { dst in
            ones.withUnsafeBufferPointer { Im2Col.col2im(dst.baseAddress!, $0.baseAddress!, geometry: g, images: 1) }
        }
        // Each pixel is covered by as many 2x2 windows as contain it.
        XCTAssertEqual(image, [11, 12, 11, 12, 14, 12, 11, 12, 11])
    }

    func testImagesToRowsRoundTrip() {
        let x = randomTensor([3, 4, 5], seed: 3)
        var rows = [Float](repeating: 0, count: 60), back = [Float](repeating: 0, count: 60)
        rows.withUnsafeMutableBufferPointer { r in
            x.withUnsafeBufferPointer { Im2Col.imagesToRows(r.baseAddress!, $0.baseAddress!, count: 3, channels: 4, positions: 5) }
        }
        // rows[c, n * 5 + p] == x[n, c, p]
        XCTAssertEqual(rows[(2 * 3 + 1) * 5 + 4], x.storage[(1 * 4 + 2) * 5 + 4])
        let bias: [Float] = [1, 2, 3, 4]
        back.withUnsafeMutableBufferPointer { b in
            rows.withUnsafeBufferPointer { r in
                bias.withUnsafeBufferPointer {
                    Im2Col.rowsToImages(b.baseAddress!, r.baseAddress!, count: 3, channels: 4, positions: 5, bias: $0.baseAddress!)
                }
            }
        }
        for i in 0..<60 { XCTAssertEqual(back[i], x.storage[i] + bias[(i / 5) % 4], "rowsToImages element \(i)") }
    }

    func testChunkSize() {
        XCTAssertEqual(Im2Col.chunkSize(images: 100, floatsPerImage: 1000, budget: 10_000), 10)
        XCTAssertEqual(Im2Col.chunkSize(images: 5, floatsPerImage: 1000, budget: 10_000), 5)
        XCTAssertEqual(Im2Col.chunkSize(images: 5, floatsPerImage: 1_000_000, budget: 10_000), 1, "at least one image per chunk")
    }

    /// The transposed geometry is the convolution that maps the larger output back to the input size.
    func testTransposedGeometry() {
        for (h, w, k, s, p) in [(3, 4, 3, 1, 0), (4, 3, 3, 2, 1), (3, 3, 2, 2, 0), (2, 5, 4, 2, 1), (7, 7, 5, 3, 2)] {
            let g = ConvolutionKernels.transposedGeometry(input: [1, 2, h, w], weight: [2, 5, k, k], stride: s, padding: p)
            XCTAssertEqual(g.channels, 5)
            XCTAssertEqual(g.height, (h - 1) * s - 2 * p + k, "transposed output height for \(h)x\(w), k \(k), s \(s), p \(p)")
            XCTAssertEqual(g.width, (w - 1) * s - 2 * p + k, "transposed output width for \(h)x\(w), k \(k), s \(s), p \(p)")
            XCTAssertEqual([g.outputHeight, g.outputWidth], [h, w], "the convolution of the output returns to the input size")
        }
    }
}
