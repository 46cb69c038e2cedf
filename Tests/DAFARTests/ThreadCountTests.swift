import Autodiff
import NeuralNetworks
import Tensors
import XCTest
@testable import DAFAR

/// Training gives the same bits whatever the number of threads (up to 8): the kernels' splits of
/// the work depend on the shapes only, and gradient groups may run side by side.
final class ThreadCountTests: XCTestCase {
    /// Runs `body` with `threads` kernel threads, then restores the count.
    func with<T>(threads: Int, _ body: () throws -> T) rethrows -> T {
        let saved = Parallel.threadCount
        Parallel.setThreadCount(threads)
        defer { Parallel.setThreadCount(saved) }
        return try body()
    }

    /// Asserts that each pair of named value lists is the same bit for bit, naming what differs.
    func assertSameBits(_ a: [(String, [Float])], _ b: [(String, [Float])], _ what: String) {
        XCTAssertEqual(a.map(\.0), b.map(\.0))
        for ((name, x), (_, y)) in zip(a, b) {
            XCTAssertEqual(x.count, y.count, "\(what), \(name): sizes")
            let differing = zip(x, y).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(differing, 0, "\(what), \(name): \(differing) of \(x.count) values differ")
        }
    }

    func testJointGradientsAreTheSameBitsForOneTwoAndThreeThreads() {
        let data = syntheticDigits(count: 48, seed: 9)
        let network = JointNetwork(architecture: .mnist, seed: 3)
        let settings = JointTrainingSettings()
        func gradients(threads: Int) -> [(String, [Float])] {
            with(threads: threads) {
                let tape = Tape()
                let x = tape.constant(data.images)
                let outputs = network(x)
                let loss =
                    softmaxCrossEntropy(logits: outputs.logits, labels: data.labels)
                    + settings.reconstructionNorm.perSample(outputs.reconstruction, x).mean() * settings.reconstructionWeight
                let g = tape.gradients(of: loss)
                return network.namedParameters.map { ($0.name, g[object: $0.parameter]?.storage ?? []) }
            }
        }
        // the dense products on the kernels (the AVX-512 one, or the AVX2 one for weight gradients) and on OpenBLAS
        for kernel in BLAS.kernelIsSupported || BLAS.transposedKernelIsSupported ? [true, false] : [false] {
            let saved = BLAS.usesKernel
            BLAS.usesKernel = kernel
            defer { BLAS.usesKernel = saved }
            let one = gradients(threads: 1)
            XCTAssertTrue(one.allSatisfy { !$0.1.isEmpty && $0.1.allSatisfy(\.isFinite) })
            assertSameBits(one, gradients(threads: 2), "2 threads, kernel \(kernel)")
            assertSameBits(one, gradients(threads: 3), "3 threads, kernel \(kernel)")
        }
    }

    func testGroupedJointTrainingIsTheSameForOneTwoAndThreeThreads() throws {
        // Batches of 16 in groups of 8: two groups run side by side on 2 threads, one after the
        // other on 1 thread and on 3 threads (their kernels then split across the threads).
        let data = syntheticDigits(count: 32, seed: 2)
        func train(threads: Int) throws -> [(String, [Float])] {
            try with(threads: threads) {
                let network = JointNetwork(architecture: .mnist, seed: 5)
                var settings = JointTrainingSettings()
                settings.batchSize = 16
                settings.gradientGroupSize = 8
                settings.seed = 5
                let trainer = try JointTrainer(network: network, settings: settings)
                _ = try trainer.runEpoch(on: data, onStep: { _ in })
                return network.namedParameters.map { ($0.name, $0.parameter.value.storage) }
            }
        }
        let one = try train(threads: 1)
        assertSameBits(one, try train(threads: 2), "2 threads")
        assertSameBits(one, try train(threads: 3), "3 threads")
    }

    func testDetectorGradientsAreTheSameBitsForOneTwoAndThreeThreads() {
        let residuals = syntheticDigits(count: 40, seed: 6).images
        let detector = AnomalyDetector(inputSize: 784, seed: 4)
        func gradients(threads: Int) -> [(String, [Float])] {
            with(threads: threads) {
                let tape = Tape()
                let g = tape.gradients(of: detector.loss(residual: tape.constant(residuals), objective: .l2))
                return detector.namedParameters.map { ($0.name, g[object: $0.parameter]?.storage ?? []) }
            }
        }
        let one = gradients(threads: 1)
        assertSameBits(one, gradients(threads: 2), "2 threads")
        assertSameBits(one, gradients(threads: 3), "3 threads")
    }
}
