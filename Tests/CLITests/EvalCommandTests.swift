import Foundation
#if canImport(FoundationXML)
    import FoundationXML
#endif
import XCTest

/// `dafar-eval` end to end on tiny IDX files: train, detect, attack, then evaluate with the
/// attack's set reused; the report, its JSON and its SVG figures must be well-formed.
final class EvalCommandTests: XCTestCase {
    func testEvalWritesAReportJSONAndWellFormedSVGs() throws {
        let dir = try TinyData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try TinyData.writeMNIST(to: dir, trainCount: 100, testCount: 30)
        let model = dir.appendingPathComponent("m.safetensors").path
        let detector = dir.appendingPathComponent("d.safetensors").path
        let fgsm = dir.appendingPathComponent("fgsm.safetensors").path
        let report = dir.appendingPathComponent("report")
        let data = ["--dataset", "mnist", "--data-dir", dir.path, "--threads", "1", "--quiet"]

        let train = try CommandRunner.run("dafar-train", data + ["--epochs", "2", "--batch-size", "15", "--output", model])
        XCTAssertEqual(train.status, 0, train.stderr)
        let detect = try CommandRunner.run(
            "dafar-detector", data + ["--model", model, "--epochs", "1", "--hidden-sizes", "16,8", "--output", detector])
        XCTAssertEqual(detect.status, 0, detect.stderr)
        let attack = try CommandRunner.run(
            "dafar-attack",
            data + [
                "--model", model, "--attack", "fgsm", "--eps", "0.3",
                "--count", "8", "--output", fgsm
            ])
        XCTAssertEqual(attack.status, 0, attack.stderr)

        let tiny = [
            "--count", "8", "--epsilons", "0.1,0.3", "--pgd-steps", "2", "--slow-count", "3", "--cw-steps", "3",
            "--cw-binary-steps", "1", "--adaptive-count", "3", "--adaptive-steps", "2", "--adaptive-lambdas", "0,1",
            "--adaptive-eps", "0.3", "--baseline-epochs", "1", "--binary-training-count", "10"
        ]
        let eval = try CommandRunner.run(
            "dafar-eval",
            data + tiny + [
                "--model", model, "--detector", detector,
                "--adversarial", fgsm, "--report", report.path
            ])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        XCTAssertTrue(
            eval.stdout.contains("sign noise eps=0.3") && eval.stdout.contains("DAFAR alpha"),
            "the summary table puts the noise control beside the detectors: \(eval.stdout)")

        let markdown = try String(contentsOf: report.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("Where DAFAR falls short of the paper"), "the report compares with the paper")
        XCTAssertTrue(markdown.contains("adversarial set read | FGSM eps=0.3: \(fgsm)"), "the reused set is named in the settings")
        XCTAssertTrue(markdown.contains("dafar-eval --dataset mnist"), "the command that reproduces the report")

        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: report.appendingPathComponent("results.json"))) as? [String: Any]
        XCTAssertEqual(json?["format"] as? String, "dafar-evaluation-results")
        let results = json?["results"] as? [String: Any]
        for key in ["clean", "features", "reconstruction", "scores", "intensity", "attacks", "filter", "adaptive", "roc", "summary"] {
            XCTAssertNotNil(results?[key], "results.json lacks '\(key)'")
        }

        // A file that is not an adversarial set (here: the detector) is refused before any work, in one line.
        let wrong = try CommandRunner.run(
            "dafar-eval",
            data + tiny + [
                "--model", model, "--detector", detector,
                "--adversarial", detector, "--report", report.path
            ])
        XCTAssertEqual(wrong.status, 65, wrong.stderr)
        XCTAssertTrue(wrong.stderr.contains("not an adversarial set"), wrong.stderr)
        XCTAssertEqual(wrong.stderr.split(separator: "\n").count, 1, "one line: \(wrong.stderr)")

        let figures = try FileManager.default.contentsOfDirectory(atPath: report.path).filter { $0.hasSuffix(".svg") }
        XCTAssertGreaterThanOrEqual(figures.count, 10, "one SVG per figure: \(figures)")
        for name in figures {
            let parser = XMLParser(data: try Data(contentsOf: report.appendingPathComponent(name)))
            XCTAssertTrue(parser.parse(), "\(name) is not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "?")")
        }
    }

    func testBadInputsGiveOneLineAndSysexitsStatus() throws {
        let dir = try TinyData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = try CommandRunner.run(
            "dafar-eval",
            [
                "--model", "/nonexistent/m.safetensors", "--detector", "/nonexistent/d",
                "--report", dir.path
            ])
        XCTAssertEqual(missing.status, 66, missing.stderr)
        XCTAssertEqual(missing.stderr.split(separator: "\n").count, 1, "one line: \(missing.stderr)")
        let unknown = try CommandRunner.run(
            "dafar-eval",
            [
                "--model", "m", "--detector", "d", "--report", dir.path,
                "--experiments", "features,fig9"
            ])
        XCTAssertEqual(unknown.status, 64, unknown.stderr)
        XCTAssertTrue(unknown.stderr.contains("fig9"), unknown.stderr)
        let file = dir.appendingPathComponent("x.safetensors")
        try Data("not a safetensors file".utf8).write(to: file)
        let reportIsAFile = try CommandRunner.run("dafar-eval", ["--model", file.path, "--detector", file.path, "--report", file.path])
        XCTAssertEqual(reportIsAFile.status, 73, reportIsAFile.stderr)
    }
}
