// Kernel micro-benchmarks (ordo-one/benchmark): `swift package benchmark` runs them;
// `swift build` only compiles them. The whole-model figures are `dafar-bench`'s.
//
// Shapes are those of the MNIST network of Table 1 at small batches, so that one
// iteration takes milliseconds.

import Autodiff
import Benchmark
import Benchmarking
import DAFAR
import Tensors

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
        warmupIterations: 3, maxDuration: .seconds(2), maxIterations: 1000)
    var generator = SeededGenerator(seed: 1)
    let batch = 16

    // GEMM wrapper: a square product and the shape of the second convolution's forward pass.
    for (m, n, k) in [(256, 256, 256), (32, batch * 576, 288)] {
        let a = Tensor.uniform([m, k], using: &generator), b = Tensor.uniform([k, n], using: &generator)
        Benchmark("BLAS.gemm \(m)x\(n)x\(k)") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(a.matmul(b)) }
        }
    }

    // im2col / col2im of the second convolution (32 x 26 x 26 -> 3 x 3 patches).
    let geometry = ConvolutionGeometry(channels: 32, height: 26, width: 26, kernelHeight: 3, kernelWidth: 3)
    let images = Tensor.uniform([batch, 32, 26, 26], using: &generator)
    var columns = [Float](repeating: 0, count: geometry.patchSize * batch * geometry.outputPositions)
    Benchmark("Im2Col.im2col 32x26x26 k3") { benchmark in
        for _ in benchmark.scaledIterations {
            columns.withUnsafeMutableBufferPointer { c in
                images.withUnsafeBufferPointer { Im2Col.im2col(c.baseAddress!, $0.baseAddress!, geometry: geometry, images: batch) }
            }
        }
        blackHole(columns)
    }
    var gradient = [Float](repeating: 0, count: images.count)
    Benchmark("Im2Col.col2im 32x26x26 k3") { benchmark in
        for _ in benchmark.scaledIterations {
            gradient.withUnsafeMutableBufferPointer { g in
                columns.withUnsafeBufferPointer { Im2Col.col2im(g.baseAddress!, $0.baseAddress!, geometry: geometry, images: batch) }
            }
        }
        blackHole(gradient)
    }

    // Every convolution of the MNIST network, forward and backward.
    let network = JointNetwork(architecture: .mnist, seed: 0)
    let cases = KernelFigures.convolutionCases(
        features: network.features, imageShape: Architecture.mnist.inputShape,
        batchSize: batch)
    for (index, c) in cases.enumerated() {
        let name = "conv\(index + 1) \(c.input.shape) * \(c.weight.shape)"
        Benchmark("conv2d forward \(name)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(ConvolutionKernels.forward(input: c.input, weight: c.weight, bias: c.bias))
            }
        }
        Benchmark("conv2d backward \(name)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(ConvolutionKernels.backward(input: c.input, weight: c.weight, outputGradient: c.outputGradient))
            }
        }
    }

    // Max pooling after the second convolution.
    let pooled = Tensor.uniform([batch, 32, 24, 24], using: &generator)
    Benchmark("max-pool 2x2 forward [\(batch), 32, 24, 24]") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(PoolingKernels.maxPool(pooled, size: 2)) }
    }
    let (poolOutput, argmax) = PoolingKernels.maxPool(pooled, size: 2)
    Benchmark("max-pool 2x2 backward [\(batch), 32, 24, 24]") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(PoolingKernels.maxPoolBackward(outputGradient: poolOutput, argmax: argmax, inputShape: pooled.shape))
        }
    }

    // Element-wise ops on a first-layer activation, forward and backward through the tape.
    let activation = Tensor.normal([batch, 32, 26, 26], using: &generator)
    for (name, op) in [
        ("relu", { (v: Variable) in v.relu() }), ("sigmoid", { (v: Variable) in v.sigmoid() }),
        ("x - y", { (v: Variable) in v - Variable(activation) })
    ] {
        Benchmark("elementwise \(name) forward+backward [\(batch), 32, 26, 26]") { benchmark in
            for _ in benchmark.scaledIterations {
                let tape = Tape()
                let x = tape.watch(activation)
                blackHole(tape.gradients(of: op(x).sum())[x])
            }
        }
    }

    // One joint training step of the whole network: wall clock and allocations per step.
    let workload = try? ModelWorkloads(architecture: .mnist, batchSize: batch)
    Benchmark(
        "joint training step, batch \(batch) (allocations per step)",
        configuration: .init(
            metrics: [.wallClock, .mallocCountTotal, .memoryLeaked, .peakMemoryResident],
            maxDuration: .seconds(5), maxIterations: 100)
    ) { benchmark in
        for _ in benchmark.scaledIterations { try? workload?.jointTrainStep() }
    }
}
