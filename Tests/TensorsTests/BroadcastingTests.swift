import Tensors
import XCTest

/// NumPy-style broadcasting and its reverse.
final class BroadcastingTests: XCTestCase {
    func testShapes() {
        XCTAssertEqual(Broadcasting.shape([2, 3], [3]), [2, 3])
        XCTAssertEqual(Broadcasting.shape([3], [2, 3]), [2, 3])
        XCTAssertEqual(Broadcasting.shape([4, 1, 3], [2, 1]), [4, 2, 3])
        XCTAssertEqual(Broadcasting.shape([2, 3, 4, 5], [1, 3, 1, 1]), [2, 3, 4, 5])
        XCTAssertEqual(Broadcasting.shape([], [2, 2]), [2, 2])
        XCTAssertEqual(Broadcasting.shape([1], [1, 1]), [1, 1])
    }

    func testIncompatibleShapesAreRejected() {
        XCTAssertNil(Broadcasting.shape([2, 3], [2]), "trailing axes 3 and 2 differ")
        XCTAssertNil(Broadcasting.shape([3], [4]))
        XCTAssertNil(Broadcasting.shape([2, 3, 4], [3, 1, 4]))
    }

    func testApplyRowAndChannelBias() {
        let a = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Broadcasting.apply(a, Tensor(shape: [3], storage: [10, 20, 30]), +).storage, [11, 22, 33, 14, 25, 36])
        XCTAssertEqual(Broadcasting.apply(a, Tensor(shape: [2, 1], storage: [10, 20]), -).storage, [-9, -8, -7, -16, -15, -14])
        XCTAssertEqual(Broadcasting.apply(Tensor(shape: [2, 1], storage: [10, 20]), a, -).storage, [9, 8, 7, 16, 15, 14])
        let scaled = Broadcasting.apply(Tensor(2), a, *)
        XCTAssertEqual(scaled.shape, [2, 3])
        XCTAssertEqual(scaled.storage, [2, 4, 6, 8, 10, 12])
        XCTAssertEqual(Broadcasting.apply(a, Tensor(shape: [1, 1], storage: [2]), /).shape, [2, 3])

        let images = randomTensor([2, 3, 2, 2], seed: 1)
        let bias = Tensor(shape: [1, 3, 1, 1], storage: [100, 200, 300])
        let sum = Broadcasting.apply(images, bias, +)
        XCTAssertEqual(sum.shape, [2, 3, 2, 2])
        for i in 0..<sum.count { XCTAssertEqual(sum.storage[i], images.storage[i] + bias.storage[(i / 4) % 3], "element \(i)") }

        // Both operands broadcast: [3, 1] with [1, 4] -> [3, 4] outer sum.
        let outer = Broadcasting.apply(Tensor(shape: [3, 1], storage: [0, 10, 20]), Tensor(shape: [1, 4], storage: [1, 2, 3, 4]), +)
        XCTAssertEqual(outer.shape, [3, 4])
        XCTAssertEqual(outer.storage, [1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24])
    }

    func testReduceSumsBroadcastAxes() {
        let g = Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Broadcasting.reduce(g, to: [3]).storage, [5, 7, 9])
        XCTAssertEqual(Broadcasting.reduce(g, to: [1, 3]).storage, [5, 7, 9])
        XCTAssertEqual(Broadcasting.reduce(g, to: [1, 3]).shape, [1, 3])
        XCTAssertEqual(Broadcasting.reduce(g, to: [2, 1]).storage, [6, 15])
        XCTAssertEqual(Broadcasting.reduce(g, to: []).storage, [21])
        XCTAssertEqual(Broadcasting.reduce(g, to: []).shape, [])
        XCTAssertEqual(Broadcasting.reduce(g, to: [2, 3]), g)

        let images = randomTensor([3, 4, 2, 5], seed: 2)
        let perChannel = Broadcasting.reduce(images, to: [1, 4, 1, 1])
        XCTAssertEqual(perChannel.shape, [1, 4, 1, 1])
        assertClose(perChannel.reshaped([4]), ConvolutionKernels.channelSums(images), tolerance: 1e-6, "reduce to [1, C, 1, 1]")
        let perColumn = Broadcasting.reduce(images, to: [5])
        var expected = [Float](repeating: 0, count: 5)
        for i in 0..<images.count { expected[i % 5] += images.storage[i] }
        assertClose(perColumn, Tensor(shape: [5], storage: expected), tolerance: 1e-6, "reduce to the last axis")
        let middle = Broadcasting.reduce(images, to: [4, 1, 1])
        assertClose(middle.reshaped([4]), ConvolutionKernels.channelSums(images), tolerance: 1e-6, "reduce to [C, 1, 1]")
    }

    /// reduce is the adjoint of broadcasting: `<reduce(g), b> == <g, broadcast(b)>`.
    func testReduceIsAdjointOfBroadcast() {
        for (big, small) in [([2, 3, 4], [3, 1]), ([2, 3, 4], [4]), ([5, 1, 3], [2, 1]), ([2, 3, 2, 2], [1, 3, 1, 1])] {
            let target = Broadcasting.shape(big, small)!
            let g = randomTensor(target, seed: 9), b = randomTensor(small, seed: 10)
            let broadcast = Broadcasting.apply(Tensor.zeros(target), b, +)
            XCTAssertEqual(
                dot(Broadcasting.reduce(g, to: small).storage, b.storage), dot(g.storage, broadcast.storage),
                accuracy: 1e-4, "reduce to \(small) from \(target)")
        }
    }
}
