import Foundation
import XCTest

/// Runs the package's command-line tools (built by `swift test` because this
/// test target depends on them) and captures their output and exit status.
enum CommandRunner {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// The folder holding the built products (the test bundle's folder).
    static var productsDirectory: URL {
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        return Bundle.main.bundleURL
    }

    /// Runs `tool` with `arguments` in `directory` and waits for it.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String], in directory: URL? = nil) throws -> Result {
        let process = Process()
        process.executableURL = productsDirectory.appendingPathComponent(tool)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes concurrently so that a chatty tool cannot fill one and block.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let errData = errBox.data
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// A tool that a test's set-up ran ended with a non-zero status.
struct ToolFailed: Error, CustomStringConvertible {
    let tool: String, status: Int32, stderr: String
    var description: String { "\(tool) exited with status \(status): \(stderr)" }
}

/// Small data in real formats for end-to-end runs.
enum TinyData {
    /// Writes MNIST-format IDX files (`train-images-idx3-ubyte` ...) with `count` 28x28 images per
    /// split into `directory`: class k has a bright block at a class-specific place, plus noise.
    static func writeMNIST(to directory: URL, trainCount: Int, testCount: Int, seed: UInt64 = 1) throws {
        var state = seed
        func next() -> UInt8 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        func write(images name: String, labels labelName: String, count: Int) throws {
            var images: [UInt8] = [0, 0, 8, 3] + bigEndian(count) + bigEndian(28) + bigEndian(28)
            var labels: [UInt8] = [0, 0, 8, 1] + bigEndian(count)
            for i in 0..<count {
                let k = i % 10
                labels.append(UInt8(k))
                let (r, c) = (3 + (k / 5) * 12, 2 + (k % 5) * 5)
                for y in 0..<28 {
                    for x in 0..<28 {
                        let inside = y >= r && y < r + 8 && x >= c && x < c + 4
                        images.append(inside ? 200 &+ next() % 56 : next() % 30)
                    }
                }
            }
            try Data(images).write(to: directory.appendingPathComponent(name))
            try Data(labels).write(to: directory.appendingPathComponent(labelName))
        }
        try write(images: "train-images-idx3-ubyte", labels: "train-labels-idx1-ubyte", count: trainCount)
        try write(images: "t10k-images-idx3-ubyte", labels: "t10k-labels-idx1-ubyte", count: testCount)
    }

    static func bigEndian(_ value: Int) -> [UInt8] {
        [UInt8(value >> 24 & 255), UInt8(value >> 16 & 255), UInt8(value >> 8 & 255), UInt8(value & 255)]
    }

    /// Tiny MNIST files in `dir` and a model `m.safetensors` that dafar-train (`--threads 1`) made of
    /// them; returns the data options (`--dataset mnist --data-dir dir --threads 1 --quiet`) and the model.
    static func trainedModel(
        in dir: URL, trainCount: Int, testCount: Int, epochs: Int, batchSize: Int
    ) throws -> (data: [String], model: String) {
        try writeMNIST(to: dir, trainCount: trainCount, testCount: testCount)
        let model = dir.appendingPathComponent("m.safetensors").path
        let data = ["--dataset", "mnist", "--data-dir", dir.path, "--threads", "1", "--quiet"]
        let train = try CommandRunner.run(
            "dafar-train", data + ["--epochs", String(epochs), "--batch-size", String(batchSize), "--output", model])
        guard train.status == 0 else { throw ToolFailed(tool: "dafar-train", status: train.status, stderr: train.stderr) }
        return (data, model)
    }

    /// A fresh temporary folder.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dafar-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
