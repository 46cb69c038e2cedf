@testable import Autodiff
@testable import NeuralNetworks
import Tensors
import XCTest

/// A convolution (or transposed convolution) followed by a ReLU runs as one fused op inside `Sequential`:
/// its values and every gradient must equal, bit for bit, those of the two layers run one after the other.
final class FusedReLUTests: XCTestCase {
    /// `layers` as written, run layer by layer (no fusion).
    func unfused(_ layers: [any Layer], _ x: Variable) -> Variable { layers.reduce(x) { $1($0) } }

    /// The loss `sum(output * weights)` and the gradients of the input and of every parameter.
    func run(_ network: Sequential, fused: Bool, input: Tensor, seed: UInt64, recordsParameters: Bool = true)
        -> (output: Tensor, gradients: [Tensor?])
    {
        let tape = Tape(recordsParameters: recordsParameters)
        let x = tape.watch(input)
        let y = fused ? network(x) : unfused(network.layers, x)
        var generator = SeededGenerator(seed: seed)
        let weights = Variable(Tensor.normal(y.shape, using: &generator))
        let grads = tape.gradients(of: (y * weights).sum())
        let fusedOps = tape.recordedOps.filter { $0?.hasSuffix("+relu") == true }.count
        XCTAssertEqual(fusedOps > 0, fused, "the \(fused ? "fused" : "unfused") run recorded \(fusedOps) fused ops")
        return (y.value, [grads[x]] + network.namedParameters.map { grads[object: $0.parameter] })
    }

    func assertBitIdentical(_ a: Tensor?, _ b: Tensor?, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a?.shape, b?.shape, "\(what): shapes differ", file: file, line: line)
        guard let a, let b else { return }
        let differing = zip(a.storage, b.storage).filter { $0.bitPattern != $1.bitPattern }.count
        XCTAssertEqual(
            differing, 0, "\(what): \(differing) of \(a.count) values differ between the fused and the unfused run",
            file: file, line: line)
    }

    func check(_ network: Sequential, input shape: [Int], _ what: String) {
        XCTAssertTrue(network.stages().contains { $0.count == 2 }, "\(what): no fused stage, the test would test nothing")
        var generator = SeededGenerator(seed: 5)
        let input = Tensor.normal(shape, using: &generator)
        for threads in [1, 2] {
            Parallel.setThreadCount(threads)
            for recordsParameters in [true, false] {
                let fused = run(network, fused: true, input: input, seed: 9, recordsParameters: recordsParameters)
                let plain = run(network, fused: false, input: input, seed: 9, recordsParameters: recordsParameters)
                let label = "\(what), \(threads) thread(s), parameters \(recordsParameters ? "recorded" : "not recorded")"
                assertBitIdentical(fused.output, plain.output, "\(label): output")
                for (i, (f, p)) in zip(fused.gradients, plain.gradients).enumerated() {
                    assertBitIdentical(f, p, "\(label): gradient \(i) (0 = input)")
                }
            }
        }
        Parallel.setThreadCount(Parallel.availableCores)
    }

    func testConvolutionReLUMatchesTheLayersOneByOne() {
        var g = SeededGenerator(seed: 1)
        // 26x26 and 24x24 outputs take the tiled single-image path, 3x3 the grouped path, 1x1 the pointwise path.
        let network = Sequential([
            Conv2D(inputChannels: 2, outputChannels: 6, kernelSize: 3, using: &g), ReLU(),
            Conv2D(inputChannels: 6, outputChannels: 5, kernelSize: 3, using: &g), ReLU(),
            MaxPool2D(size: 8),
            Conv2D(inputChannels: 5, outputChannels: 4, kernelSize: 1, using: &g), ReLU(),
            Conv2D(inputChannels: 4, outputChannels: 3, kernelSize: 3, stride: 2, padding: 1, using: &g), ReLU()
        ])
        XCTAssertEqual(network.stages(), [0..<2, 2..<4, 4..<5, 5..<7, 7..<9])
        check(network, input: [10, 2, 28, 28], "Conv2D + ReLU")
    }

    func testTransposedConvolutionReLUMatchesTheLayersOneByOne() {
        var g = SeededGenerator(seed: 2)
        let network = Sequential([
            ConvTranspose2D(inputChannels: 4, outputChannels: 5, kernelSize: 3, using: &g), ReLU(),
            ConvTranspose2D(inputChannels: 5, outputChannels: 3, kernelSize: 1, using: &g), ReLU(),
            Upsample2D(height: 24, width: 24),
            ConvTranspose2D(inputChannels: 3, outputChannels: 2, kernelSize: 3, using: &g), ReLU(),
            ConvTranspose2D(inputChannels: 2, outputChannels: 2, kernelSize: 4, stride: 2, padding: 1, using: &g), ReLU()
        ])
        check(network, input: [10, 4, 6, 6], "ConvTranspose2D + ReLU")
    }

    /// An `Upsample2D` to twice its input's size before a `ConvTranspose2D` (with its ReLU or not), a `Sigmoid` after
    /// it, or both, run as one pass without a tape, upsampling in cache: the bits of the layers one by one, through the
    /// Winograd, one-channel and im2col kernels, for one image (split across the threads) and a batch; an upsampling by
    /// another factor stays a layer of its own. With a tape they are the ops one by one, with the same gradients.
    func testUpsamplingTransposedConvolutionMatchesTheLayersOneByOne() {
        var g = SeededGenerator(seed: 8)
        let network = Sequential([
            Upsample2D(height: 8, width: 8), ConvTranspose2D(inputChannels: 16, outputChannels: 16, kernelSize: 3, using: &g),
            ReLU(), ConvTranspose2D(inputChannels: 16, outputChannels: 8, kernelSize: 3, using: &g), ReLU(),
            Upsample2D(height: 24, width: 24), ConvTranspose2D(inputChannels: 8, outputChannels: 16, kernelSize: 3, using: &g),
            Sigmoid(), Upsample2D(height: 52, width: 52),
            ConvTranspose2D(inputChannels: 16, outputChannels: 1, kernelSize: 3, padding: 1, using: &g),
            Upsample2D(height: 60, width: 60), ConvTranspose2D(inputChannels: 1, outputChannels: 3, kernelSize: 3, using: &g), ReLU(),
            Sigmoid()
        ])
        for threads in [1, 2, 3] {
            Parallel.setThreadCount(threads)
            for batch in [1, 2] {
                var generator = SeededGenerator(seed: 10 + UInt64(batch))
                let x = Variable(Tensor.normal([batch, 16, 4, 4], using: &generator))
                let fused = network(x), plain = unfused(network.layers, x)
                XCTAssertEqual(fused.shape, [batch, 3, 62, 62])
                assertBitIdentical(fused.value, plain.value, "upsampling + ConvTranspose2D + sigmoid, batch \(batch), \(threads) thread(s)")
            }
        }
        Parallel.setThreadCount(Parallel.availableCores)
        check(network, input: [2, 16, 4, 4], "upsampling + ConvTranspose2D with a tape")
    }

    /// Layers with >= 16 channels on both sides take the direct 3x3 kernel for their forward and input gradient.
    func testDirectKernelLayersMatchTheLayersOneByOne() {
        var g = SeededGenerator(seed: 4)
        let network = Sequential([
            Conv2D(inputChannels: 16, outputChannels: 16, kernelSize: 3, padding: 1, using: &g), ReLU(),
            Conv2D(inputChannels: 16, outputChannels: 17, kernelSize: 3, using: &g), ReLU(),
            ConvTranspose2D(inputChannels: 17, outputChannels: 16, kernelSize: 3, using: &g), ReLU(),
            ConvTranspose2D(inputChannels: 16, outputChannels: 16, kernelSize: 3, padding: 1, using: &g), ReLU()
        ])
        check(network, input: [3, 16, 9, 10], "direct 3x3 kernel + ReLU")
    }

    /// A convolution, its ReLU and a 2 x 2 max pooling run as one pass (the pooling on each image's output while
    /// it is in cache): the bits of the three layers one by one, through the direct kernel (odd output sizes:
    /// floor mode), the one-channel kernel and the im2col path, for a batch and for one image (whose rows are
    /// split across the threads).
    func testConvolutionReLUMaxPoolMatchesTheLayersOneByOne() {
        var g = SeededGenerator(seed: 6)
        let network = Sequential([
            Conv2D(inputChannels: 1, outputChannels: 16, kernelSize: 3, using: &g), ReLU(), MaxPool2D(size: 2),
            Conv2D(inputChannels: 16, outputChannels: 24, kernelSize: 3, using: &g), ReLU(), MaxPool2D(size: 2),
            Conv2D(inputChannels: 24, outputChannels: 4, kernelSize: 3, padding: 1, using: &g), ReLU(), MaxPool2D(size: 2),
            Conv2D(inputChannels: 4, outputChannels: 16, kernelSize: 3, padding: 1, using: &g), ReLU(), MaxPool2D(size: 3)
        ])
        XCTAssertEqual(network.stages(), [0..<3, 3..<6, 6..<9, 9..<11, 11..<12], "three pooled stages; a 3 x 3 pooling runs alone")
        XCTAssertEqual(network.stages(0..<2), [0..<2], "a range ending before the pooling fuses the ReLU only")
        for batch in [3, 1] { check(network, input: [batch, 1, 36, 34], "Conv2D + ReLU + MaxPool2D, batch \(batch)") }
    }

    /// Dense layers add the bias and apply the ReLU in one pass: the detector's and the classifier's shapes, a
    /// batch and one image (the matrix-vector product), a dense layer without a ReLU after it left alone.
    func testDenseReLUMatchesTheLayersOneByOne() {
        var g = SeededGenerator(seed: 7)
        let network = Sequential([
            Flatten(), Dense(inputSize: 64, outputSize: 256, using: &g), ReLU(), Dense(inputSize: 256, outputSize: 40, using: &g),
            ReLU(), Dense(inputSize: 40, outputSize: 10, using: &g)
        ])
        XCTAssertEqual(network.stages(), [0..<1, 1..<3, 3..<5, 5..<6])
        for batch in [5, 1] { check(network, input: [batch, 1, 8, 8], "Dense + ReLU, batch \(batch)") }
    }

    func testARangeThatEndsBetweenTheLayersDoesNotFuse() {
        var g = SeededGenerator(seed: 3)
        let network = Sequential([Conv2D(inputChannels: 1, outputChannels: 2, kernelSize: 3, using: &g), ReLU(), ReLU()])
        XCTAssertEqual(network.stages(0..<1), [0..<1], "a range ending at the convolution must not take the ReLU with it")
        XCTAssertEqual(network.stages(), [0..<2, 2..<3], "only the ReLU right after the convolution is fused")
    }
}
