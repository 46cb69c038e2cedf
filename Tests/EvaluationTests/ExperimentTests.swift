import Attacks
import DAFAR
import Datasets
import Foundation
import Tensors
import Reporting
import XCTest
@testable import Evaluation

/// The experiment driver: its pieces on known inputs, and one whole run on a tiny trained model.
final class ExperimentTests: XCTestCase {
    func testSignNoiseHasExactlyTheRequestedSizeInsideTheImageRange() {
        var generator = SeededGenerator(seed: 3)
        let images = Tensor(shape: [3, 1, 4, 4], storage: (0..<48).map { Float($0 % 16) / 15 })  // includes 0 and 1
        let noisy = NoiseControl.signNoise(images, epsilons: [0.1, 0.3, 0], using: &generator)
        XCTAssertTrue(noisy.storage.allSatisfy { $0 >= 0 && $0 <= 1 }, "clipped to [0, 1]")
        for (i, eps) in [Float(0.1), 0.3, 0].enumerated() {
            for j in (i * 16)..<((i + 1) * 16) {
                let (x, y) = (images.storage[j], noisy.storage[j])
                let expected = [min(1, x + eps), max(0, x - eps)]
                XCTAssertTrue(expected.contains { abs($0 - y) < 1e-6 }, "image \(i) pixel \(j): \(x) -> \(y) is not x +- \(eps), clipped")
            }
        }
        let interior = Tensor(shape: [1, 1, 20, 20], repeating: 0.5)
        let signs = NoiseControl.signNoise(interior, epsilons: [0.25], using: &generator).storage.map { $0 > 0.5 }
        let ups = signs.filter { $0 }.count
        XCTAssertTrue((150...250).contains(ups), "signs are random, about half up: \(ups) of 400")
        var again = SeededGenerator(seed: 3)
        XCTAssertEqual(NoiseControl.signNoise(images, epsilons: [0.1, 0.3, 0], using: &again), noisy, "seeded: same noise")
    }

    func testPerturbedSetSplitsSuccessfulFailedAndAlreadyWrong() {
        let clean = Tensor(shape: [4, 1, 2, 2], repeating: 0.5)
        var perturbed = clean
        perturbed.storage[0] = 0.8  // image 0: L2 0.3, L-inf 0.3
        perturbed.storage[4] = 0.1; perturbed.storage[5] = 0.2  // image 1: L2 0.5, L-inf 0.4
        let set = PerturbedSet(
            name: "t", key: "t", family: .fgsm, epsilon: 0.3, clean: clean, perturbed: perturbed,
            labels: [0, 1, 2, 3], predictedClean: [0, 1, 2, 0], predictedPerturbed: [5, 1, 7, 3],
            cleanIsTestPrefix: true)
        XCTAssertEqual(set.successful, [true, false, true, false])
        XCTAssertEqual(set.failed, [false, true, false, false])
        XCTAssertEqual(set.alreadyWrong, 1, "image 3 was misclassified before the attack")
        XCTAssertEqual(set.successRate, Rate(2, of: 3), "success among the correctly classified images")
        XCTAssertEqual(set.l2Distances[0], 0.3, accuracy: 1e-6)
        XCTAssertEqual(set.l2Distances[1], 0.5, accuracy: 1e-6)
        XCTAssertEqual(set.lInfinityDistances, [0.3, 0.4, 0, 0].map { Float($0) }, "L-inf per image")
    }

    func testExperimentListsAndSettingsAreChecked() throws {
        XCTAssertEqual(try ExperimentKind.parseList("all"), ExperimentKind.allCases)
        XCTAssertEqual(try ExperimentKind.parseList("roc, features,roc"), [.features, .roc], "paper order, no repeats")
        XCTAssertThrowsError(try ExperimentKind.parseList("features,fig9")) { error in
            XCTAssertTrue("\(error)".contains("fig9") && "\(error)".contains("adaptive"), "names the bad entry and the choices: \(error)")
        }
        var settings = ExperimentSettings()
        XCTAssertNoThrow(try settings.validate())
        settings.epsilons = [0.1, 1.5]
        XCTAssertThrowsError(try settings.validate(), "eps above 1")
        settings = ExperimentSettings()
        settings.operatingRate = 0.5
        XCTAssertThrowsError(try settings.validate(), "a 50 % operating point is no detector")
    }

    func testNoiseVerdictSaysWhenNoiseIsFlaggedAsOftenAsTheAttack() {
        let attack = [PlotPoint(x: 0.1, rate: Rate(90, of: 100)), PlotPoint(x: 0.3, rate: Rate(99, of: 100))]
        let sizeDetector = [PlotPoint(x: 0.1, rate: Rate(86, of: 100)), PlotPoint(x: 0.3, rate: Rate(100, of: 100))]
        let goodDetector = [PlotPoint(x: 0.1, rate: Rate(5, of: 100)), PlotPoint(x: 0.3, rate: Rate(8, of: 100))]
        let text = EvaluationRun.noiseVerdicts(headers: ["size", "good"], attack: [attack, attack], noise: [sizeDetector, goodDetector])
        XCTAssertTrue(
            text.contains("- size flags random sign noise as often as FGSM (overlapping 95 % intervals or more) at eps 0.1, 0.3"), text)
        XCTAssertTrue(text.contains("- good flags FGSM more often than noise at every eps"), text)
    }

    func testPaperComparisonUsesTheIntervals() {
        XCTAssertEqual(compare(Rate(993, of: 1000), 0.9924, higherIsBetter: true), "consistent with the paper (within the 95 % interval)")
        XCTAssertEqual(compare(Rate(950, of: 1000), 0.9924, higherIsBetter: true), "falls short of the paper")
        XCTAssertEqual(compare(Rate(50, of: 1000), 0.0016, higherIsBetter: false), "falls short of the paper", "a higher FPR is worse")
        XCTAssertEqual(compare(Rate(0, of: 0), 1, higherIsBetter: true), "not measured")
    }

    func testProvidedSetsMustComeFromThisModelAndTheTestSplit() throws {
        let fixture = TinyDAFAR.shared
        let inputs = ExperimentInputs(model: fixture.model, test: fixture.splits.test, settings: fixture.settings)
        let images = fixture.splits.test.prefix(6)
        func set(hash: String, split: String = "test", eps: String = "0.2") -> AdversarialSet {
            AdversarialSet(
                clean: images.images, adversarial: images.images, labels: images.labels, predictedClean: images.labels,
                predictedAdversarial: images.labels, success: [Bool](repeating: false, count: 6),
                metadata: [
                    "model_sha256": hash, "attack_kind": "fgsm", "split": split, "dataset": "mnist",
                    "attack_settings": "{\"epsilon\":\"\(eps)\",\"norm\":\"linf\"}"
                ])
        }
        XCTAssertThrowsError(try inputs.addProvided(set(hash: "other"), file: "a.safetensors", dataset: "mnist")) { error in
            XCTAssertTrue("\(error)".contains("another model"), "\(error)")
        }
        XCTAssertThrowsError(try inputs.addProvided(set(hash: fixture.model.modelHash, split: "validation"), file: "b", dataset: "mnist"))
        XCTAssertThrowsError(try inputs.addProvided(set(hash: fixture.model.modelHash), file: "c", dataset: "cifar10"))
        try inputs.addProvided(set(hash: fixture.model.modelHash), file: "d.safetensors", dataset: "mnist")
        XCTAssertEqual(inputs.fgsm(0.2).source, "d.safetensors", "the provided FGSM set takes the slot of its eps")
        XCTAssertTrue(inputs.fgsmEpsilons.contains(0.2), "its eps joins the sweep")
        XCTAssertThrowsError(
            try inputs.addProvided(set(hash: fixture.model.modelHash), file: "e", dataset: "mnist"), "the same attack twice")
    }

    func testWholeRunOnATinyModelCountsEveryImageOnceAndWritesTheReport() throws {
        let fixture = TinyDAFAR.shared
        let runner = ExperimentRunner(model: fixture.model, splits: fixture.splits, settings: fixture.settings)
        let report = try runner.run(context: ReportContext(dataset: .mnist, commands: ["dafar-eval --tiny"]))
        let titles = report.sections.map(\.title)
        XCTAssertEqual(titles.count, ExperimentKind.allCases.count + 3, "summary, clean data, every experiment, settings: \(titles)")
        XCTAssertTrue(titles.first!.contains("paper's claims"))
        let markdown = report.markdown()
        XCTAssertTrue(markdown.contains("Where DAFAR falls short of the paper"), "the report states the comparison")
        XCTAssertTrue(markdown.contains("sign noise eps=0.3"), "the noise control sits beside FGSM")

        // Fig. 6 rows: successful + failed + already-wrong = every image; noise counts every image.
        guard case .array(let rows)? = report.results["intensity"] else { return XCTFail("no intensity results") }
        XCTAssertEqual(rows.count, fixture.settings.epsilons.count)
        for row in rows {
            guard case .int(let wrong)? = row["alreadyMisclassified"],
                case .int(let successful)? = row["DAFAR 5 %"]?["detection"]?["successful"]?["total"],
                case .int(let failed)? = row["DAFAR 5 %"]?["detection"]?["failed"]?["total"],
                case .int(let noise)? = row["DAFAR 5 %"]?["noiseFlagged"]?["denominator"]
            else { return XCTFail("missing counts in \(row)") }
            XCTAssertEqual(successful + failed + wrong, fixture.settings.count, "each image in exactly one group")
            XCTAssertEqual(noise, fixture.settings.count)
        }
        // Thresholds fitted on validation images keep the validation false-positive rate at or below the rate.
        guard case .array(let thresholds)? = report.results["clean"]?["thresholds"] else { return XCTFail("no thresholds") }
        XCTAssertEqual(thresholds.count, 10, "DAFAR alpha, 1 %, 5 %; DAFAR decision and fused 1 %, 5 %; MagNet, FS and binary at 5 %")
        for threshold in thresholds {
            guard case .string(let label)? = threshold["threshold"], label.hasSuffix("%"),
                case .int(let flagged)? = threshold["falsePositivesValidation"]?["numerator"],
                case .int(let total)? = threshold["falsePositivesValidation"]?["denominator"]
            else { continue }
            let rate = Double(label.dropLast(2))! / 100
            XCTAssertLessThanOrEqual(Double(flagged), rate * Double(total) + 1e-9, "\(threshold)")
        }
        XCTAssertEqual(runner.summaryTable.rows.count, 10, "one summary row per detector threshold")
        XCTAssertTrue(runner.summaryTable.columns.contains("sign noise eps=0.3"))

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dafar-eval-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let written = try report.write(to: folder)
        let svgs = written.filter { $0.pathExtension == "svg" }.map(\.lastPathComponent)
        for name in [
            "fig4-reconstruction.svg", "fig5-scores-fgsm.svg", "fig6-detection.svg", "fig6-noise-control.svg",
            "fig7-attacks.svg", "fig7-noise-control.svg", "fig8-filter.svg", "adaptive-attack.svg", "roc-fgsm-0.3.svg",
            "roc-sign-noise-0.3.svg"
        ] {
            XCTAssertTrue(svgs.contains(name), "\(name) missing from \(svgs)")
        }
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("results.json"))) as? [String: Any]
        let adaptive = try XCTUnwrap(
            (json?["results"] as? [String: Any])?["adaptive"] as? [[String: Any]], "results.json holds the adaptive sweep")
        let attacked = Set(adaptive.compactMap { $0["detector"] as? String })
        XCTAssertEqual(attacked, ["DAFAR", "DAFAR fused"], "the adaptive attack runs against both detectors")
        XCTAssertEqual(
            adaptive.filter { $0["attack"] as? String == "PGD" }.count,
            2 * fixture.settings.adaptiveLambdas.count * fixture.settings.adaptiveEpsilons.count, "PGD: every lambda and eps")
        XCTAssertEqual(adaptive.filter { $0["attack"] as? String == "CW-L2" }.count, 2, "CW-L2 at the largest lambda, per detector")
        for row in adaptive {
            let evaded = try XCTUnwrap(row["evaded"] as? [String: Any]),
                misclassified = try XCTUnwrap(row["misclassified"] as? [String: Any])
            XCTAssertLessThanOrEqual(evaded["numerator"] as! Int, misclassified["numerator"] as! Int, "undetected successes are successes")
        }
    }
}

/// A DAFAR model trained for a few epochs on synthetic 28 x 28 digits (a bright block per
/// class), its detector calibrated on validation images, and tiny experiment settings.
final class TinyDAFAR: @unchecked Sendable {
    static let shared = TinyDAFAR()
    let model: DAFARModel
    let splits: DatasetSplits
    let settings: ExperimentSettings

    init() {
        func digits(_ count: Int, seed: UInt64) -> LabeledImages {
            var g = SeededGenerator(seed: seed)
            var images = Tensor.zeros([count, 1, 28, 28])
            let labels = (0..<count).map { $0 % 10 }
            for (i, k) in labels.enumerated() {
                let (r, c) = (3 + (k / 5) * 12, 2 + (k % 5) * 5)
                for y in 0..<28 {
                    for x in 0..<28 {
                        let inside = y >= r && y < r + 8 && x >= c && x < c + 4
                        images.storage[i * 784 + y * 28 + x] = inside ? 0.8 + 0.2 * g.nextUniform() : 0.1 * g.nextUniform()
                    }
                }
            }
            return LabeledImages(images: images, labels: labels, classCount: 10)
        }
        splits = DatasetSplits(train: digits(60, seed: 1), validation: digits(40, seed: 2), test: digits(20, seed: 3), name: .mnist)
        let network = JointNetwork(architecture: .mnist, seed: 5)
        var training = JointTrainingSettings()
        training.batchSize = 20
        training.learningRate = 3e-3
        let trainer = try! JointTrainer(network: network, settings: training)
        for _ in 0..<4 { _ = try! trainer.runEpoch(on: splits.train) }
        let detector = AnomalyDetector(inputSize: 784, hiddenSizes: [16, 8], seed: 1)
        let scores = { (images: Tensor) in DetectorTraining.scores(detector, residuals: DetectorTraining.residuals(network, images: images))
        }
        DetectorTraining.calibrate(
            detector, statisticsScores: scores(splits.train.images), source: "train",
            validationScores: scores(splits.validation.images), z: 3)
        model = DAFARModel(network: network, detector: detector, modelHash: "tiny")
        var settings = ExperimentSettings()
        settings.count = 12
        settings.epsilons = [0.1, 0.3]
        settings.pgdSteps = 3
        settings.slowCount = 4
        settings.cwSteps = 5
        settings.cwBinarySteps = 1
        settings.adaptiveCount = 4
        settings.adaptiveLambdas = [0, 1]
        settings.adaptiveEpsilons = [0.3]
        settings.adaptiveSteps = 2
        settings.baselineEpochs = 1
        settings.binaryTrainingCount = 10
        self.settings = settings
    }
}
