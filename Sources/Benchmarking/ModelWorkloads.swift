import Attacks
import Autodiff
import DAFAR
import Datasets
import NeuralNetworks
import Tensors

/// The DAFAR workloads that the benchmark times, on one Table-1 network with seeded
/// synthetic images (uniform in [0, 1], labels `i mod 10`): speed does not depend on
/// what the pixels show, and the benchmark needs no data files.
///
/// Every workload is written once here; `dafar-bench` and the PyTorch script in
/// `Benchmarks/compare/` run the same ones.
public final class ModelWorkloads {
    /// The Table-1 architecture.
    public let architecture: Architecture
    /// Images per batch.
    public let batchSize: Int
    /// E, F and D, trained by `jointTrainStep`.
    public let network: JointNetwork
    /// C, trained by `detectorTrainStep`, calibrated so that inference can give verdicts.
    public let detector: AnomalyDetector
    /// One batch of images `[batchSize, C, H, W]` with labels.
    public let batch: LabeledImages
    /// Residuals `x - D(E(x))` of `batch` (the detector's training input).
    public let residuals: Tensor
    let jointTrainer: JointTrainer
    let detectorTrainer: DetectorTrainer
    let model: DAFARModel

    /// Seeded synthetic images in [0, 1] with labels `i mod classCount`.
    public static func syntheticImages(count: Int, shape: [Int], classCount: Int = 10, seed: UInt64) -> LabeledImages {
        var generator = SeededGenerator(seed: seed)
        return LabeledImages(
            images: Tensor.uniform([count] + shape, using: &generator),
            labels: (0..<count).map { $0 % classCount }, classCount: classCount)
    }

    /// Builds the networks (seeded), a batch and its residuals.
    public init(architecture: Architecture = .mnist, batchSize: Int = 128, seed: UInt64 = 0) throws {
        self.architecture = architecture
        self.batchSize = batchSize
        network = JointNetwork(architecture: architecture, seed: seed)
        detector = AnomalyDetector(inputSize: architecture.inputShape.elementCount, seed: seed &+ 1)
        batch = Self.syntheticImages(count: batchSize, shape: architecture.inputShape, seed: seed &+ 2)
        var settings = JointTrainingSettings()
        settings.batchSize = batchSize
        settings.seed = seed
        jointTrainer = try JointTrainer(network: network, settings: settings)
        detectorTrainer = try DetectorTrainer(detector: detector, settings: DetectorTrainingSettings())
        residuals = DetectorTraining.residuals(network, images: batch.images)
        let scores = DetectorTraining.scores(detector, residuals: residuals)
        DetectorTraining.calibrate(detector, statisticsScores: scores, source: "benchmark", validationScores: scores, z: 3)
        model = DAFARModel(network: network, detector: detector)
    }

    /// One joint training step on the batch: E+F+D forward, Eq. 5 loss, backward, Adam.
    public func jointTrainStep() throws { try jointTrainer.trainStep(batch) }

    /// One detector training step on the batch's residuals as `dafar-detector` takes it (the default
    /// settings: Eq. 6 with the L2 objective, Adam at 1e-3, gradient groups of 32): C forward, loss,
    /// backward, the exact sum of the groups' gradients, Adam.
    public func detectorTrainStep() {
        detectorTrainer.trainStep(residuals)
    }

    /// Classify + reconstruct + score (`DAFARModel.inspect`) of the first `count` images of the batch.
    public func inspect(count: Int) -> [Verdict] {
        model.inspect(count == batchSize ? batch.images : batch.images.slice(0..<count))
    }

    /// The classifier F(E(.)) as attacks see it.
    public var classifier: DifferentiableClassifier { DifferentiableClassifier { [network] in network.logits($0) } }

    /// Runs `attack` untargeted on the batch with its true labels.
    public func attack(_ attack: any Attack, seed: UInt64 = 3) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return attack.perturb(batch.images, labels: batch.labels, goal: .untargeted, model: classifier, generator: &generator)
    }

    /// FGSM, L-inf, eps 0.3 (one forward and backward pass).
    public static func fgsm() throws -> FastGradientMethod { try FastGradientMethod(norm: .lInfinity, epsilon: 0.3) }

    /// PGD, L-inf, eps 0.3, step 0.01, `steps` steps (40 for the figure), random start.
    public static func pgd(steps: Int) throws -> ProjectedGradientDescent {
        try ProjectedGradientDescent.lInfinity(epsilon: 0.3, stepSize: 0.01, steps: steps, randomStart: true)
    }

    /// CW-L2 with one binary-search step of `iterations` Adam iterations (lr 5e-3, c 1e-2,
    /// kappa 0) and no early abort, so that every run does the same work.
    public static func carliniWagner(iterations: Int) throws -> CarliniWagnerL2 {
        try CarliniWagnerL2(
            learningRate: 5e-3, binarySearchSteps: 1, maxIterations: iterations, initialConstant: 1e-2,
            confidence: 0, abortEarly: false)
    }

    /// A whole training run for the memory figure: `epochs` epochs of joint training on
    /// `images` synthetic images, then the residuals and `epochs` epochs of detector training.
    public static func trainingRun(images: Int, batchSize: Int, epochs: Int, seed: UInt64 = 0) throws {
        let data = syntheticImages(count: images, shape: Architecture.mnist.inputShape, seed: seed &+ 4)
        let network = JointNetwork(architecture: .mnist, seed: seed)
        var settings = JointTrainingSettings()
        settings.batchSize = batchSize
        settings.epochs = epochs
        settings.seed = seed
        let trainer = try JointTrainer(network: network, settings: settings)
        for _ in 0..<epochs { _ = try trainer.runEpoch(on: data) }
        let residuals = DetectorTraining.residuals(network, images: data.images)
        let detector = AnomalyDetector(inputSize: Architecture.mnist.inputShape.elementCount, seed: seed &+ 1)
        var detectorSettings = DetectorTrainingSettings()
        detectorSettings.batchSize = batchSize
        detectorSettings.epochs = epochs
        try DetectorTraining.train(detector, residuals: residuals, settings: detectorSettings)
    }
}
