import Foundation
import XCTest

/// Shared by the bad-input tests (issue 7): every command against every class of bad input must
/// give a sysexits status and one line on standard error that says what is wrong, without a trap,
/// and leave every file already on disk as it was.
class BadInputTestCase: XCTestCase {
    /// Files made once for all the cases: a model and its detector, a second model, a CIFAR
    /// model, and an output file and checkpoint that no failing run may touch.
    struct Files {
        let folder: URL
        let model: String, detector: String, otherModel: String, cifarModel: String, cifarCheckpoint: String
        let output: String
        var data: [String] { Reliability.dataOptions(Reliability.dataFolder) }
    }

    static let sharedFiles: Result<Files, Error> = Result { try makeFiles() }

    static func makeFiles() throws -> Files {
        let folder = try TinyData.temporaryDirectory()
        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
        let data = Reliability.dataOptions(Reliability.dataFolder)
        let model = path("model.safetensors"), detector = path("detector.safetensors")
        let train = try Reliability.run("dafar-train", data + ["--epochs", "1", "--batch-size", "20", "--output", model])
        guard train.status == 0 else { throw Failure("dafar-train fixture: \(train.stderr)") }
        let detect = try Reliability.run(
            "dafar-detector", data + ["--model", model, "--epochs", "1", "--hidden-sizes", "16,8", "--output", detector])
        guard detect.status == 0 else { throw Failure("dafar-detector fixture: \(detect.stderr)") }

        // Another model: the same file with the lowest bit of its last weight changed.
        var other = try Data(contentsOf: URL(fileURLWithPath: model))
        other[other.count - 4] ^= 1
        try other.write(to: URL(fileURLWithPath: path("other-model.safetensors")))

        // A CIFAR-architecture model, trained for one step on tiny CIFAR-10 batch files.
        let cifar = folder.appendingPathComponent("cifar10")
        try FileManager.default.createDirectory(at: cifar, withIntermediateDirectories: true)
        func batch(_ labels: [UInt8]) -> Data { Data(labels.flatMap { [$0] + [UInt8](repeating: $0 &* 20, count: 3072) }) }
        for index in 1...5 {
            try batch([UInt8(2 * index - 2), UInt8(2 * index - 1)]).write(to: cifar.appendingPathComponent("data_batch_\(index).bin"))
        }
        try batch(Array(0...9)).write(to: cifar.appendingPathComponent("test_batch.bin"))
        let cifarModel = path("cifar-model.safetensors")
        let trainCIFAR = try Reliability.run(
            "dafar-train",
            [
                "--dataset", "cifar10", "--data-dir", cifar.path, "--threads", "1", "--quiet",
                "--epochs", "1", "--batch-size", "10", "--output", cifarModel
            ])
        guard trainCIFAR.status == 0 else { throw Failure("dafar-train CIFAR fixture: \(trainCIFAR.stderr)") }

        let output = path("existing-output.safetensors")
        try Data("a previous good result".utf8).write(to: URL(fileURLWithPath: output))
        return Files(
            folder: folder, model: model, detector: detector, otherModel: path("other-model.safetensors"),
            cifarModel: cifarModel, cifarCheckpoint: cifarModel + ".checkpoint", output: output)
    }

    struct Failure: Error, CustomStringConvertible { let description: String; init(_ d: String) { description = d } }

    var files: Files { get throws { try Self.sharedFiles.get() } }

    /// Runs `tool`, expects a clean failure with `status` naming `fragments`, and checks that the
    /// existing output file and `alsoUnchanged` are byte for byte as before.
    func expectFailure(
        _ tool: String, _ arguments: [String], status: Int32, _ fragments: [String],
        alsoUnchanged: [String] = [], prefix: [String] = [], file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let before = Reliability.snapshot([try files.output] + alsoUnchanged)
        let result = try Reliability.run(tool, arguments, timeout: 30, prefix: prefix)
        let what = "\(tool) \(arguments.joined(separator: " "))"
        Reliability.assertCleanFailure(result, status: status, fragments, what, file: file, line: line)
        Reliability.assertUnchanged(before, what, file: file, line: line)
    }
}

/// Missing, misplaced and unreadable files.
final class BadInputTests: BadInputTestCase {
    // MARK: Missing files, folders, unreadable files

    func testMissingInputFiles() throws {
        let f = try files
        let empty = f.folder.appendingPathComponent("no-data").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let noData = ["--dataset", "mnist", "--data-dir", empty, "--threads", "1", "--quiet"]
        try expectFailure("dafar-train", noData + ["--output", f.output], status: 66, ["train-images-idx3-ubyte", "was not found"])
        try expectFailure(
            "dafar-train", f.data + ["--resume", "--checkpoint", "/nonexistent/c.safetensors", "--output", f.output], status: 73,
            ["/nonexistent", "does not exist"])
        try expectFailure("dafar-train", f.data + ["--resume", "--output", f.output], status: 66, ["checkpoint", "does not exist"])
        try expectFailure(
            "dafar-detector", f.data + ["--model", "/nonexistent/m.safetensors", "--output", f.output], status: 66, ["does not exist"])
        try expectFailure("dafar-detector", noData + ["--model", f.model, "--output", f.output], status: 66, ["was not found"])
        try expectFailure(
            "dafar-attack", f.data + ["--model", "missing.safetensors", "--attack", "fgsm", "--output", f.output], status: 66,
            ["missing.safetensors", "does not exist"])
        try expectFailure(
            "dafar-attack",
            f.data + [
                "--model", f.model, "--detector", "missing-detector.safetensors", "--attack", "fgsm",
                "--output", f.output
            ], status: 66, ["missing-detector.safetensors"])
        try expectFailure(
            "dafar-attack", noData + ["--model", f.model, "--attack", "fgsm", "--output", f.output], status: 66, ["was not found"])
    }

    func testFolderWhereAFileIsExpected() throws {
        let f = try files
        let folder = f.folder.path
        try expectFailure("dafar-train", f.data + ["--output", folder], status: 73, ["is a folder"])
        try expectFailure("dafar-train", f.data + ["--checkpoint", folder, "--output", f.output], status: 73, ["is a folder"])
        try expectFailure(
            "dafar-train", f.data + ["--output", f.folder.appendingPathComponent("no/such/folder/m.safetensors").path],
            status: 73, ["does not exist"])
        let dataWithFolder = f.folder.appendingPathComponent("data-with-folder")
        try FileManager.default.createDirectory(
            at: dataWithFolder.appendingPathComponent("train-images-idx3-ubyte"), withIntermediateDirectories: true)
        for name in ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            try? FileManager.default.copyItem(
                at: Reliability.dataFolder.appendingPathComponent(name), to: dataWithFolder.appendingPathComponent(name))
        }
        try expectFailure(
            "dafar-train", ["--dataset", "mnist", "--data-dir", dataWithFolder.path, "--quiet", "--output", f.output],
            status: 66, ["train-images-idx3-ubyte", "directory"])
        try expectFailure("dafar-detector", f.data + ["--model", folder, "--output", f.output], status: 66, ["is a folder"])
        try expectFailure("dafar-detector", f.data + ["--model", f.model, "--output", folder], status: 73, ["is a folder"])
        try expectFailure(
            "dafar-attack", f.data + ["--model", folder, "--attack", "fgsm", "--output", f.output], status: 66, ["is a folder"])
        try expectFailure(
            "dafar-attack", f.data + ["--model", f.model, "--detector", folder, "--attack", "fgsm", "--output", f.output],
            status: 66, ["is a folder"])
        try expectFailure(
            "dafar-attack", f.data + ["--model", f.model, "--attack", "fgsm", "--output", folder], status: 73, ["is a folder"])
    }

    /// Files that exist but cannot be read. As root, permission bits do not stop reads, so the
    /// permission case runs the tool as `nobody` through setpriv(1) (skipped when it is missing);
    /// a Unix socket (open fails with ENXIO) and a FIFO with no writer (open would block) fail
    /// for anyone.
    func testUnreadableFiles() throws {
        let f = try files
        let special = f.folder.appendingPathComponent("special")
        try FileManager.default.createDirectory(at: special, withIntermediateDirectories: true)
        let socketPath = special.appendingPathComponent("model.sock").path
        try makeSocket(socketPath)
        let fifoData = special.appendingPathComponent("fifo-data")
        try FileManager.default.createDirectory(at: fifoData, withIntermediateDirectories: true)
        for name in ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            try FileManager.default.copyItem(
                at: Reliability.dataFolder.appendingPathComponent(name), to: fifoData.appendingPathComponent(name))
        }
        XCTAssertEqual(mkfifo(fifoData.appendingPathComponent("train-images-idx3-ubyte").path, 0o600), 0)

        try expectFailure("dafar-detector", f.data + ["--model", socketPath, "--output", f.output], status: 66, ["not a regular file"])
        try expectFailure(
            "dafar-attack", f.data + ["--model", f.model, "--detector", socketPath, "--attack", "fgsm", "--output", f.output],
            status: 66, ["not a regular file"])
        try expectFailure(
            "dafar-attack", f.data + ["--model", "/dev/zero", "--attack", "fgsm", "--output", f.output],
            status: 66, ["not a regular file"])
        try expectFailure(
            "dafar-train", ["--dataset", "mnist", "--data-dir", fifoData.path, "--quiet", "--output", f.output],
            status: 66, ["train-images-idx3-ubyte", "not a regular file"])

        // Permission bits.
        let locked = special.appendingPathComponent("locked")
        try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: true)
        let lockedModel = locked.appendingPathComponent("model.safetensors").path
        try FileManager.default.copyItem(atPath: f.model, toPath: lockedModel)
        let lockedData = locked.appendingPathComponent("data")
        try FileManager.default.copyItem(at: Reliability.dataFolder, to: lockedData)
        let output = locked.appendingPathComponent("output.safetensors").path
        try Data("previous".utf8).write(to: URL(fileURLWithPath: output))
        var prefix: [String] = []
        if getuid() == 0 {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
                XCTFail("running as root without setpriv(1) (util-linux): permission bits cannot be tested")
                return
            }
            prefix = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            // nobody must reach the tools and the files, and write the output's folder.
            for path in [f.folder.path, special.path, locked.path, lockedData.path] { chmod(path, 0o777) }
            for name in ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
                chmod(lockedData.appendingPathComponent(name).path, 0o644)
            }
            chmod(output, 0o666)
        }
        chmod(lockedModel, 0)
        chmod(lockedData.appendingPathComponent("train-images-idx3-ubyte").path, 0)
        let lockedOptions = ["--dataset", "mnist", "--data-dir", lockedData.path, "--threads", "1", "--quiet"]
        try expectFailure(
            "dafar-detector", lockedOptions + ["--model", lockedModel, "--output", output], status: 66, ["not readable"],
            alsoUnchanged: [output], prefix: prefix)
        try expectFailure(
            "dafar-attack", lockedOptions + ["--model", lockedModel, "--attack", "fgsm", "--output", output], status: 66,
            ["not readable"], alsoUnchanged: [output], prefix: prefix)
        try expectFailure(
            "dafar-train", lockedOptions + ["--output", output], status: 66, ["train-images-idx3-ubyte", "Permission denied"],
            alsoUnchanged: [output], prefix: prefix)
    }

    func makeSocket(_ path: String) throws {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(descriptor, 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes + [0])
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0, "bind \(path)")
        close(descriptor)
    }
}
