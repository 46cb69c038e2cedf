import Autodiff
import NeuralNetworks
import Tensors
import XCTest
@testable import Attacks

/// Gradient attacks take the gradient of a batch in slices of `AttackBatching.imagesPerPass` images:
/// the slicing must not change a bit of the gradients or of the attacks' results where the kernels give each
/// image the same bits in any batch (the AVX-512 GEMM kernel; OpenBLAS's products round by call shape, so
/// without AVX-512 the gradients must agree to float rounding).
final class AttackBatchingTests: XCTestCase {
    let usesKernel = BLAS.usesKernel

    override func setUp() {
        super.setUp()
        BLAS.usesKernel = true
    }

    override func tearDown() {
        AttackBatching.imagesPerPass = 16
        BLAS.usesKernel = usesKernel
        super.tearDown()
    }

    /// Whether the dense layers' products are the same bits in any batch (the AVX-512 kernel).
    var isExact: Bool { BLAS.kernelApplies(k: 16 * 4 * 4) }

    /// A small untrained convolutional classifier of `[N, 1, 10, 10]` images into 4 classes, with the layers
    /// the MNIST network uses (a one-channel convolution, a 16 -> 16 one with pooling, dense layers), and 21
    /// images: one slice at 16 images per pass, five of 4-5 at 4, ten of 2-3 at 2 and at 1.
    func convolutionalSetup() -> (model: DifferentiableClassifier, images: Tensor, labels: [Int]) {
        var generator = SeededGenerator(seed: 5)
        let network = Sequential([
            Conv2D(inputChannels: 1, outputChannels: 16, kernelSize: 3, padding: 1, using: &generator), ReLU(),
            Conv2D(inputChannels: 16, outputChannels: 16, kernelSize: 3, using: &generator), ReLU(), MaxPool2D(),
            Flatten(), Dense(inputSize: 16 * 4 * 4, outputSize: 32, using: &generator), ReLU(),
            Dense(inputSize: 32, outputSize: 4, using: &generator)
        ])
        let images = Tensor.uniform([21, 1, 10, 10], low: 0, high: 1, using: &generator)
        return (DifferentiableClassifier { network($0) }, images, (0..<21).map { $0 % 4 })
    }

    func testSlicesAreBalancedAndNeverSingleImagesOfALargerBatch() {
        AttackBatching.imagesPerPass = 16
        XCTAssertEqual(AttackBatching.slices(128).map(\.count), Array(repeating: 16, count: 8))
        XCTAssertEqual(AttackBatching.slices(17), [0..<17])
        XCTAssertEqual(AttackBatching.slices(40).map(\.count), [20, 20])
        XCTAssertEqual(AttackBatching.slices(47).map(\.count), [23, 24])
        XCTAssertEqual(AttackBatching.slices(16), [0..<16])
        XCTAssertEqual(AttackBatching.slices(1), [0..<1])
        XCTAssertEqual(AttackBatching.slices(0).map(\.count), [0])
        AttackBatching.imagesPerPass = 1
        XCTAssertEqual(AttackBatching.slices(5).map(\.count), [2, 3])
    }

    func testGradientIsTheSameBitsWhateverTheSlices() {
        let (model, images, labels) = convolutionalSetup()
        func gradient(imagesPerPass: Int) -> Tensor {
            AttackBatching.imagesPerPass = imagesPerPass
            return images.mapBatches(AttackBatching.slices(images.batchSize)) { x, rows in
                objectiveGradient(at: x, rows: rows) { x, rows in
                    ClassificationLoss.crossEntropy.objective(logits: model.logits(x), classes: Array(labels[rows]), targeted: false)
                }
            }
        }
        let whole = gradient(imagesPerPass: 21)
        XCTAssertEqual(whole.shape, images.shape)
        XCTAssertGreaterThan(whole.storage.filter { $0 != 0 }.count, whole.count / 2, "a gradient of mostly zeros tests little")
        for size in [16, 4, 2, 1] {
            let sliced = gradient(imagesPerPass: size)
            if isExact {
                let differing = zip(sliced.storage, whole.storage).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(differing, 0, "slices of \(size) images: \(differing) of \(whole.count) values differ")
            } else {
                let scale = whole.storage.map(abs).max() ?? 0
                for (a, b) in zip(sliced.storage, whole.storage) { XCTAssertEqual(a, b, accuracy: 1e-5 * scale) }
            }
        }
    }

    func testPGDAndAdaptivePGDGiveTheSameImagesWhateverTheSlices() throws {
        let (model, images, labels) = convolutionalSetup()
        let targets = labels.map { ($0 + 1) % 4 }
        let pgd = try ProjectedGradientDescent.lInfinity(epsilon: 0.1, stepSize: 0.02, steps: 3, randomStart: true, restarts: 2)
        // a detector whose score is the image's mean brightness: the adaptive PGD's objective has a term per image
        let detector = DifferentiableDetector(threshold: 0.5) { $0.sumPerSample() * (1 / 100) }
        let adaptive = try AdaptiveAttack(
            method: .projectedGradient(pgd, loss: .carliniWagnerMargin(confidence: 0)), detector: detector, detectorWeight: 2)
        let attacks: [any Attack] = [pgd, adaptive]
        for attack in attacks {
            for goal in [AttackGoal.untargeted, .targeted(targets)] {
                func run(imagesPerPass: Int) -> Tensor {
                    AttackBatching.imagesPerPass = imagesPerPass
                    var generator = SeededGenerator(seed: 9)
                    return attack.perturb(images, labels: labels, goal: goal, model: model, generator: &generator)
                }
                let whole = run(imagesPerPass: 64)
                XCTAssertNotEqual(whole.storage, images.storage)
                let sliced = run(imagesPerPass: 5)
                let differing = zip(sliced.storage, whole.storage).filter { $0.bitPattern != $1.bitPattern }.count
                // without the kernel a gradient's sign may flip where it is near zero: a few pixels move
                XCTAssertLessThanOrEqual(
                    differing, isExact ? 0 : whole.count / 20, "\(type(of: attack)), \(goal): \(differing) of \(whole.count) differ")
            }
        }
    }
}
