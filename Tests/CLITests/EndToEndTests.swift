import Foundation
import XCTest

/// Trains a tiny model and detector through the real commands on small IDX files,
/// attacks it, and checks the outputs.
final class EndToEndTests: XCTestCase {
    func testTrainDetectAttackOnTinyIDXData() throws {
        let dir = try TinyData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try TinyData.writeMNIST(to: dir, trainCount: 120, testCount: 40)
        let model = dir.appendingPathComponent("m.safetensors").path
        let detector = dir.appendingPathComponent("d.safetensors").path
        let adversarial = dir.appendingPathComponent("fgsm.safetensors").path
        let data = ["--dataset", "mnist", "--data-dir", dir.path, "--threads", "1", "--quiet"]

        let train = try CommandRunner.run("dafar-train", data + ["--epochs", "2", "--batch-size", "20", "--output", model])
        XCTAssertEqual(train.status, 0, train.stderr)
        XCTAssertTrue(train.stdout.contains("test accuracy"), train.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: model + ".checkpoint"))

        let detect = try CommandRunner.run(
            "dafar-detector", data + ["--model", model, "--epochs", "2", "--hidden-sizes", "32,16", "--output", detector])
        XCTAssertEqual(detect.status, 0, detect.stderr)
        XCTAssertTrue(detect.stdout.contains("1 % FPR on validation"), detect.stdout)

        let attack = try CommandRunner.run(
            "dafar-attack",
            data + [
                "--model", model, "--detector", detector, "--attack", "fgsm",
                "--eps", "0.3", "--count", "20", "--output", adversarial
            ])
        XCTAssertEqual(attack.status, 0, attack.stderr)
        XCTAssertTrue(attack.stdout.contains("FGSM: success"), attack.stdout)

        // The fused score (residual + decision feedback): recorded in the file, its verdicts and adaptive attack follow it.
        let fused = dir.appendingPathComponent("fused.safetensors").path
        let fusedRun = try CommandRunner.run(
            "dafar-detector",
            data + [
                "--model", model, "--epochs", "2", "--hidden-sizes", "32,16",
                "--score", "fused", "--temperature", "4", "--threshold", "fpr5",
                "--output", fused
            ])
        XCTAssertEqual(fusedRun.status, 0, fusedRun.stderr)
        XCTAssertTrue(fusedRun.stdout.contains("verdicts score fused (T = 4.0"), fusedRun.stdout)
        let fusedMetadata = try XCTUnwrap(try safetensorsHeader(fused)["__metadata__"] as? [String: String])
        XCTAssertEqual(fusedMetadata["score_kind"], "fused")
        XCTAssertEqual(fusedMetadata["decision_temperature"], "4.0")
        XCTAssertGreaterThan(Float(fusedMetadata["fused_residual_scale"] ?? "") ?? 0, 0)
        XCTAssertGreaterThan(Float(fusedMetadata["fused_decision_scale"] ?? "") ?? 0, 0)
        XCTAssertEqual(fusedMetadata["threshold"], fusedMetadata["threshold_fpr_5pct"], "--threshold fpr5 is the active one")
        let adaptive = dir.appendingPathComponent("adaptive.safetensors").path
        let adaptiveRun = try CommandRunner.run(
            "dafar-attack",
            data + [
                "--model", model, "--detector", fused, "--attack", "adaptive-pgd",
                "--steps", "3", "--count", "8", "--output", adaptive
            ])
        XCTAssertEqual(adaptiveRun.status, 0, adaptiveRun.stderr)
        let badScore = try CommandRunner.run("dafar-detector", data + ["--model", model, "--score", "median", "--output", fused])
        XCTAssertEqual(badScore.status, 64, badScore.stderr)
        XCTAssertTrue(badScore.stderr.contains("--score"), badScore.stderr)
        let badTemperature = try CommandRunner.run("dafar-detector", data + ["--model", model, "--temperature", "0", "--output", fused])
        XCTAssertEqual(badTemperature.status, 64, badTemperature.stderr)
        XCTAssertTrue(badTemperature.stderr.contains("--temperature must be a positive number"), badTemperature.stderr)
        XCTAssertEqual(
            try safetensorsHeader(fused)["__metadata__"] as? [String: String], fusedMetadata, "a refused run leaves the file alone")

        // Targeted: random targets other than the label, success = target reached, targets in the set.
        let targeted = dir.appendingPathComponent("targeted.safetensors").path
        let randomTargets = try CommandRunner.run(
            "dafar-attack",
            data + [
                "--model", model, "--attack", "jsma", "--target", "random",
                "--count", "10", "--output", targeted
            ])
        XCTAssertEqual(randomTargets.status, 0, randomTargets.stderr)
        XCTAssertTrue(randomTargets.stdout.contains("success = the target class reached (--target random)"), randomTargets.stdout)
        let targetedHeader = try safetensorsHeader(targeted)
        XCTAssertEqual((targetedHeader["target"] as? [String: Any])?["shape"] as? [Int], [10])
        XCTAssertEqual((targetedHeader["__metadata__"] as? [String: String])?["success_criterion"], "target reached")
        let badTarget = try CommandRunner.run(
            "dafar-attack",
            data + [
                "--model", model, "--attack", "fgsm", "--target", "10",
                "--count", "10", "--output", targeted
            ])
        XCTAssertEqual(badTarget.status, 64, badTarget.stderr)
        XCTAssertTrue(badTarget.stderr.contains("--target 10 is not a class of this model"), badTarget.stderr)
        XCTAssertEqual(try safetensorsHeader(targeted).count, targetedHeader.count, "a refused run leaves the earlier set alone")

        // The header of the model file names the PyTorch state_dict exactly.
        let header = try safetensorsHeader(model)
        let conv0 = header["target.features.0.weight"] as? [String: Any]
        XCTAssertEqual(conv0?["shape"] as? [Int], [32, 1, 3, 3])
        XCTAssertEqual((header["target.classifier.1.weight"] as? [String: Any])?["shape"] as? [Int], [200, 1024])
        XCTAssertEqual((header["decoder.1.weight"] as? [String: Any])?["dtype"] as? String, "F32")
        let metadata = header["__metadata__"] as? [String: String]
        XCTAssertNotNil(metadata?["test_accuracy"], "the test accuracy is recorded")
    }

    /// The JSON header of a safetensors file.
    func safetensorsHeader(_ path: String) throws -> [String: Any] {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let length = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        return try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + length))) as! [String: Any]
    }

    func testBadInputGivesOneLineAndSysexitsStatus() throws {
        let missing = try CommandRunner.run("dafar-detector", ["--model", "/nonexistent/m.safetensors", "--output", "/tmp/x.safetensors"])
        XCTAssertEqual(missing.status, 66, missing.stderr)
        XCTAssertEqual(missing.stderr.split(separator: "\n").count, 1, missing.stderr)
        let usage = try CommandRunner.run("dafar-train", ["--epochs", "-1", "--output", "/tmp/x.safetensors"])
        XCTAssertEqual(usage.status, 64, usage.stderr)
    }
}
