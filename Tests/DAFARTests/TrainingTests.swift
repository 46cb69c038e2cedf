import Autodiff
import Datasets
import Foundation
import NeuralNetworks
import Tensors
import XCTest
@testable import DAFAR

/// Small synthetic MNIST-shaped data: class k has a bright 6x6 square at one of 10 positions.
func syntheticDigits(count: Int, seed: UInt64) -> LabeledImages {
    var g = SeededGenerator(seed: seed)
    var images = Tensor.zeros([count, 1, 28, 28])
    var labels: [Int] = []
    for i in 0..<count {
        let k = i % 10
        labels.append(k)
        let (r, c) = (2 + (k / 5) * 12, 2 + (k % 5) * 5)
        for y in 0..<28 {
            for x in 0..<28 {
                let inside = y >= r && y < r + 6 && x >= c && x < c + 4
                images.storage[i * 784 + y * 28 + x] = inside ? 0.8 + 0.2 * g.nextUniform() : 0.1 * g.nextUniform()
            }
        }
    }
    return LabeledImages(images: images, labels: labels, classCount: 10)
}

final class TrainingTests: XCTestCase {
    func testCosineScheduleRunsFromTheBaseRateToZero() {
        let schedule = LearningRateSchedule.cosine
        XCTAssertEqual(schedule.rate(base: 0.1, progress: 0), 0.1, accuracy: 1e-7)
        XCTAssertEqual(schedule.rate(base: 0.1, progress: 0.5), 0.05, accuracy: 1e-7)
        XCTAssertEqual(schedule.rate(base: 0.1, progress: 1), 0, accuracy: 1e-7)
        XCTAssertEqual(schedule.rate(base: 0.1, progress: 0.25), Float(0.1 * (1 + 0.5.squareRoot()) / 2), accuracy: 1e-7)
        XCTAssertEqual(LearningRateSchedule.constant.rate(base: 0.1, progress: 0.7), 0.1)
    }

    func testTheTrainerSetsTheScheduledRateBeforeEachStep() throws {
        let data = syntheticDigits(count: 20, seed: 4)
        var settings = JointTrainingSettings()
        settings.batchSize = 10
        settings.epochs = 2
        settings.learningRate = 0.01
        let trainer = try JointTrainer(network: JointNetwork(architecture: .mnist, seed: 1), settings: settings)
        var rates: [Float] = []
        for _ in 0..<2 { _ = try trainer.runEpoch(on: data, onStep: { t in rates.append(t.optimizer.learningRate) }) }
        // 4 steps over the run: progress 0, 1/4, 2/4, 3/4.
        let expected = (0..<4).map { LearningRateSchedule.cosine.rate(base: 0.01, progress: Double($0) / 4) }
        XCTAssertEqual(rates, expected)
    }

    func testJointTrainingLowersTheLossAndIsReproducible() throws {
        let data = syntheticDigits(count: 40, seed: 1)
        func train() throws -> (JointNetwork, [Double]) {
            let net = JointNetwork(architecture: .mnist, seed: 7)
            var settings = JointTrainingSettings()
            settings.batchSize = 20
            settings.seed = 7
            let trainer = try JointTrainer(network: net, settings: settings)
            var losses: [Double] = []
            for _ in 0..<3 {
                _ = try trainer.runEpoch(on: data)
                let tape = Tape()
                let x = tape.constant(data.images)
                let out = net(x)
                let loss =
                    softmaxCrossEntropy(logits: out.logits, labels: data.labels)
                    + l2NormPerSample(out.reconstruction - x).mean()
                losses.append(Double(loss.value.scalar))
            }
            return (net, losses)
        }
        Parallel.setThreadCount(1)
        defer { Parallel.setThreadCount(Parallel.availableCores) }
        let (a, lossesA) = try train()
        let (b, _) = try train()
        XCTAssertLessThan(lossesA.last!, lossesA.first!, "joint loss should fall: \(lossesA)")
        for (pa, pb) in zip(a.namedParameters, b.namedParameters) {
            XCTAssertEqual(pa.parameter.value.storage, pb.parameter.value.storage, "\(pa.name) differs between two seeded runs")
        }
    }

    func testCheckpointResumeMatchesUninterruptedRun() throws {
        let data = syntheticDigits(count: 30, seed: 2)
        Parallel.setThreadCount(1)
        defer { Parallel.setThreadCount(Parallel.availableCores) }
        var settings = JointTrainingSettings()
        settings.batchSize = 10
        settings.seed = 3
        settings.augmentation = Augmentation(maxShift: 2)  // per-step draws must replay after a resume
        let full = try JointTrainer(network: JointNetwork(architecture: .mnist, seed: 3), settings: settings)
        _ = try full.runEpoch(on: data)
        _ = try full.runEpoch(on: data)

        let first = try JointTrainer(network: JointNetwork(architecture: .mnist, seed: 3), settings: settings)
        _ = try first.runEpoch(on: data)
        var steps = 0
        let completed = try first.runEpoch(on: data, shouldStop: { steps >= 1 }) { _ in steps += 1 }
        XCTAssertFalse(completed)
        let checkpoint = try SafetensorsArchive(bytes: first.checkpoint(metadata: [:]).encoded())

        let resumed = try JointTrainer(network: JointNetwork(architecture: .mnist, seed: 99), settings: settings)
        try resumed.restore(from: checkpoint, file: "checkpoint")
        XCTAssertEqual(resumed.epoch, 1)
        XCTAssertEqual(resumed.step, 1)
        _ = try resumed.runEpoch(on: data)
        for (pa, pb) in zip(full.network.namedParameters, resumed.network.namedParameters) {
            XCTAssertEqual(pa.parameter.value.storage, pb.parameter.value.storage, "\(pa.name) differs after resume")
        }
    }

    func testModelAndDetectorFilesRoundTripAndVerdicts() throws {
        let net = JointNetwork(architecture: .mnist, seed: 5)
        let reloaded = try JointNetwork(archive: SafetensorsArchive(bytes: net.archive(metadata: ["dataset": "x"]).encoded()))
        let x = syntheticDigits(count: 4, seed: 3).images
        XCTAssertEqual(reloaded.logits(Variable(x)).value, net.logits(Variable(x)).value)

        let detector = AnomalyDetector(inputSize: 784, hiddenSizes: [16, 8], seed: 1)
        let residuals = DetectorTraining.residuals(net, images: x)
        let scores = DetectorTraining.scores(detector, residuals: residuals)
        DetectorTraining.calibrate(detector, statisticsScores: scores, source: "validation", validationScores: scores, z: 1)
        let again = try AnomalyDetector(archive: SafetensorsArchive(bytes: detector.archive(modelHash: "abc").encoded()))
        XCTAssertEqual(again.calibration?.active, detector.calibration?.active)
        XCTAssertEqual(again.hiddenSizes, [16, 8])
        let model = DAFARModel(network: reloaded, detector: again)
        let verdicts = model.inspect(x)
        XCTAssertEqual(verdicts.map(\.predictedClass), model.classify(x))
        for (v, s) in zip(verdicts, model.scores(x)) {
            XCTAssertEqual(v.score, s, accuracy: 1e-4)
            XCTAssertEqual(v.isAdversarial, v.score > detector.calibration!.active)
        }
    }

    func testWrongKindOfFileIsRejected() {
        let detector = AnomalyDetector(inputSize: 784, hiddenSizes: [8], seed: 1)
        XCTAssertThrowsError(try JointNetwork(archive: detector.archive(modelHash: "x"))) { error in
            XCTAssertTrue("\(error)".contains("not a DAFAR model"), "\(error)")
        }
    }
}
