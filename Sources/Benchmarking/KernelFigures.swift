import NeuralNetworks
import Tensors

/// The GEMM and convolution figures: raw `BLAS.gemm` speed (the AVX-512 kernel of `_GemmKernels` for
/// depths up to `BLAS.maximumKernelDepth` on a CPU with AVX-512F, else `cblas_sgemm`; `DAFAR_GEMM=openblas`
/// measures OpenBLAS) and how close each convolution of a network comes to it on its own GEMM shapes.
public enum KernelFigures {
    /// GFLOP/s of `BLAS.gemm` on `size x size x size` (`2 size^3` flops per call), one value per repetition.
    public static func sgemmGFLOPS(size: Int, warmup: Int, repetitions: Int) -> [Double] {
        let gemm = GEMMShape(m: size, n: size, k: size)
        let buffers = GEMMBuffers(gemm)
        defer { buffers.deallocate() }
        let calls = max(1, (1 << 31) / max(1, 2 * size * size * size))  // about 2 GFLOP per repetition
        return Stopwatch.repeated(warmup: warmup, repetitions: repetitions) {
            for _ in 0..<calls { buffers.run(gemm) }
        }.map { Double(calls) * gemm.flops / $0 / 1e9 }
    }

    /// One matrix product `C [m, n] = op(A) [m, k] * op(B) [k, n]`.
    public struct GEMMShape: Sendable, CustomStringConvertible {
        public var m: Int, n: Int, k: Int
        public var transposeA = false, transposeB = false
        public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
        public var description: String { "\(m)x\(n)x\(k)\(transposeA ? " A^T" : "")\(transposeB ? " B^T" : "")" }
    }

    /// Operands for timing one `GEMMShape` (uninitialised contents do not change the speed; they are zeroed).
    final class GEMMBuffers {
        let a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>
        init(_ shape: GEMMShape) {
            a = .allocate(capacity: shape.m * shape.k); a.initialize(repeating: 0.5, count: shape.m * shape.k)
            b = .allocate(capacity: shape.k * shape.n); b.initialize(repeating: 0.25, count: shape.k * shape.n)
            c = .allocate(capacity: shape.m * shape.n); c.initialize(repeating: 0, count: shape.m * shape.n)
        }
        func run(_ s: GEMMShape) {
            BLAS.gemm(c, a, b, m: s.m, n: s.n, k: s.k, transposeA: s.transposeA, transposeB: s.transposeB)
        }
        func deallocate() { a.deallocate(); b.deallocate(); c.deallocate() }
    }

    /// A convolution layer's operands at a batch size, and the GEMMs that its forward and
    /// backward passes amount to (Caffe's scheme: forward `W [O, CKK] * columns [CKK, N*P]`;
    /// backward `dW = dY [O, N*P] * columns^T` and `dcolumns = W^T * dY`).
    public struct ConvolutionCase {
        public let input: Tensor, weight: Tensor, bias: Tensor, outputGradient: Tensor
        public let stride: Int, padding: Int
        public let forwardGEMM: GEMMShape
        public let backwardGEMMs: [GEMMShape]

        init(layer: Conv2D, inputShape: [Int], generator: inout SeededGenerator) {
            let geometry = ConvolutionGeometry(
                channels: inputShape[1], height: inputShape[2], width: inputShape[3],
                kernelHeight: layer.kernelSize, kernelWidth: layer.kernelSize,
                stride: layer.stride, padding: layer.padding)
            let n = inputShape[0], outChannels = layer.outputChannels
            let length = n * geometry.outputPositions
            input = Tensor.uniform(inputShape, using: &generator)
            weight = layer.weight.value
            bias = layer.bias.value
            outputGradient = Tensor.normal([n, outChannels, geometry.outputHeight, geometry.outputWidth], using: &generator)
            stride = layer.stride
            padding = layer.padding
            forwardGEMM = GEMMShape(m: outChannels, n: length, k: geometry.patchSize)
            backwardGEMMs = [
                GEMMShape(m: outChannels, n: geometry.patchSize, k: length, transposeB: true),
                GEMMShape(m: geometry.patchSize, n: length, k: outChannels, transposeA: true)
            ]
        }

        func forward() -> Tensor {
            ConvolutionKernels.forward(input: input, weight: weight, bias: bias, stride: stride, padding: padding)
        }

        func backward() -> ConvolutionKernels.Gradients {
            ConvolutionKernels.backward(
                input: input, weight: weight, outputGradient: outputGradient, stride: stride,
                padding: padding)
        }
    }

    /// A transposed convolution layer's operands at a batch size, and its GEMM shapes (Caffe's deconvolution:
    /// forward `columns = W^T [O*KK, I] * X [I, N*P]` then col2im; backward `dW = X [I, N*P] * columns^T`
    /// and `dX = W [I, O*KK] * columns`, with `columns = im2col(dY)`).
    public struct TransposedConvolutionCase {
        public let input: Tensor, weight: Tensor, bias: Tensor, outputGradient: Tensor
        public let stride: Int, padding: Int
        public let forwardGEMM: GEMMShape
        public let backwardGEMMs: [GEMMShape]

        init(layer: ConvTranspose2D, inputShape: [Int], outputShape: [Int], generator: inout SeededGenerator) {
            let n = inputShape[0], positions = inputShape[2] * inputShape[3]
            let patch = layer.outputChannels * layer.kernelSize * layer.kernelSize
            input = Tensor.uniform(inputShape, using: &generator)
            weight = layer.weight.value
            bias = layer.bias.value
            outputGradient = Tensor.normal(outputShape, using: &generator)
            stride = layer.stride
            padding = layer.padding
            forwardGEMM = GEMMShape(m: patch, n: n * positions, k: layer.inputChannels, transposeA: true)
            backwardGEMMs = [
                GEMMShape(m: layer.inputChannels, n: patch, k: n * positions, transposeB: true),
                GEMMShape(m: layer.inputChannels, n: n * positions, k: patch)
            ]
        }

        func forward() -> Tensor {
            ConvolutionKernels.transposedForward(input: input, weight: weight, bias: bias, stride: stride, padding: padding)
        }

        func backward() -> ConvolutionKernels.Gradients {
            ConvolutionKernels.transposedBackward(
                input: input, weight: weight, outputGradient: outputGradient, stride: stride,
                padding: padding)
        }
    }

    /// The transposed convolutions of `decoder` (in order) when it reads `[batchSize] + codeShape`.
    public static func transposedConvolutionCases(
        decoder: Sequential, codeShape: [Int], batchSize: Int,
        seed: UInt64 = 2
    ) -> [TransposedConvolutionCase] {
        var generator = SeededGenerator(seed: seed)
        var x = Tensor.zeros([batchSize] + codeShape)
        var cases: [TransposedConvolutionCase] = []
        for layer in decoder.layers {
            let y = layer(x)
            if let conv = layer as? ConvTranspose2D {
                cases.append(TransposedConvolutionCase(layer: conv, inputShape: x.shape, outputShape: y.shape, generator: &generator))
            }
            x = y
        }
        return cases
    }

    /// Efficiency of the transposed convolutions' forward or backward passes (see `convolutionEfficiency`).
    public static func transposedConvolutionEfficiency(
        _ cases: [TransposedConvolutionCase], backward: Bool, warmup: Int,
        repetitions: Int
    ) -> [Double] {
        efficiency(
            shapes: cases.flatMap { backward ? $0.backwardGEMMs : [$0.forwardGEMM] }, warmup: warmup,
            repetitions: repetitions
        ) {
            for c in cases { if backward { _ = c.backward() } else { _ = c.forward() } }
        }
    }

    /// The convolutions of `features` (in order) with the input shapes a batch of `batchSize` gives them.
    public static func convolutionCases(features: Sequential, imageShape: [Int], batchSize: Int, seed: UInt64 = 1) -> [ConvolutionCase] {
        var generator = SeededGenerator(seed: seed)
        var x = Tensor.zeros([batchSize] + imageShape)
        var cases: [ConvolutionCase] = []
        for layer in features.layers {
            if let conv = layer as? Conv2D { cases.append(ConvolutionCase(layer: conv, inputShape: x.shape, generator: &generator)) }
            x = layer(x)
        }
        return cases
    }

    /// Efficiency of the convolutions' forward (`backward: false`) or backward passes, one value per
    /// repetition: the time raw `BLAS.gemm` takes on the same GEMM shapes divided by the time the
    /// convolutions take (= their GFLOP/s over raw sgemm's GFLOP/s on those shapes).
    public static func convolutionEfficiency(_ cases: [ConvolutionCase], backward: Bool, warmup: Int, repetitions: Int) -> [Double] {
        efficiency(
            shapes: cases.flatMap { backward ? $0.backwardGEMMs : [$0.forwardGEMM] }, warmup: warmup,
            repetitions: repetitions
        ) {
            for c in cases { if backward { _ = c.backward() } else { _ = c.forward() } }
        }
    }

    /// Time of raw sgemm on `shapes` over the time of `kernels`, one value per repetition.
    static func efficiency(shapes: [GEMMShape], warmup: Int, repetitions: Int, kernels: () -> Void) -> [Double] {
        let buffers = shapes.map(GEMMBuffers.init)
        defer { buffers.forEach { $0.deallocate() } }
        func gemmTime() -> Double { Stopwatch.seconds { for (shape, b) in zip(shapes, buffers) { b.run(shape) } } }
        func convolutionTime() -> Double { Stopwatch.seconds(kernels) }
        for _ in 0..<warmup { _ = gemmTime(); _ = convolutionTime() }
        return (0..<repetitions).map { _ in
            // Several rounds of each, interleaved, so that a load spike hits both alike.
            var gemm = 0.0, convolution = 0.0
            for _ in 0..<3 { gemm += gemmTime(); convolution += convolutionTime() }
            return gemm / convolution
        }
    }
}
