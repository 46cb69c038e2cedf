import Foundation
import XCTest

/// Helpers shared by the reliability tests (bad input, kill and resume, reproducibility):
/// runs with a time limit, checks of a clean failure, and a reader for safetensors tensors.
enum Reliability {
    /// Data options of every run: tiny MNIST IDX files (a quarter of the 40 training images, one
    /// per class, held out for validation), one thread, no progress output.
    static func dataOptions(_ folder: URL) -> [String] {
        ["--dataset", "mnist", "--data-dir", folder.path, "--validation-fraction", "0.25", "--threads", "1", "--quiet"]
    }

    /// Tiny MNIST-format data (40 training, 20 test images), written once per test process.
    static let dataFolder: URL = {
        let folder = try! TinyData.temporaryDirectory()
        try! TinyData.writeMNIST(to: folder, trainCount: 40, testCount: 20)
        return folder
    }()

    /// Settings of the training runs that are killed, resumed and repeated: 30 training images in
    /// batches of 6 (5 steps per epoch), 3 epochs, seed 5.
    static let trainingSettings = ["--epochs", "3", "--batch-size", "6", "--seed", "5"]

    /// The model file of an uninterrupted run with `trainingSettings` and one thread, made once.
    static let referenceModel: Result<String, Error> = Result {
        let model = try TinyData.temporaryDirectory().appendingPathComponent("reference.safetensors").path
        let result = try run("dafar-train", dataOptions(dataFolder) + trainingSettings + ["--output", model])
        guard result.status == 0 else { throw FixtureError(description: "reference dafar-train run: \(result.stderr)") }
        return model
    }

    struct FixtureError: Error, CustomStringConvertible { let description: String }

    /// Asserts that two safetensors files hold the same tensors, bit for bit (metadata aside).
    static func assertSameTensors(
        _ path: String, _ reference: String, _ what: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let a = try SafetensorsFile(path), b = try SafetensorsFile(reference)
        XCTAssertEqual(a.tensors.keys.sorted(), b.tensors.keys.sorted(), "\(what): tensor names", file: file, line: line)
        XCTAssertGreaterThan(a.tensors.count, 0, what, file: file, line: line)
        for (name, entry) in b.tensors {
            XCTAssertEqual(a.tensors[name], entry, "\(what): tensor \(name) differs", file: file, line: line)
        }
    }

    /// Runs a built tool and kills it after `timeout` seconds, so that a hang fails the test
    /// instead of stalling the suite. `prefix` runs the tool through another program (setpriv).
    static func run(
        _ tool: String, _ arguments: [String], timeout: TimeInterval = 60,
        prefix: [String] = []
    ) throws -> CommandRunner.Result {
        try start(tool, arguments, prefix: prefix).wait(timeout: timeout)
    }

    /// Starts a built tool with its standard output and error going to files.
    static func start(_ tool: String, _ arguments: [String], prefix: [String] = []) throws -> RunningTool {
        let process = Process()
        let executable = CommandRunner.productsDirectory.appendingPathComponent(tool)
        if prefix.isEmpty {
            process.executableURL = executable
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: prefix[0])
            process.arguments = Array(prefix.dropFirst()) + [executable.path] + arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"  // a trap would still show as "Fatal error" on stderr
        process.environment = environment
        let output = try TemporaryOutput()
        process.standardOutput = output.stdout
        process.standardError = output.stderr
        try process.run()
        return RunningTool(name: "\(tool) \(arguments.joined(separator: " "))", process: process, output: output)
    }

    /// A tool started by `start`.
    final class RunningTool {
        let name: String
        let process: Process
        let output: TemporaryOutput

        init(name: String, process: Process, output: TemporaryOutput) {
            self.name = name
            self.process = process
            self.output = output
        }

        /// What the tool has written to standard error so far.
        var stderr: String { output.read(output.stderrURL) }

        /// Polls every 20 ms until `condition` holds (true) or `timeout` passes or the tool ends (false).
        func waitFor(timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline && process.isRunning {
                if condition() { return true }
                Thread.sleep(forTimeInterval: 0.02)
            }
            return condition()
        }

        /// The address dafar-serve prints when it listens (`http://127.0.0.1:PORT`), waited for up to
        /// `timeout` seconds; nil when it does not come (the tool ended or was too slow).
        func listeningAddress(timeout: TimeInterval) -> URL? {
            var address: URL?
            _ = waitFor(timeout: timeout) {
                let text = output.read(output.stdoutURL)
                guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on http://127.0.0.1:") }) else {
                    return false
                }
                address = URL(string: String(line.dropFirst("listening on ".count)))
                return true
            }
            return address
        }

        /// Waits for the tool to end, killing it (and failing the test) after `timeout` seconds.
        func wait(timeout: TimeInterval) -> CommandRunner.Result {
            _ = waitFor(timeout: timeout) { false }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                XCTFail("\(name) did not finish within \(timeout) s (a hang)")
            }
            process.waitUntilExit()
            return CommandRunner.Result(
                status: process.terminationStatus, stdout: output.read(output.stdoutURL),
                stderr: output.read(output.stderrURL))
        }
    }

    /// Standard output and error captured in files (no pipe to fill while the tool runs).
    final class TemporaryOutput {
        let folder: URL, stdoutURL: URL, stderrURL: URL
        let stdout: FileHandle, stderr: FileHandle

        init() throws {
            folder = try TinyData.temporaryDirectory()
            stdoutURL = folder.appendingPathComponent("stdout")
            stderrURL = folder.appendingPathComponent("stderr")
            FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
            FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
            stdout = try FileHandle(forWritingTo: stdoutURL)
            stderr = try FileHandle(forWritingTo: stderrURL)
        }

        func read(_ url: URL) -> String { String(decoding: (try? Data(contentsOf: url)) ?? Data(), as: UTF8.self) }

        deinit {
            try? stdout.close()
            try? stderr.close()
            try? FileManager.default.removeItem(at: folder)
        }
    }

    /// Asserts a clean failure: exit `status`, exactly one line on standard error that starts
    /// with `error:` and contains every fragment, and no sign of a trap or a stack trace.
    static func assertCleanFailure(
        _ result: CommandRunner.Result, status: Int32, _ fragments: [String],
        _ what: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(result.status, status, "\(what): exit status (stderr: \(result.stderr))", file: file, line: line)
        let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertTrue(
            lines.count == 2 && lines[1].isEmpty, "\(what): stderr must be exactly one line, got \(lines.count - 1): \(result.stderr)",
            file: file, line: line)
        XCTAssertTrue(result.stderr.hasPrefix("error: "), "\(what): \(result.stderr)", file: file, line: line)
        XCTAssertLessThan(result.stderr.count, 2000, "\(what): an error line of \(result.stderr.count) characters", file: file, line: line)
        XCTAssertFalse(
            result.stderr.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" },
            "\(what): control characters on stderr: \(result.stderr.debugDescription)", file: file, line: line)
        for trace in ["Fatal error", "Stack dump", "Backtrace", "Current stack trace", "💣"] {
            XCTAssertFalse(
                result.stderr.contains(trace) || result.stdout.contains(trace), "\(what): \(trace) in the output",
                file: file, line: line)
        }
        for fragment in fragments {
            XCTAssertTrue(
                result.stderr.contains(fragment), "\(what): stderr lacks \"\(fragment)\": \(result.stderr)", file: file, line: line)
        }
    }

    /// The bytes of files (nil for a missing file), to check that a failed run changed nothing.
    static func snapshot(_ paths: [String]) -> [String: Data?] {
        Dictionary(uniqueKeysWithValues: paths.map { ($0, FileManager.default.contents(atPath: $0)) })
    }

    /// Asserts that files are as `before` and that no temporary file was left beside them.
    static func assertUnchanged(_ before: [String: Data?], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        for (path, bytes) in before {
            XCTAssertEqual(FileManager.default.contents(atPath: path), bytes, "\(what): \(path) changed", file: file, line: line)
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            let leftovers = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.contains(".tmp-") }
            XCTAssertEqual(leftovers, [], "\(what): temporary files left in \(folder)", file: file, line: line)
        }
    }
}

/// The tensors and metadata of a safetensors file, read independently of the package's parser.
struct SafetensorsFile {
    struct Entry: Equatable {
        var dtype: String
        var shape: [Int]
        var bytes: Data
    }

    var tensors: [String: Entry] = [:]
    var metadata: [String: String] = [:]

    init(_ path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as! [String: Any]
        let buffer = data.subdata(in: (8 + length)..<data.count)
        for (name, value) in header {
            if name == "__metadata__" { metadata = value as! [String: String]; continue }
            let entry = value as! [String: Any]
            let offsets = entry["data_offsets"] as! [Int]
            tensors[name] = Entry(
                dtype: entry["dtype"] as! String, shape: entry["shape"] as! [Int],
                bytes: buffer.subdata(in: offsets[0]..<offsets[1]))
        }
    }

    /// The values of an F32 tensor.
    func floats(_ name: String) -> [Float] {
        tensors[name]!.bytes.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
            }
        }
    }
}
