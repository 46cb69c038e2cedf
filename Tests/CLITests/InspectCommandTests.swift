import DAFAR
import Datasets
import Foundation
import ImageFiles
import NeuralNetworks
import Tensors
import XCTest

/// dafar-inspect end to end on the model and detector of the bad-input fixture (tiny MNIST IDX
/// data): files in every format, verdicts compared with `DAFARModel.inspect` in this process,
/// exit statuses, JSON Lines fields, the table, --threshold, --explain and bad input.
final class InspectCommandTests: BadInputTestCase {
    /// The fixture's test images `[20, 1, 28, 28]`, the library's verdicts on them and on noise.
    struct Expected {
        let dafar: DAFARModel
        let clean: Tensor
        let noise: Tensor
    }

    func expected() throws -> Expected {
        let f = try files
        Parallel.setThreadCount(1)  // as the tool's --threads 1: the same sums in the same order
        let dafar = try DAFARModel(contentsOf: URL(fileURLWithPath: f.model), detector: URL(fileURLWithPath: f.detector))
        let clean = try IDXFormat.readImages(from: Reliability.dataFolder.appendingPathComponent("t10k-images-idx3-ubyte"))
        var generator = SeededGenerator(seed: 3)
        let noise = Tensor(
            shape: [4, 1, 28, 28], storage: (0..<(4 * 784)).map { _ in Float(UInt8.random(in: 0...255, using: &generator)) / 255 })
        return Expected(dafar: dafar, clean: clean, noise: noise)
    }

    func inspect(_ arguments: [String]) throws -> (result: CommandRunner.Result, lines: [[String: Any]]) {
        let f = try files
        let result = try Reliability.run("dafar-inspect", ["--model", f.model, "--detector", f.detector, "--threads", "1"] + arguments)
        let lines = try result.stdout.split(separator: "\n").map { line -> [String: Any] in
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        }
        return (result, lines)
    }

    func folder(_ name: String) throws -> URL {
        let url = try files.folder.appendingPathComponent("inspect-\(name)-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Asserts that JSON lines carry exactly the library's verdicts on `images` at the active threshold.
    func assertSameVerdicts(_ lines: [[String: Any]], _ images: Tensor, _ dafar: DAFARModel, file: String, line: UInt = #line) {
        let verdicts = dafar.inspect(images)
        let logits = dafar.logits(images)
        XCTAssertEqual(lines.count, verdicts.count, "one line per image", line: line)
        for (i, (json, verdict)) in zip(lines, verdicts).enumerated() {
            XCTAssertEqual(
                Set(json.keys), ["file", "index", "predicted_class", "probability", "score", "threshold", "adversarial"], line: line)
            XCTAssertEqual(json["file"] as? String, file, line: line)
            XCTAssertEqual(json["index"] as? Int, i, line: line)
            XCTAssertEqual(json["predicted_class"] as? Int, verdict.predictedClass, "image \(i)", line: line)
            XCTAssertEqual(json["adversarial"] as? Bool, verdict.isAdversarial, "image \(i)", line: line)
            XCTAssertEqual(
                Float((json["score"] as? Double) ?? -1), verdict.score, "image \(i): the score, bit for bit (same thread count)", line: line
            )
            XCTAssertEqual(Float((json["threshold"] as? Double) ?? -1), dafar.threshold!, line: line)
            let row = logits.storage[(i * 10)..<((i + 1) * 10)].map(Double.init)
            let expected = exp(row[verdict.predictedClass] - row.max()!) / row.reduce(0) { $0 + exp($1 - row.max()!) }
            XCTAssertEqual((json["probability"] as? Double) ?? -1, expected, accuracy: 1e-6, "image \(i): softmax at the class", line: line)
        }
    }

    func testEveryFormatGivesTheLibrarysVerdictsAndTheExitStatusSaysIfAnyIsFlagged() throws {
        let e = try expected()
        let dir = try folder("formats")
        let verdicts = e.dafar.inspect(e.clean)
        let noiseVerdicts = e.dafar.inspect(e.noise)
        XCTAssertTrue(
            noiseVerdicts.allSatisfy(\.isAdversarial),
            "the fixture's detector flags uniform noise: \(noiseVerdicts.map(\.score)) vs \(e.dafar.threshold!)")

        // One PNG per clean image that the library does not flag: exit 0.
        let unflagged = verdicts.indices.filter { !verdicts[$0].isAdversarial }
        XCTAssertGreaterThan(unflagged.count, 5, "most clean test images are not flagged")
        let pngs = try unflagged.prefix(6).map { i -> String in
            let url = dir.appendingPathComponent("digit\(i).png")
            try PNGFormat.write(PixelImage(tensor: e.clean.slice(i..<(i + 1)).reshaped([1, 28, 28])), to: url)
            return url.path
        }
        let clean = try inspect(pngs)
        XCTAssertEqual(clean.result.status, 0, clean.result.stderr)
        for (k, (path, i)) in zip(pngs, unflagged.prefix(6)).enumerated() {
            assertSameVerdicts([clean.lines[k]], e.clean.slice(i..<(i + 1)), e.dafar, file: path)
        }

        // .npy (float32 [N, H, W]), safetensors x_adv and the IDX file itself, with noise: exit 1.
        let npy = dir.appendingPathComponent("noise.npy")
        try Data(NPYFormat.encode(.float32(shape: [4, 28, 28], values: e.noise.storage))).write(to: npy)
        let set = dir.appendingPathComponent("set.safetensors")
        try SafetensorsArchive(tensors: ["x": .float32(e.clean), "x_adv": .float32(e.noise)]).write(to: set)
        let idx = Reliability.dataFolder.appendingPathComponent("t10k-images-idx3-ubyte").path
        let mixed = try inspect([npy.path, set.path, idx])
        XCTAssertEqual(mixed.result.status, 1, "noise is flagged, so the status is 1 (as grep): \(mixed.result.stderr)")
        XCTAssertEqual(mixed.result.stderr, "")
        XCTAssertEqual(mixed.lines.count, 4 + 4 + 20)
        assertSameVerdicts(Array(mixed.lines[0..<4]), e.noise, e.dafar, file: npy.path)
        assertSameVerdicts(Array(mixed.lines[4..<8]), e.noise, e.dafar, file: set.path)
        assertSameVerdicts(Array(mixed.lines[8...]), e.clean, e.dafar, file: idx)

        // uint8 .npy [N, C, H, W] and --tensor x.
        let bytes = dir.appendingPathComponent("clean-u8.npy")
        try Data(NPYFormat.encode(.uint8(shape: [20, 1, 28, 28], values: e.clean.storage.map { UInt8(($0 * 255).rounded()) }))).write(
            to: bytes)
        let u8 = try inspect([bytes.path])
        assertSameVerdicts(u8.lines, e.clean, e.dafar, file: bytes.path)
        XCTAssertEqual(u8.result.status, verdicts.contains(where: \.isAdversarial) ? 1 : 0)
        let x = try inspect(["--tensor", "x", set.path])
        assertSameVerdicts(x.lines, e.clean, e.dafar, file: set.path)
    }

    func testAnAdversarialSetWrittenByDafarAttack() throws {
        let f = try files, e = try expected()
        let set = try folder("attack").appendingPathComponent("fgsm.safetensors").path
        let attack = try Reliability.run(
            "dafar-attack", f.data + ["--model", f.model, "--attack", "fgsm", "--eps", "0.3", "--count", "8", "--output", set])
        XCTAssertEqual(attack.status, 0, attack.stderr)
        let run = try inspect([set])
        let adversarial = try SafetensorsArchive(contentsOf: URL(fileURLWithPath: set)).float32("x_adv")
        assertSameVerdicts(run.lines, adversarial, e.dafar, file: set)
        XCTAssertEqual(run.result.status, e.dafar.inspect(adversarial).contains(where: \.isAdversarial) ? 1 : 0)
    }

    func testThresholdChoicesTableAndExplain() throws {
        let e = try expected()
        let dir = try folder("explain")
        let npy = dir.appendingPathComponent("mixed.npy")
        let images = Tensor.concatenate([e.clean.slice(0..<3), e.noise.slice(0..<2)])
        try Data(NPYFormat.encode(.float32(shape: [5, 1, 28, 28], values: images.storage))).write(to: npy)
        let calibration = e.dafar.detector!.calibration!
        let scores = e.dafar.inspect(images).map(\.score)
        for (choice, value) in [
            ("alpha", calibration.alpha), ("1%", calibration.thresholdsAtRate[0.01]!),
            ("5%", calibration.thresholdsAtRate[0.05]!), ("0", 0), ("1e9", 1e9)
        ] {
            let run = try inspect(["--threshold", choice, npy.path])
            XCTAssertEqual(run.lines.map { Float(($0["threshold"] as? Double) ?? -1) }, [Float](repeating: value, count: 5), choice)
            XCTAssertEqual(run.lines.map { $0["adversarial"] as? Bool }, scores.map { $0 > value }, choice)
            XCTAssertEqual(run.result.status, scores.contains { $0 > value } ? 1 : 0, choice)
        }

        let table = try Reliability.run(
            "dafar-inspect",
            [
                "--model", try files.model, "--detector", try files.detector, "--threads", "1",
                "--format", "table", "--explain", dir.appendingPathComponent("strips").path, npy.path
            ])
        XCTAssertEqual(table.status, 1, table.stderr)
        let rows = table.stdout.split(separator: "\n").map(String.init)
        let flagged = e.dafar.inspect(images).indices.filter { e.dafar.inspect(images)[$0].isAdversarial }
        XCTAssertEqual(rows.count, 1 + 5 + 1, table.stdout)
        XCTAssertTrue(rows[0].hasPrefix("file") && rows[0].hasSuffix("verdict"), rows[0])
        XCTAssertEqual(rows.dropFirst().prefix(5).filter { $0.hasSuffix("ADVERSARIAL") }.count, flagged.count, table.stdout)
        XCTAssertEqual(rows.last, "\(flagged.count) of 5 images flagged as adversarial (residual score)")

        let strips = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("strips").path).sorted()
        XCTAssertEqual(strips, flagged.map { "mixed.npy-\($0).png" }.sorted(), "one strip per flagged image")
        let strip = try PNGFormat.decode([UInt8](Data(contentsOf: dir.appendingPathComponent("strips/mixed.npy-\(flagged[0]).png"))))
        XCTAssertEqual([strip.width, strip.height, strip.channels], [4 * 4 * 28 + 3 * 2, 4 * 28, 1], "four panels enlarged 4 times")
        let input = PixelImage(tensor: images.slice(flagged[0]..<(flagged[0] + 1)).reshaped([1, 28, 28]))
        for (y, x) in [(0, 0), (13, 9), (27, 27)] {
            XCTAssertEqual(
                strip.pixels[(4 * y + 2) * strip.width + 4 * x + 1], input.pixels[y * 28 + x], "panel 1 is the input at (\(x), \(y))")
        }
    }

    /// A detector file with the fused score (residual and decision feedback): the tool's verdicts
    /// are still exactly the library's, whose score the file defines.
    func testAFusedDetectorFileGivesTheLibrarysFusedVerdicts() throws {
        let f = try files, e = try expected()
        let dir = try folder("fused")
        let fused = dir.appendingPathComponent("fused.safetensors").path
        let train = try Reliability.run(
            "dafar-detector",
            f.data + [
                "--model", f.model, "--epochs", "1", "--hidden-sizes", "16,8",
                "--score", "fused", "--threshold", "fpr5", "--output", fused
            ])
        XCTAssertEqual(train.status, 0, train.stderr)
        let dafar = try DAFARModel(contentsOf: URL(fileURLWithPath: f.model), detector: URL(fileURLWithPath: fused))
        XCTAssertEqual(dafar.detector!.scoreDefinition.kind, .fused)
        let npy = dir.appendingPathComponent("mixed.npy")
        let images = Tensor.concatenate([e.clean, e.noise])
        try Data(NPYFormat.encode(.float32(shape: [24, 1, 28, 28], values: images.storage))).write(to: npy)
        let run = try Reliability.run("dafar-inspect", ["--model", f.model, "--detector", fused, "--threads", "1", npy.path])
        let lines = try run.stdout.split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        assertSameVerdicts(lines, images, dafar, file: npy.path)
        let table = try Reliability.run(
            "dafar-inspect", ["--model", f.model, "--detector", fused, "--threads", "1", "--format", "table", npy.path])
        XCTAssertTrue(table.stdout.hasSuffix("images flagged as adversarial (fused score)\n"), table.stdout)
    }

    func testExplainNamesKeepFilesOfTheSameNameApart() throws {
        let e = try expected()
        let dir = try folder("names")
        let paths = try ["a", "b"].map { name -> String in
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(name), withIntermediateDirectories: true)
            let url = dir.appendingPathComponent("\(name)/noise image.npy")
            try Data(NPYFormat.encode(.float32(shape: [1, 28, 28], values: Array(e.noise.storage.prefix(784))))).write(to: url)
            return url.path
        }
        let run = try inspect(["--explain", dir.appendingPathComponent("strips").path, "--explain-scale", "1"] + paths)
        XCTAssertEqual(run.result.status, 1, run.result.stderr)
        XCTAssertEqual(run.lines.map { $0["file"] as? String }, paths)
        let strips = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("strips").path).sorted()
        XCTAssertEqual(strips, ["1-noise_image.npy-0.png", "2-noise_image.npy-0.png"])
        let strip = try PNGFormat.decode([UInt8](Data(contentsOf: dir.appendingPathComponent("strips/\(strips[0])"))))
        XCTAssertEqual([strip.width, strip.height], [4 * 28 + 3 * 2, 28], "--explain-scale 1")
    }

    func testBadInputGivesOneLineAndNothingOnStandardOutput() throws {
        let f = try files
        let dir = try folder("bad")
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        let good = path("good.png")
        try PNGFormat.write(
            PixelImage(width: 28, height: 28, channels: 1, pixels: .init(repeating: 0, count: 784)), to: URL(fileURLWithPath: good))
        let png = try Data(contentsOf: URL(fileURLWithPath: good))
        try png.prefix(png.count - 30).write(to: URL(fileURLWithPath: path("truncated.png")))
        try PNGFormat.write(
            PixelImage(width: 32, height: 32, channels: 3, pixels: .init(repeating: 9, count: 3072)),
            to: URL(fileURLWithPath: path("big.png")))
        var nan = [Float](repeating: 0, count: 784)
        nan[30] = .nan
        try Data(NPYFormat.encode(.float32(shape: [28, 28], values: nan))).write(to: URL(fileURLWithPath: path("nan.npy")))
        try Data("not a file of ours".utf8).write(to: URL(fileURLWithPath: path("explain-is-a-file")))
        let strips = path("strips")
        let base = ["--model", f.model, "--detector", f.detector, "--threads", "1"]
        let cases: [([String], Int32, [String])] = [
            ([good, path("missing.png")], 66, ["missing.png", "does not exist"]),
            ([good, path("truncated.png")], 65, ["truncated.png", "is not a readable PNG"]),
            ([path("big.png")], 65, ["is a 32 x 32 PNG ([1, 32, 32] as C, H, W) but the model reads [1, 28, 28] images"]),
            ([path("nan.npy")], 65, ["nan.npy", "has value nan at [0, 0, 1, 2]"]),
            ([dir.path], 66, ["is a folder"]),
            (["--threshold", "often", good], 64, ["--threshold must be active, alpha, 1%, 5% or a non-negative number"]),
            (["--threshold", "-1", good], 64, ["--threshold"]),
            (["--explain", path("explain-is-a-file"), good], 73, ["is a file, not a folder"]),
            (["--explain", strips, "--tensor", "nothing", path("set.safetensors")], 66, ["set.safetensors"]),
            ([], 64, ["give at least one image file"])
        ]
        for (arguments, status, fragments) in cases {
            let result = try Reliability.run("dafar-inspect", base + arguments)
            Reliability.assertCleanFailure(result, status: status, fragments, "dafar-inspect \(arguments)")
            XCTAssertEqual(result.stdout, "", "\(arguments): nothing on standard output")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: strips), "a failed run creates no --explain folder")
        let model = try inspect([good])  // and the good file alone is fine
        XCTAssertEqual(model.lines.count, 1, model.result.stderr)
    }
}
