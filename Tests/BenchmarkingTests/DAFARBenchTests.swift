import Foundation
import XCTest
@testable import Benchmarking

/// `dafar-bench --quick` runs end to end and reports every figure; no assertion on speed.
final class DAFARBenchTests: XCTestCase {
    /// The folder holding the built products (the test bundle's folder).
    var productsDirectory: URL {
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        return Bundle.main.bundleURL
    }

    func runBench(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = productsDirectory.appendingPathComponent("dafar-bench")
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testQuickJSONHasEveryFigure() throws {
        let (status, output) = try runBench(["--quick", "--json", "--threads", "2"])
        XCTAssertEqual(status, 0, "dafar-bench --quick --json failed: \(output)")
        let object = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
            "dafar-bench --json did not print a JSON object: \(output)")
        let details = try XCTUnwrap(object["details"] as? [String: Any], "no details object in \(output)")
        for key in BenchmarkSuite.keys {
            let value = try XCTUnwrap(object[key] as? Double, "figure \(key) is missing from \(output)")
            XCTAssertTrue(value.isFinite && value > 0, "figure \(key) = \(value) is not a positive number")
            let entry = try XCTUnwrap(details[key] as? [String: Any], "no details for \(key)")
            let (low, high) = (try XCTUnwrap(entry["min"] as? Double), try XCTUnwrap(entry["max"] as? Double))
            XCTAssertTrue(low <= value && value <= high, "\(key): median \(value) outside [\(low), \(high)]")
        }
        XCTAssertEqual((object["machine"] as? [String: String])?["threads"], "2", "the machine object should record --threads")
        // the joint step and PGD also as shares of the FMA peak of the same run: images/s x GFLOP per image / peak
        // the peak: the best of the FMA loop's samples at the start and the end of the run (twice the repetitions)
        let peakEntry = try XCTUnwrap(details["fp32_fma_peak_gflops"] as? [String: Any])
        let peak = try XCTUnwrap(peakEntry["max"] as? Double)
        let repetitions = try XCTUnwrap((details["joint_train_images_per_s"] as? [String: Any])?["repetitions"] as? Int)
        XCTAssertEqual(peakEntry["repetitions"] as? Int, 2 * repetitions, "the peak is measured at the start and the end")
        for key in ["joint_train_images_per_s", "pgd40_images_per_s"] {
            let entry = try XCTUnwrap(details[key] as? [String: Any], "no details for \(key)")
            let gflop = try XCTUnwrap(entry["gflop_per_image"] as? Double, "\(key) has no gflop_per_image: \(entry)")
            let share = try XCTUnwrap(entry["percent_of_fma_peak"] as? Double, "\(key) has no percent_of_fma_peak")
            let rate = try XCTUnwrap(object[key] as? Double)
            XCTAssertEqual(share, 100 * rate * gflop / peak, accuracy: 1e-9 * share, "\(key): share of the peak")
            XCTAssertEqual(entry["fma_peak_gflops"] as? Double, peak, "\(key): the peak the share divides by")
        }
        // every timed rate on two threads carries the cores' round trip before and after it
        for key in BenchmarkSuite.keys where key.contains("images_per_s") {
            let entry = try XCTUnwrap(details[key] as? [String: Any], "no details for \(key)")
            let trips = try XCTUnwrap(entry["round_trip_ns"] as? [Double], "\(key) has no round_trip_ns pair: \(entry)")
            XCTAssertEqual(trips.count, 2, "\(key): round_trip_ns should be [before, after], got \(trips)")
            XCTAssertTrue(trips.allSatisfy { $0.isFinite && $0 > 0 }, "\(key): round trips \(trips) are not positive")
            let cores = try XCTUnwrap(entry["cores"] as? String, "\(key) has no cores placement")
            XCTAssertTrue(cores == "near" || cores == "far" || cores.hasPrefix("moved"), "\(key): cores = \(cores)")
        }
    }

    func testRoundTripIsMeasuredAndClassified() {
        let trips = PeakFigures.coreRoundTripNanoseconds(warmup: 0, repetitions: 2, roundTrips: 2_000)
        XCTAssertEqual(trips.count, 2, "one value per repetition")
        // a round trip is two cache-line transfers: more than a nanosecond, less than a millisecond
        for trip in trips { XCTAssertTrue(trip > 1 && trip < 1e6, "round trip \(trip) ns is not plausible") }
        XCTAssertEqual(PeakFigures.placement(roundTripNanoseconds: 48), "near")
        XCTAssertEqual(PeakFigures.placement(roundTripNanoseconds: 290), "far")
        XCTAssertEqual(PeakFigures.placement(roundTripNanoseconds: .nan), "unknown")
        XCTAssertEqual(BenchmarkReport.placement((before: 50, after: 300)), "moved (near -> far)")
        XCTAssertEqual(BenchmarkReport.placement((before: 300, after: 310)), "far")
    }

    func testQuickTableNamesEveryFigure() throws {
        let (status, output) = try runBench(["--quick", "--threads", "1"])
        XCTAssertEqual(status, 0, "dafar-bench --quick failed: \(output)")
        for key in BenchmarkSuite.keys { XCTAssertTrue(output.contains(key), "the table lacks \(key):\n\(output)") }
    }

    func testBadThreadCountIsAUsageError() throws {
        let (status, _) = try runBench(["--threads", "0"])
        XCTAssertEqual(status, 64, "--threads 0 should be rejected with the usage status 64")
    }

    /// The GEMM work behind the %-of-peak figures, counted by hand from Table 1's MNIST network: forward
    /// E (conv 1->32 on 28x28, 32->32 on 26x26, 32->64 on 12x12, 64->64 on 10x10), F (1024->200->200->10) and
    /// D (the four transposed convolutions back to 28x28); a joint step is three times the forward but the
    /// first layer's input gradient, a PGD step twice E and F's forward.
    func testFLOPsPerImageOfTheJointAndAttackSteps() throws {
        let work = try ModelWorkloads(architecture: .mnist, batchSize: 2)
        let conv = { (outputs: Int, side: Int, patch: Int) in 2 * outputs * side * side * patch }
        let encoder = conv(32, 26, 9) + conv(32, 24, 32 * 9) + conv(64, 10, 32 * 9) + conv(64, 8, 64 * 9)
        let classifier = 2 * (1024 * 200 + 200 * 200 + 200 * 10)
        // a transposed convolution scatters each input value to outputs x 9 places
        let decoder = 2 * 9 * (8 * 8 * 64 * 64 + 10 * 10 * 64 * 32 + 24 * 24 * 32 * 32 + 26 * 26 * 32 * 1)
        let flops = LayerProfiler.flopsPerImage(work)
        XCTAssertEqual(flops.jointStep, Double(3 * (encoder + classifier + decoder) - conv(32, 26, 9)), "joint step")
        XCTAssertEqual(flops.attackStep, Double(2 * (encoder + classifier)), "PGD step")
    }

    func testFigureTakesTheMedianOfItsRepetitions() {
        let odd = Figure(key: "k", label: "l", unit: "u", samples: [3, 1, 2])
        XCTAssertEqual([odd.median, odd.minimum, odd.maximum], [2, 1, 3], "median/min/max of [3, 1, 2]")
        let even = Figure(key: "k", label: "l", unit: "u", samples: [4, 1, 2, 3])
        XCTAssertEqual(even.median, 2.5, "the median of an even count is the mean of the middle two")
    }

    func testOnlyTakesAWholeKeyAlone() {
        let all = BenchmarkSuite.keys
        XCTAssertEqual(all.filter { BenchmarkSuite.wanted($0, only: nil) }, all, "no --only: every figure")
        XCTAssertEqual(
            all.filter { BenchmarkSuite.wanted($0, only: "inference_images_per_s_batch1") }, ["inference_images_per_s_batch1"],
            "a whole key names its figure alone, not batch128 too")
        XCTAssertEqual(
            all.filter { BenchmarkSuite.wanted($0, only: "batch1") },
            ["inference_images_per_s_batch128", "inference_images_per_s_batch1"], "a part of a key takes every key containing it")
    }
}
