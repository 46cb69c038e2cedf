import XCTest
#if canImport(FoundationXML)
    import FoundationXML
#endif
@testable import Reporting
import Evaluation

final class ReportTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("evaluation-report-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func detectionTable() -> ReportTable {
        var table = ReportTable(columns: ["detector", "TPR @ 5 % FPR", "AUC", "n"])
        table.addRow(["DAFAR", .rate(Rate(973, of: 1000)), .number(0.99123, decimals: 3), .integer(1000)])
        table.addRow(["MagNet | v2", .rate(Rate(0, of: 0)), .number(.nan, decimals: 3), .integer(0)])
        return table
    }

    func testMarkdownTableFormat() {
        XCTAssertEqual(
            detectionTable().markdown(),
            """
            | detector | TPR @ 5 % FPR | AUC | n |
            | --- | ---: | ---: | ---: |
            | DAFAR | 97.3 % (973/1000) | 0.991 | 1000 |
            | MagNet \\| v2 | n/a (0/0) | n/a | 0 |

            """)
    }

    func testPlainTextTableIsAligned() {
        let lines = detectionTable().plainText().split(separator: "\n").map(String.init)
        XCTAssertEqual(
            lines,
            [
                "detector         TPR @ 5 % FPR    AUC     n",
                "-----------  -----------------  -----  ----",
                "DAFAR        97.3 % (973/1000)  0.991  1000",
                "MagNet | v2          n/a (0/0)    n/a     0"
            ].map { $0 })
    }

    private func sampleReport() throws -> Report {
        var report = Report(title: "DAFAR on MNIST-5k")
        let curve = try XCTUnwrap(ROCCurve(cleanScores: [1.0, 2, 3], adversarialScores: [2.0, 3, 4]))
        report.results["clean_accuracy"] = Rate(990, of: 1000).json
        report.results["roc"] = ["dafar": curve.json]
        report.addSection("Detection") { section in
            section.addParagraph("Thresholds fixed on held-out clean data.")
            section.addTable(detectionTable())
            section.addFigure(
                LineChart.roc(title: "ROC", curves: [(name: "DAFAR", curve: curve)]),
                fileName: "roc.svg", caption: "ROC curves [FGSM]")
            section.addFigure(
                DensityChart(
                    title: "Scores", xLabel: "score",
                    series: [DensitySeries(name: "clean", samples: [1.0, 2, 3])],
                    thresholds: [ReferenceLine(x: 2.5, label: "threshold")]),
                fileName: "scores.svg", caption: "Anomaly scores")
            section.addFigure(
                BarChart(
                    title: "Per attack", xLabel: "attack", yLabel: "rate", categories: ["FGSM"],
                    series: [BarSeries(name: "DAFAR", values: ["FGSM": BarValue(Rate(9, of: 10))])]),
                fileName: "attacks.svg", caption: "Detection per attack")
        }
        return report
    }

    func testReportWritesMarkdownJSONAndFigures() throws {
        let report = try sampleReport()
        let written = try report.write(to: directory)
        XCTAssertEqual(written.map(\.lastPathComponent), ["roc.svg", "scores.svg", "attacks.svg", "results.json", "report.md"])
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        XCTAssertEqual(
            names, ["attacks.svg", "report.md", "results.json", "roc.svg", "scores.svg"],
            "no temporary files are left behind")

        let markdown = try String(contentsOf: directory.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(markdown.hasPrefix("# DAFAR on MNIST-5k\n\n## Detection\n\nThresholds fixed"))
        XCTAssertTrue(markdown.contains("| DAFAR | 97.3 % (973/1000) | 0.991 | 1000 |"))
        XCTAssertTrue(markdown.contains("![ROC curves [FGSM\\]](roc.svg)"))

        let data = try Data(contentsOf: directory.appendingPathComponent("results.json"))
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(root["version"] as? String, ReportFormat.version)
        let results = try XCTUnwrap(root["results"] as? [String: Any])
        let accuracy = try XCTUnwrap(results["clean_accuracy"] as? [String: Any])
        XCTAssertEqual(accuracy["numerator"] as? Int, 990)
        XCTAssertEqual(accuracy["denominator"] as? Int, 1000)
        let roc = try XCTUnwrap((results["roc"] as? [String: Any])?["dafar"] as? [String: Any])
        XCTAssertEqual(try XCTUnwrap(roc["auc"] as? Double), 7.0 / 9.0, accuracy: 1e-12)
        let tables = try XCTUnwrap(root["tables"] as? [[String: Any]])
        XCTAssertEqual(tables.first?["section"] as? String, "Detection")
        XCTAssertEqual(root["figures"] as? [String], ["roc.svg", "scores.svg", "attacks.svg"])
        let text = try XCTUnwrap(String(data: data, encoding: .utf8))
        XCTAssertLessThan(
            try XCTUnwrap(text.range(of: "\"figures\"")).lowerBound,
            try XCTUnwrap(text.range(of: "\"format\"")).lowerBound, "keys are sorted")

        for name in ["roc.svg", "scores.svg", "attacks.svg"] {
            let parser = XMLParser(data: try Data(contentsOf: directory.appendingPathComponent(name)))
            XCTAssertTrue(parser.parse(), "\(name) is well-formed XML")
        }
        XCTAssertTrue(report.summary().hasPrefix("Detection\ndetector "))
    }

    func testRewritingReplacesFiles() throws {
        var report = try sampleReport()
        try report.write(to: directory)
        report.results = ["replaced": true]
        try report.write(to: directory)
        let data = try Data(contentsOf: directory.appendingPathComponent("results.json"))
        let results = try XCTUnwrap((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["results"] as? [String: Any])
        XCTAssertEqual(Array(results.keys), ["replaced"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path).count, 5)
    }

    func testInvalidFigureNamesAreRejectedWithoutWriting() throws {
        for (name, expected) in [
            ("../escape.svg", "it must not contain a path"), ("plot.png", "a figure file name must end in .svg"),
            (".hidden.svg", "it must not start with a dot")
        ] {
            var report = Report(title: "bad")
            report.addSection("s") {
                $0.addFigure(
                    BarChart(title: "b", xLabel: "x", yLabel: "y", categories: [], series: []),
                    fileName: name, caption: "c")
            }
            XCTAssertThrowsError(try report.write(to: directory), name) { error in
                XCTAssertEqual(error as? ReportError, .invalidFileName(name, reason: expected))
            }
        }
        var duplicate = Report(title: "dup")
        duplicate.addSection("s") { section in
            for _ in 0..<2 {
                section.addFigure(
                    BarChart(title: "b", xLabel: "x", yLabel: "y", categories: [], series: []),
                    fileName: "same.svg", caption: "c")
            }
        }
        XCTAssertThrowsError(try duplicate.write(to: directory)) { error in
            XCTAssertEqual(error as? ReportError, .duplicateFileName("same.svg"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path), "nothing is written for an invalid report")
    }

    func testWriteIntoAFileReportsAClearError() throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let blocker = directory.appendingPathComponent("not-a-folder")
        try Data("x".utf8).write(to: blocker)
        XCTAssertThrowsError(try Report(title: "t").write(to: blocker)) { error in
            guard case .writeFailed(let path, _)? = error as? ReportError else {
                return XCTFail("expected writeFailed, got \(error)")
            }
            XCTAssertTrue(path.hasSuffix("not-a-folder"), path)
        }
    }

    func testJSONNumbersAndNonFiniteValues() throws {
        let value: JSONValue = ["a": 0.1, "b": [1, 2.5, nil, true], "c": .number(.infinity), "d": "x/y"]
        let text = try XCTUnwrap(String(data: try value.serialized(), encoding: .utf8))
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(object["a"] as? Double, 0.1)
        XCTAssertTrue(object["c"] is NSNull, "infinity is written as null")
        XCTAssertTrue(text.contains("\"x/y\""), "slashes are not escaped")
        XCTAssertTrue(text.contains("\"a\" : 0.1,"), "shortest round-trip decimal, got \(text)")
        XCTAssertTrue(text.contains("true"), "booleans stay booleans, got \(text)")
        XCTAssertTrue(text.hasSuffix("}\n"))
    }
}
