import Foundation
import NeuralNetworks
import XCTest
@testable import ParserFuzzing

/// A short seeded fuzzing run of every parser (the long one is `make fuzz`), and the inputs
/// that once crashed a parser, kept as regressions.
final class ParserFuzzingTests: XCTestCase {
    private var scratch: URL!

    override func setUpWithError() throws { scratch = try FuzzScratch.makeFolder() }
    override func tearDown() { try? FileManager.default.removeItem(at: scratch) }

    /// Mutations per target: a few seconds in all in a debug build.
    static let iterations = 300

    func testEverySeedParses() throws {
        for target in FuzzTarget.all {
            for (index, seed) in target.seeds().enumerated() {
                let outcome = try target.run(seed, file: scratch.appendingPathComponent("seed"))
                if target.name == "model" {  // cut down on purpose: it passes the metadata and first shape checks
                    XCTAssertTrue(message(outcome).contains("no tensor named 'target.features.2.weight'"), "\(outcome)")
                    continue
                }
                guard case .parsed = outcome else {
                    return XCTFail("\(target.name) seed \(index) is rejected (\(outcome)); the fuzzer would start from a broken file")
                }
            }
        }
    }

    /// Found by fuzzing: a detector file whose metadata announced a huge input size made the
    /// reader allocate the layers before looking at the weights (a trap for 2^62, an abort for
    /// 4e12, 30 s and 400 MB for 1e8). Sizes the file's tensors cannot fill are now refused.
    func testDetectorSizesBeyondTheFileAreRefusedBeforeAllocating() throws {
        let target = FuzzTarget.named("detector")!
        let seed = try SafetensorsArchive(bytes: target.seeds()[0])
        for (key, value) in [
            ("input_size", "9223372036854775807"), ("input_size", "4000000000000"), ("input_size", "100000000"),
            ("hidden_sizes", "65536,65536"), ("hidden_sizes", String(repeating: "3,", count: 5000) + "2")
        ] {
            var archive = seed
            archive.metadata[key] = value
            let started = Date()
            let outcome = try target.run(archive.encoded(), file: scratch.appendingPathComponent("detector"))
            XCTAssertTrue(message(outcome).contains("need more weights than the file's 48"), "\(key) = \(value.prefix(20)): \(outcome)")
            XCTAssertLessThan(message(outcome).count, 300, "the message names the sizes briefly")
            XCTAssertLessThan(Date().timeIntervalSince(started), 1, "\(key) = \(value.prefix(20)) took too long")
        }
    }

    /// dafar-serve's JSON bodies: every seed layout gives `[N, 1, 2, 3]` images, and the mutation
    /// loop's typical breakages are refused with a sentence that says where.
    func testPixelsJSONSeedsParseAndBrokenBodiesAreRefusedWithAPosition() throws {
        let target = FuzzTarget.named("pixels-json")!
        let file = scratch.appendingPathComponent("pixels-json")
        XCTAssertEqual(
            try target.seeds().map { try target.run($0, file: file) },
            [
                .parsed("pixels-json [1, 1, 2, 3]"), .parsed("pixels-json [1, 1, 2, 3]"),
                .parsed("pixels-json [2, 1, 2, 3]"), .parsed("pixels-json [1, 1, 2, 3]")
            ])
        for (body, fragment) in [
            ("{\"pixels\": [[0, 0.5, 1], [1, 0.25]]}", "ragged"), ("{\"pixels\": [[0, 0.5, 1], [1, 0.25, 0]]", "ends"),
            ("{\"pixels\": [[[[[0]]]]]}", "deeper than 4"), ("{\"pixels\": [[0, .5, 1], [1, 0.25, 0]]}", "byte 16"),
            ("{\"pixels\": [[0, 0.5, 1], [1, 0.25, 2]]}", "[0, 1]"), ("{\"pixels\": [[0, 0.5, 1]]}", "[1, 1, 3]"),
            ("{\"pixels\": [[0, 1e999, 1], [1, 0.25, 0]]}", "inf"), ("", "ends"), ("{\"pixels\": [[0,1,0],[1,0,1]]} x", "follows")
        ] {
            let outcome = try target.run(Array(body.utf8), file: file)
            XCTAssertTrue(message(outcome).contains(fragment), "\(body): \(outcome)")
        }
    }

    /// The image targets start from every layout: grey, grey + alpha, RGB, RGBA and palette PNGs
    /// (libpng expands the palette to RGB), float32 and uint8 `.npy` files and a version 2.0 header.
    func testImageTargetSeedsCoverEveryLayout() throws {
        let png = try FuzzTarget.named("png")!.seeds().map {
            try FuzzTarget.named("png")!.run($0, file: scratch.appendingPathComponent("png"))
        }
        XCTAssertEqual(
            png,
            [
                .parsed("png 5x3x1 grey true [1, 3, 3, 5]"), .parsed("png 5x3x2 grey true [1, 3, 3, 5]"),
                .parsed("png 5x3x3 grey false [1, 3, 3, 5]"), .parsed("png 5x3x4 grey false [1, 3, 3, 5]"),
                .parsed("png 4x2x3 grey false [1, 3, 2, 4]")
            ])
        let npy = try FuzzTarget.named("npy")!.seeds().map {
            try FuzzTarget.named("npy")!.run($0, file: scratch.appendingPathComponent("npy"))
        }
        XCTAssertEqual(
            npy,
            [
                .parsed("npy <f4 [2, 1, 2, 3] -> [2, 1, 2, 3]"), .parsed("npy |u1 [2, 3] -> [1, 1, 2, 3]"),
                .parsed("npy <f4 [2, 2] -> [1, 1, 2, 2]")
            ])
    }

    func testSeededMutationsEitherParseOrThrowAToolkitError() {
        for (index, target) in FuzzTarget.all.enumerated() {
            var loop = FuzzLoop(target: target, seed: 7 + UInt64(index))
            loop.hangSeconds = 2
            let (report, _) = loop.run(iterations: Self.iterations, seconds: nil, scratch: scratch)
            XCTAssertEqual(report.findings.count, 0, "\(target.name): \(report.findings.map(\.description).prefix(3))")
            XCTAssertEqual(report.slowInputs.count, 0, "\(target.name): inputs slower than 2 s: \(report.slowInputs.map(\.seconds))")
            XCTAssertGreaterThan(report.rejectedCount, Self.iterations / 4, "\(target.name): the mutations should break most inputs")
            XCTAssertGreaterThan(report.distinctOutcomes, 5, "\(target.name): the mutations reach only \(report.distinctOutcomes) outcomes")
        }
    }

    func message(_ outcome: FuzzOutcome) -> String {
        guard case .rejected(let text) = outcome else { return "parsed" }
        return text
    }

    func testSameSeedSameRun() {
        let target = FuzzTarget.named("safetensors")!
        let first = FuzzLoop(target: target, seed: 3).run(iterations: 100, seconds: nil, scratch: scratch)
        let second = FuzzLoop(target: target, seed: 3).run(iterations: 100, seconds: nil, scratch: scratch)
        XCTAssertEqual(first.corpus, second.corpus, "the mutation loop must be reproducible from its seed")
    }
}
