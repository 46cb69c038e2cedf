import Foundation
import XCTest

/// dafar-eval against bad input: adversarial sets whose shapes do not fit, files that are not
/// there or are folders, a detector made for another model. The report folder already holds a
/// report, which a failing run must leave as it was. dafar-eval is a dependency of this
/// test target, so it is always built.
final class BadInputEvalTests: BadInputTestCase {
    func testAdversarialSetsAndFilesThatDoNotFit() throws {
        XCTAssertTrue(
            FileManager.default.isExecutableFile(atPath: CommandRunner.productsDirectory.appendingPathComponent("dafar-eval").path),
            "dafar-eval must be built with the tests")
        let f = try files
        let folder = f.folder.appendingPathComponent("eval")
        let report = folder.appendingPathComponent("report")
        try FileManager.default.createDirectory(at: report, withIntermediateDirectories: true)
        let previous = report.appendingPathComponent("report.md").path
        try Data("a previous report".utf8).write(to: URL(fileURLWithPath: previous))
        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

        // Sets in dafar-attack's format: 2 x 2 images for a 28 x 28 model, and x_adv of another shape than x.
        let small = path("small-images.safetensors"), mismatched = path("mismatched.safetensors"), truncated = path("truncated.safetensors")
        try Self.adversarialSet(imageShape: [1, 2, 2], adversarialShape: [1, 2, 2]).write(to: URL(fileURLWithPath: small))
        try Self.adversarialSet(imageShape: [1, 28, 28], adversarialShape: [1, 28, 27]).write(to: URL(fileURLWithPath: mismatched))
        try Self.adversarialSet(imageShape: [1, 28, 28], adversarialShape: [1, 28, 28]).dropLast(100).write(
            to: URL(fileURLWithPath: truncated))

        let eval =
            f.data + ["--model", f.model, "--detector", f.detector, "--report", report.path, "--count", "10", "--experiments", "attacks"]
        let cases: [([String], Int32, [String])] = [
            (eval + ["--adversarial", small], 65, ["holds [1, 2, 2] images but the model reads [1, 28, 28]"]),
            (eval + ["--adversarial", mismatched], 65, ["'x' has shape [1, 1, 28, 28] but 'x_adv' has shape [1, 1, 28, 27]"]),
            (eval + ["--adversarial", truncated], 65, [truncated]),
            (eval + ["--adversarial", folder.path], 66, ["is a folder"]),
            (eval + ["--adversarial", path("missing.safetensors")], 66, ["missing.safetensors", "does not exist"]),
            (f.data + ["--model", f.otherModel, "--detector", f.detector, "--report", report.path], 65, ["trained for another model"]),
            (f.data + ["--model", f.model, "--detector", path("missing-detector"), "--report", report.path], 66, ["missing-detector"])
        ]
        for (arguments, status, fragments) in cases {
            try expectFailure("dafar-eval", arguments, status: status, fragments, alsoUnchanged: [previous])
        }
    }

    /// A set in dafar-attack's safetensors layout with one image of each shape.
    static func adversarialSet(imageShape: [Int], adversarialShape: [Int]) -> Data {
        var data = Data()
        var entries: [String] = []
        func add(_ name: String, _ dtype: String, _ shape: [Int], _ bytes: Data) {
            entries.append(
                #""\#(name)":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":[\#(data.count),\#(data.count + bytes.count)]}"#)
            data += bytes
        }
        func halves(_ count: Int) -> Data {
            Data([UInt8](repeating: 0, count: 4 * count).enumerated().map { $0.offset % 4 == 3 ? 0x3F : 0 })
        }
        let one = Data([1, 0, 0, 0, 0, 0, 0, 0])
        add("pred_adv", "I64", [1], one)
        add("pred_clean", "I64", [1], one)
        add("success", "U8", [1], Data([1]))
        add("x", "F32", [1] + imageShape, halves(imageShape.reduce(1, *)))
        add("x_adv", "F32", [1] + adversarialShape, halves(adversarialShape.reduce(1, *)))
        add("y", "I64", [1], one)
        let metadata =
            #""__metadata__":{"format":"dafar-adversarial-set","format_version":"1","attack":"FGSM","attack_kind":"fgsm","dataset":"mnist","split":"test","seed":"0"}"#
        let header = "{" + ([metadata] + entries).joined(separator: ",") + "}"
        return BadInputContentTests.safetensors(header: header, data: 0) + data
    }
}
