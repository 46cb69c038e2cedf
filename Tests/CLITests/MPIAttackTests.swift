import Foundation
import XCTest

/// `mpirun -np 2 dafar-attack`: the sharded sets equal one process's tensor for tensor, byte for
/// byte; a bad file stops every rank with one error line and its sysexits status; a killed rank ends
/// the job with a non-zero status in bounded time and leaves the earlier output file alone.
final class MPIAttackTests: XCTestCase {
    /// Every tensor of a safetensors file as raw bytes (metadata left out).
    func tensors(_ path: String) throws -> [String: Data] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = Int(data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try XCTUnwrap(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        var result: [String: Data] = [:]
        for (name, value) in header where name != "__metadata__" {
            let offsets = try XCTUnwrap((value as? [String: Any])?["data_offsets"] as? [Int])
            result[name] = data.subdata(in: (8 + headerLength + offsets[0])..<(8 + headerLength + offsets[1]))
        }
        return result
    }

    func metadata(_ path: String) throws -> [String: String] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = Int(data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any]
        return try XCTUnwrap(header?["__metadata__"] as? [String: String])
    }

    /// A tiny model good enough for CW-L2 to move images (6 epochs on 120 images).
    func trainTinyModel(in dir: URL) throws -> (data: [String], model: String) {
        try TinyData.trainedModel(in: dir, trainCount: 120, testCount: 40, epochs: 6, batchSize: 20)
    }

    func testShardedAttacksAreByteIdenticalToOneProcess() throws {
        let dir = try TinyData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (data, model) = try trainTinyModel(in: dir)
        // 30 images in batches of 10: rank 0 attacks one batch, rank 1 two
        let attacks: [(String, [String], Bool)] = [
            ("fgsm", ["--attack", "fgsm"], false),
            ("pgd", ["--attack", "pgd", "--steps", "5"], false),  // random start: per-image streams
            ("cw2", ["--attack", "cw2", "--steps", "30", "--binary-steps", "1", "--step-size", "0.05", "--initial-const", "10"], false),
            ("pgd-tcp", ["--attack", "pgd", "--steps", "3", "--restarts", "2"], true)
        ]
        for (name, options, tcp) in attacks {
            let single = dir.appendingPathComponent("\(name)-1.safetensors").path
            let sharded = dir.appendingPathComponent("\(name)-2.safetensors").path
            let common = data + ["--model", model, "--count", "30", "--batch-size", "10", "--seed", "7"] + options
            let one = try CommandRunner.run("dafar-attack", common + ["--output", single])
            XCTAssertEqual(one.status, 0, one.stderr)
            let job = try MPIJob.run("dafar-attack", common + ["--output", sharded], mpiArguments: tcp ? ["--mca", "btl", "tcp,self"] : [])
            XCTAssertFalse(job.timedOut, "\(name): mpirun did not finish within 180 s: \(job.output)")
            XCTAssertEqual(job.status, 0, "\(name): \(job.output)")
            XCTAssertEqual(
                job.output.components(separatedBy: "adversarial set written to").count - 1, 1, "only rank 0 prints: \(job.output)")
            XCTAssertTrue(job.output.contains("on 2 ranks"), job.output)
            let a = try tensors(single), b = try tensors(sharded)
            XCTAssertEqual(Set(a.keys), Set(b.keys), name)
            for key in a.keys.sorted() { XCTAssertEqual(a[key], b[key], "\(name): tensor '\(key)' differs between 1 process and 2 ranks") }
            XCTAssertNotEqual(a["x_adv"], a["x"], "\(name): the attack must move some image, or the comparison shows nothing")
            XCTAssertEqual(try metadata(sharded)["ranks"], "2")
            XCTAssertEqual(try metadata(single)["ranks"], "1")
        }
    }

    func testBadFileStopsEveryRankWithOneErrorLine() throws {
        let dir = try TinyData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try TinyData.writeMNIST(to: dir, trainCount: 20, testCount: 20)
        let garbage = dir.appendingPathComponent("garbage.safetensors").path
        try Data("not a model at all".utf8).write(to: URL(fileURLWithPath: garbage))
        let data = [
            "--dataset", "mnist", "--data-dir", dir.path, "--threads", "1", "--quiet", "--attack", "fgsm",
            "--output", dir.appendingPathComponent("out.safetensors").path
        ]
        for (model, status) in [(garbage, Int32(65)), (dir.appendingPathComponent("missing.safetensors").path, Int32(66))] {
            let start = Date()
            let job = try MPIJob.run("dafar-attack", data + ["--model", model], timeout: 60)
            XCTAssertFalse(job.timedOut, "the job hung: \(job.output)")
            XCTAssertLessThan(Date().timeIntervalSince(start), 30, "the job took too long to stop")
            XCTAssertEqual(job.status, status, job.output)
            let errors = job.output.split(separator: "\n").filter { $0.hasPrefix("error:") }
            XCTAssertEqual(errors.count, 1, "one error line, from one rank: \(job.output)")
            XCTAssertTrue(MPIJob.processes(containing: dir.path).isEmpty, "a rank outlived mpirun")
        }
        let usage = try MPIJob.run("dafar-attack", data + ["--model", garbage, "--count", "0"], timeout: 60)
        XCTAssertEqual(usage.status, 64, usage.output)
        XCTAssertEqual(usage.output.split(separator: "\n").filter { $0.hasPrefix("error:") }.count, 1, usage.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out.safetensors").path))
    }

    func testKilledRankEndsTheJobAndKeepsTheEarlierFile() throws {
        let dir = try TinyData.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (data, model) = try TinyData.trainedModel(in: dir, trainCount: 60, testCount: 40, epochs: 1, batchSize: 20)
        let output = dir.appendingPathComponent("set.safetensors").path
        XCTAssertEqual(
            try CommandRunner.run("dafar-attack", data + ["--model", model, "--attack", "fgsm", "--count", "10", "--output", output])
                .status, 0)
        let earlier = try Data(contentsOf: URL(fileURLWithPath: output))
        let job = try MPIJob(
            ranks: 2, tool: "dafar-attack",
            data + ["--model", model, "--attack", "pgd", "--steps", "100000", "--count", "40", "--batch-size", "10", "--output", output])
        var victim: Int32?
        let deadline = Date().addingTimeInterval(60)
        while victim == nil && Date() < deadline && job.process.isRunning {
            victim = MPIJob.processes(containing: dir.path).first { $0.rank == 1 }?.pid
            if victim == nil { usleep(100_000) }
        }
        let pid = try XCTUnwrap(victim, "rank 1 never started")
        sleep(2)  // let it get into the attack
        let killed = Date()
        kill(pid, SIGKILL)
        let result = job.wait(timeout: 60)
        XCTAssertFalse(result.timedOut, "the job did not end within 60 s of the kill: \(result.output)")
        XCTAssertNotEqual(result.status, 0, result.output)
        XCTAssertLessThan(Date().timeIntervalSince(killed), 30)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: output)), earlier, "the earlier output file changed")
        var leftover = MPIJob.processes(containing: dir.path)
        for _ in 0..<50 where !leftover.isEmpty { usleep(100_000); leftover = MPIJob.processes(containing: dir.path) }
        XCTAssertTrue(leftover.isEmpty, "ranks left running: \(leftover)")
    }
}
