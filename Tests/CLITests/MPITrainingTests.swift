import Foundation
import XCTest

/// Data-parallel `dafar-train` and `dafar-detector` and the sharded `dafar-eval` under
/// `mpirun -np 2 --oversubscribe`, against one process with the same seed and `--threads 1`.
///
/// With gradient groups (the default) the ranks share out each batch's groups and sum their
/// gradients exactly, so 2 ranks must write the very weights one process writes. With
/// `--gradient-group-size 0` each rank computes its half of the batch and a Float all-reduce sums
/// the halves, while one process sums the whole batch in one GEMM: the float sums differ in order.
/// With plain SGD the weights then differ in their last bits (measured: 4.0e-9 of the largest weight
/// after 6 steps; allowed: `sgdTolerance`), which also shows that the summed gradients are the whole
/// batch's: a wrong share or a wrong part would move them by far more.
final class MPITrainingTests: XCTestCase {
    static let sgdTolerance: Float = 1e-6

    /// A small file in MNIST-5k's format (`mnist_5k.csv`: 784 pixels then the label, no header,
    /// sorted by label): `perDigit` rows per digit, a class-specific bright block plus noise.
    static func writeMNIST5k(to directory: URL, perDigit: Int, seed: UInt64 = 3) throws {
        var state = seed
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 56)
        }
        var text = ""
        for digit in 0..<10 {
            let (r, c) = (3 + (digit / 5) * 12, 2 + (digit % 5) * 5)
            for _ in 0..<perDigit {
                var fields: [String] = []
                fields.reserveCapacity(785)
                for y in 0..<28 {
                    for x in 0..<28 {
                        let inside = y >= r && y < r + 8 && x >= c && x < c + 4
                        fields.append(String(inside ? 150 + next() % 106 : next() % 60))
                    }
                }
                fields.append(String(digit))
                text += fields.joined(separator: ",") + "\n"
            }
        }
        try Data(text.utf8).write(to: directory.appendingPathComponent("mnist_5k.csv"))
    }

    /// Every tensor of a safetensors file as Floats (F32 only), by name.
    func floats(_ path: String) throws -> [String: [Float]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = Int(data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try XCTUnwrap(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        var result: [String: [Float]] = [:]
        for (name, value) in header where name != "__metadata__" {
            let entry = try XCTUnwrap(value as? [String: Any])
            guard entry["dtype"] as? String == "F32" else { continue }
            let offsets = try XCTUnwrap(entry["data_offsets"] as? [Int])
            let bytes = data.subdata(in: (8 + headerLength + offsets[0])..<(8 + headerLength + offsets[1]))
            result[name] = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return result
    }

    func metadata(_ path: String) throws -> [String: String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = Int(data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any]
        return try XCTUnwrap(header?["__metadata__"] as? [String: String])
    }

    /// The largest |a - b| over every tensor, divided by the largest |a| (fails on different names or sizes).
    func relativeDifference(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws -> Float {
        let x = try floats(a), y = try floats(b)
        XCTAssertEqual(Set(x.keys), Set(y.keys), "the files hold different tensors", file: file, line: line)
        var largest: Float = 0, difference: Float = 0
        for (name, values) in x {
            let other = try XCTUnwrap(y[name])
            XCTAssertEqual(values.count, other.count, name, file: file, line: line)
            for (u, v) in zip(values, other) {
                largest = max(largest, abs(u))
                difference = max(difference, abs(u - v))
            }
        }
        return difference / max(largest, .leastNormalMagnitude)
    }

    func assertSucceeded(
        _ job: (status: Int32, output: String, timedOut: Bool), _ what: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertFalse(job.timedOut, "\(what): mpirun did not finish in time: \(job.output)", file: file, line: line)
        XCTAssertEqual(job.status, 0, "\(what): \(job.output)", file: file, line: line)
    }

    func testDataParallelTrainingMatchesOneProcessAndResumesOnAnotherRankCount() throws {
        let dir = try TinyData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.writeMNIST5k(to: dir, perDigit: 20)  // 160 train (144 after the 10 % hold-out), 40 test
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        // batch 40 in groups of 16: 3 groups of 13-14 images (rank 0 computes one, rank 1 two), and a
        // last batch of 24 in 2 groups of 12 (one per rank)
        let common = [
            "--dataset", "mnist5k", "--data-dir", dir.path, "--threads", "1", "--quiet", "--seed", "5",
            "--batch-size", "40", "--lr-schedule", "constant", "--shift", "1", "--gradient-group-size", "16"
        ]

        let single = try CommandRunner.run("dafar-train", common + ["--epochs", "2", "--output", path("one.safetensors")])
        XCTAssertEqual(single.status, 0, single.stderr)
        let first = try MPIJob.run("dafar-train", common + ["--epochs", "2", "--output", path("two-a.safetensors")], timeout: 300)
        assertSucceeded(first, "mpirun -np 2 dafar-train")
        XCTAssertEqual(first.output.components(separatedBy: "model written to").count - 1, 1, "only rank 0 prints: \(first.output)")
        XCTAssertTrue(first.output.contains("(trained on 2 ranks)"), first.output)
        let second = try MPIJob.run("dafar-train", common + ["--epochs", "2", "--output", path("two-b.safetensors")], timeout: 300)
        assertSucceeded(second, "the second mpirun -np 2 dafar-train")

        // two runs on 2 ranks: the same bytes (model and checkpoint; the names in the metadata do not differ)
        for suffix in ["", ".checkpoint"] {
            XCTAssertEqual(
                try Data(contentsOf: URL(fileURLWithPath: path("two-a.safetensors") + suffix)),
                try Data(contentsOf: URL(fileURLWithPath: path("two-b.safetensors") + suffix)),
                "two -np 2 runs with the same seed must write identical files (\(suffix.isEmpty ? "model" : "checkpoint"))")
        }
        // 2 ranks against one process: the same weights, bit for bit, so the same accuracy
        let weights = try floats(path("one.safetensors"))
        XCTAssertGreaterThan(weights.count, 10, "the model file holds the network's tensors")
        XCTAssertTrue(weights == (try floats(path("two-a.safetensors"))), "2 ranks must train the weights one process trains")
        let accuracy = (
            one: try metadata(path("one.safetensors"))["test_accuracy"], two: try metadata(path("two-a.safetensors"))["test_accuracy"]
        )
        XCTAssertEqual(accuracy.one, accuracy.two)
        XCTAssertGreaterThan(Double(accuracy.one ?? "") ?? 0, 0.5, "the network must learn the tiny task, or the comparison shows little")
        XCTAssertEqual(try metadata(path("two-a.safetensors"))["ranks"], "2")
        XCTAssertEqual(try metadata(path("two-a.safetensors"))["gradient_group_size"], "16")
        // one process with 2 threads: the same weights again (3 groups of a batch of 40 run one after
        // the other with their kernels on both threads, the 2 groups of the last batch side by side)
        var threads = common
        threads[threads.firstIndex(of: "--threads")! + 1] = "2"
        let twoThreads = try CommandRunner.run("dafar-train", threads + ["--epochs", "2", "--output", path("threads.safetensors")])
        XCTAssertEqual(twoThreads.status, 0, twoThreads.stderr)
        XCTAssertTrue(weights == (try floats(path("threads.safetensors"))), "--threads 2 must train the weights --threads 1 trains")

        // one epoch alone, then --resume on 2 ranks to epoch 2 (constant rate: the same run as above)
        let half = try CommandRunner.run("dafar-train", common + ["--epochs", "1", "--output", path("resumed.safetensors")])
        XCTAssertEqual(half.status, 0, half.stderr)
        let resumed = try MPIJob.run(
            "dafar-train", common + ["--epochs", "2", "--resume", "--output", path("resumed.safetensors")], timeout: 300)
        assertSucceeded(resumed, "mpirun -np 2 dafar-train --resume")
        XCTAssertTrue(
            weights == (try floats(path("resumed.safetensors"))),
            "1 epoch on 1 process + 1 epoch on 2 ranks must equal 2 epochs on 1 process")

        // the detector, data-parallel (default groups of 32: a batch of 40 makes 2 groups of 20, one per
        // rank): 2 ranks against one process, and two 2-rank runs
        let detector =
            common.prefix(6) + [
                "--seed", "2", "--model", path("one.safetensors"), "--epochs", "3", "--batch-size", "40",
                "--hidden-sizes", "32,16"
            ]
        let d1 = try CommandRunner.run("dafar-detector", Array(detector) + ["--output", path("d1.safetensors")])
        XCTAssertEqual(d1.status, 0, d1.stderr)
        for name in ["d2a", "d2b"] {
            assertSucceeded(
                try MPIJob.run("dafar-detector", Array(detector) + ["--output", path("\(name).safetensors")], timeout: 300),
                "mpirun -np 2 dafar-detector")
        }
        XCTAssertEqual(try floats(path("d2a.safetensors")), try floats(path("d2b.safetensors")), "two -np 2 detector runs differ")
        XCTAssertEqual(
            try floats(path("d1.safetensors")), try floats(path("d2a.safetensors")), "the detector of 2 ranks differs from one process's")
        // one group per batch: rank 1 computes nothing and still takes part in every exchange
        let oneGroup = Array(detector) + ["--batch-size", "16", "--epochs", "1"]
        XCTAssertEqual(try CommandRunner.run("dafar-detector", oneGroup + ["--output", path("d1-small.safetensors")]).status, 0)
        let idle = try MPIJob.run("dafar-detector", oneGroup + ["--output", path("d2-small.safetensors")], timeout: 300)
        assertSucceeded(idle, "mpirun -np 2 dafar-detector with one gradient group per batch")
        XCTAssertTrue(idle.output.contains("a batch of 16 makes 1 gradient group for 2 ranks, so 1 rank waits"), idle.output)
        XCTAssertEqual(try floats(path("d1-small.safetensors")), try floats(path("d2-small.safetensors")))

        // without groups, plain SGD shows the summed Float gradients themselves: equal up to the last bits
        let sgd =
            common + ["--epochs", "1", "--optimizer", "sgd", "--momentum", "0", "--learning-rate", "0.05", "--gradient-group-size", "0"]
        XCTAssertEqual(try CommandRunner.run("dafar-train", sgd + ["--output", path("sgd-1.safetensors")]).status, 0)
        assertSucceeded(try MPIJob.run("dafar-train", sgd + ["--output", path("sgd-2.safetensors")], timeout: 300), "SGD on 2 ranks")
        let sgdDifference = try relativeDifference(path("sgd-1.safetensors"), path("sgd-2.safetensors"))
        print("MPITrainingTests: SGD without groups, 1 process vs 2 ranks, relative difference = \(sgdDifference)")
        XCTAssertLessThanOrEqual(sgdDifference, Self.sgdTolerance, "SGD on 2 ranks must match one process up to float rounding")
        XCTAssertNotEqual(try floats(path("sgd-1.safetensors")), try floats(path("one.safetensors")), "SGD trained something else")
    }

    func testBadFilesStopEveryRankOfATrainingJobWithOneLine() throws {
        let dir = try TinyData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty")
        let broken = dir.appendingPathComponent("broken")
        for folder in [empty, broken] { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) }
        try Data("1,2,3\nnot,a,csv\n".utf8).write(to: broken.appendingPathComponent("mnist_5k.csv"))
        let garbage = dir.appendingPathComponent("garbage.safetensors").path
        try Data("not a model at all".utf8).write(to: URL(fileURLWithPath: garbage))
        let output = dir.appendingPathComponent("out.safetensors").path
        let cases: [(String, [String], Int32)] = [
            ("dafar-train", ["--data-dir", broken.path, "--output", output], 65),
            ("dafar-train", ["--data-dir", empty.path, "--output", output], 66),
            ("dafar-detector", ["--data-dir", broken.path, "--model", garbage, "--output", output], 65),
            ("dafar-detector", ["--data-dir", broken.path, "--model", dir.appendingPathComponent("none").path, "--output", output], 66)
        ]
        for (tool, arguments, status) in cases {
            let start = Date()
            let job = try MPIJob.run(tool, ["--dataset", "mnist5k", "--threads", "1", "--quiet", "--epochs", "1"] + arguments, timeout: 60)
            XCTAssertFalse(job.timedOut, "\(tool) hung: \(job.output)")
            XCTAssertLessThan(Date().timeIntervalSince(start), 30, "\(tool) took too long to stop")
            XCTAssertEqual(job.status, status, "\(tool) \(arguments): \(job.output)")
            let errors = job.output.split(separator: "\n").filter { $0.hasPrefix("error:") }
            XCTAssertEqual(errors.count, 1, "one error line, from one rank: \(job.output)")
            XCTAssertTrue(MPIJob.processes(containing: dir.path).isEmpty, "a rank outlived mpirun")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output))
        }
    }

    /// Ctrl-C on a cluster: srun forwards SIGINT to the ranks, and a terminal sends it to the whole
    /// process group. Here only rank 1 gets it, mid-epoch: the ranks agree (the stop flag travels with
    /// the step's exchange) to stop after the same step, rank 0 writes the checkpoint, every rank exits
    /// 130; resumed on 2 ranks, the run ends with the weights of an uninterrupted one-process run.
    func testSIGINTOnOneRankStopsEveryRankAtTheSameStepAndTheRunResumes() throws {
        let dir = try TinyData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.writeMNIST5k(to: dir, perDigit: 60)  // 540 training images: 34 steps of 16 per epoch
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        let common = [
            "--dataset", "mnist5k", "--data-dir", dir.path, "--threads", "1", "--seed", "4", "--batch-size", "16",
            "--gradient-group-size", "8", "--epochs", "3", "--lr-schedule", "constant"
        ]
        let reference = try CommandRunner.run("dafar-train", common + ["--quiet", "--output", path("reference.safetensors")])
        XCTAssertEqual(reference.status, 0, reference.stderr)

        let output = path("model.safetensors")
        let job = try MPIJob(ranks: 2, tool: "dafar-train", common + ["--output", output])
        // after the first epoch's checkpoint, a little into the second epoch
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: output + ".checkpoint") && job.process.isRunning && Date() < deadline {
            usleep(20_000)
        }
        usleep(300_000)
        let ranks = MPIJob.processes(containing: dir.path)
        XCTAssertEqual(ranks.count, 2, "two ranks running: \(ranks)")
        guard let second = ranks.first(where: { $0.rank == 1 }) else { return XCTFail("rank 1 not found: \(ranks)") }
        kill(second.pid, SIGINT)
        let result = job.wait(timeout: 60)
        XCTAssertFalse(result.timedOut, "the ranks did not stop: \(result.output)")
        XCTAssertEqual(result.status, 130, result.output)
        let lines = result.output.split(separator: "\n").filter { $0.contains("interrupted: checkpoint written to") }
        XCTAssertEqual(lines.count, 1, "rank 0 reports once: \(result.output)")
        XCTAssertTrue(lines.first?.contains("(epoch 2, step ") ?? false, result.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "an interrupted run must not write the model")
        XCTAssertTrue(MPIJob.processes(containing: dir.path).isEmpty, "a rank outlived mpirun")

        let resumed = try MPIJob.run("dafar-train", common + ["--quiet", "--resume", "--output", output], timeout: 300)
        assertSucceeded(resumed, "mpirun -np 2 dafar-train --resume after SIGINT")
        XCTAssertTrue(
            try floats(output) == (try floats(path("reference.safetensors"))), "interrupted and resumed on 2 ranks vs one process")
    }

    /// `results.json` without what may differ between runs on 1 and 2 ranks: the wall-clock fields
    /// (`timings`, the phase/seconds table, "generated in N s" cells) and the `ranks` setting.
    func comparableResults(_ report: URL) throws -> Any {
        func strip(_ value: Any) -> Any? {
            if let object = value as? [String: Any] {
                if let columns = object["columns"] as? [String], columns.contains("seconds") { return nil }
                var kept: [String: Any] = [:]
                for (key, inner) in object where !(key == "timings" || key == "ranks") { kept[key] = strip(inner) }
                return kept
            }
            if let array = value as? [Any] {
                if array.first as? String == "ranks" { return nil }
                return array.compactMap(strip)
            }
            if let text = value as? String, text.hasPrefix("generated in "), text.hasSuffix(" s") { return "generated" }
            return value
        }
        return strip(try JSONSerialization.jsonObject(with: Data(contentsOf: report.appendingPathComponent("results.json")))) ?? [:]
    }

    func testShardedEvalWritesTheSameNumbersAsOneProcess() throws {
        let dir = try TinyData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (data, model) = try TinyData.trainedModel(in: dir, trainCount: 100, testCount: 30, epochs: 2, batchSize: 15)
        let detector = dir.appendingPathComponent("d.safetensors").path
        XCTAssertEqual(
            try CommandRunner.run(
                "dafar-detector",
                data + [
                    "--model", model, "--epochs", "1", "--hidden-sizes", "16,8",
                    "--output", detector
                ]
            ).status, 0)
        // batches of 3: PGD on 8 images is 3 batches (rank 0 one, rank 1 two), CW-L2, JSMA and the adaptive runs 1-2 batches
        let tiny = [
            "--count", "8", "--epsilons", "0.1,0.3", "--pgd-steps", "2", "--slow-count", "4", "--cw-steps", "3",
            "--cw-binary-steps", "1", "--adaptive-count", "4", "--adaptive-steps", "2", "--adaptive-lambdas", "0,1",
            "--adaptive-eps", "0.3", "--baseline-epochs", "1", "--binary-training-count", "10", "--batch-size", "3", "--seed", "4"
        ]
        let one = dir.appendingPathComponent("report-1"), two = dir.appendingPathComponent("report-2")
        let single = try CommandRunner.run("dafar-eval", data + tiny + ["--model", model, "--detector", detector, "--report", one.path])
        XCTAssertEqual(single.status, 0, single.stderr)
        let sharded = try MPIJob.run(
            "dafar-eval", data + tiny + ["--model", model, "--detector", detector, "--report", two.path], timeout: 300)
        assertSucceeded(sharded, "mpirun -np 2 dafar-eval")
        XCTAssertEqual(sharded.output.components(separatedBy: "report written to").count - 1, 1, "only rank 0 prints: \(sharded.output)")
        func text(_ value: Any) throws -> [Substring] {
            String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self)
                .split(separator: "\n")
        }
        let a = try text(comparableResults(one)), b = try text(comparableResults(two))
        XCTAssertGreaterThan(a.count, 100, "results.json holds the evaluation's numbers")
        let firstDifference = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }
        XCTAssertNil(
            firstDifference,
            "results.json of 2 ranks differs from one process's (timings left out): line \(firstDifference?.offset ?? -1): "
                + "\(firstDifference.map { "\($0.element.0) vs \($0.element.1)" } ?? "")")
        XCTAssertEqual(a.count, b.count, "results.json of 2 ranks has another length")
        let markdown = try String(contentsOf: two.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("| ranks | 2 |"), "the report says how it ran")
    }
}
