import Attacks
import DAFAR
import Datasets
import Foundation
import ImageFiles
import NeuralNetworks
import Tensors
import ToolkitCore

/// What one parser did with one input.
public enum FuzzOutcome: Equatable {
    /// The input parsed; the text sums up what came out (shapes), to tell new behaviour apart.
    case parsed(String)
    /// The parser rejected the input with a `ToolkitError`; the text is its message.
    case rejected(String)
}

/// A parser broke its contract on an input: it threw an error that is not a `ToolkitError`
/// with a one-sentence message, or what it parsed does not survive writing and re-reading.
/// (A trap or a memory error ends the process instead; the input is then in the scratch file.)
public struct FuzzFinding: Error, CustomStringConvertible {
    public let description: String
}

/// One parser under fuzzing: its valid seed files and how it reads one input.
///
/// Every input is first written to `file`, so the file readers run exactly as the commands run
/// them and a crashing input is left on disk for whoever investigates.
public struct FuzzTarget: Sendable {
    /// Command-line name (`safetensors`, `idx`, ...).
    public let name: String
    /// What is parsed.
    public let summary: String
    /// Valid files in the format, the starting corpus.
    public let seeds: @Sendable () -> [[UInt8]]
    let parse: @Sendable (URL) throws -> String

    /// Writes `bytes` to `file` and parses it.
    public func run(_ bytes: [UInt8], file: URL) throws -> FuzzOutcome {
        try FuzzScratch.write(bytes, to: file)
        do {
            return .parsed(try parse(file))
        } catch let finding as FuzzFinding {
            throw finding
        } catch let error as ToolkitError {
            let message = error.description
            guard !message.isEmpty else { throw FuzzFinding(description: "\(name): rejected with an empty message") }
            guard [.invalidArgument, .invalidData, .missingInput].contains(error.cause) else {
                throw FuzzFinding(
                    description: "\(name): rejected with cause \(error.cause), not a bad argument, bad data or missing input: \(message)")
            }
            return .rejected(message)
        } catch {
            throw FuzzFinding(description: "\(name): threw \(type(of: error)), not a ToolkitError: \(error)")
        }
    }

    /// Runs every reading of one input (a file may be read in two ways) and returns the first
    /// that parsed, or throws the first error; an error that is not a `ToolkitError` is
    /// thrown even when another reading parsed, so that no contract violation is hidden.
    static func firstSuccess(_ readings: [() throws -> String]) throws -> String {
        let results = readings.map { reading in Result { try reading() } }
        for case .failure(let error) in results where !(error is ToolkitError) { throw error }
        for case .success(let summary) in results { return summary }
        if case .failure(let error) = results[0] { throw error }
        preconditionFailure("a reading either parsed or failed")
    }

    /// Every target, in the order `make fuzz` runs them.
    public static let all: [FuzzTarget] = [safetensors, idx, cifar10, mnistCSV, adversarialSet, detector, model, png, npy, pixelsJSON]

    /// The target called `name`.
    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }

    /// Shapes and dtypes of an archive, as an outcome summary.
    static func describe(_ archive: SafetensorsArchive) -> String {
        archive.tensors.keys.sorted().map { "\(archive.tensors[$0]!.dtype)\(archive.tensors[$0]!.shape)" }.joined(separator: " ")
    }

    /// Reads a safetensors file and checks that writing it back gives the same bytes twice over.
    static func readAndRoundTrip(_ file: URL) throws -> SafetensorsArchive {
        let archive = try SafetensorsArchive(contentsOf: file)
        let encoded = archive.encoded()
        let again: SafetensorsArchive
        do { again = try SafetensorsArchive(bytes: encoded) } catch {
            throw FuzzFinding(description: "safetensors: an archive that parsed cannot re-read its own encoding: \(error)")
        }
        guard again.encoded() == encoded else {
            throw FuzzFinding(description: "safetensors: re-encoding a parsed archive changes its bytes")
        }
        return archive
    }

    static let safetensors = FuzzTarget(
        name: "safetensors", summary: "SafetensorsArchive(contentsOf:) + encode/re-read round trip",
        seeds: FuzzSeeds.safetensors
    ) { file in
        let archive = try readAndRoundTrip(file)
        for (name, data) in archive.tensors {
            switch data {
            case .float32: _ = try archive.float32(name)
            case .int64: _ = try archive.int64(name)
            case .uint8: _ = try archive.uint8(name)
            }
        }
        return describe(archive)
    }

    static let idx = FuzzTarget(name: "idx", summary: "IDXFormat.readImages and readLabels (plain or gzip)", seeds: FuzzSeeds.idx) { file in
        try firstSuccess([
            { "images \(try IDXFormat.readImages(from: file).shape)" },
            { "labels \(try IDXFormat.readLabels(from: file).count)" }
        ])
    }

    static let cifar10 = FuzzTarget(name: "cifar10", summary: "CIFAR10Format.readBatches (plain or gzip)", seeds: FuzzSeeds.cifar10) {
        file in
        let batch = try CIFAR10Format.readBatches([file])
        return "records \(batch.count)"
    }

    static let mnistCSV = FuzzTarget(
        name: "mnist-csv", summary: "MNISTCSVFormat.read, label last and first, 2x2 images (plain or gzip)",
        seeds: FuzzSeeds.mnistCSV
    ) { file in
        try firstSuccess([
            { "rows \(try MNISTCSVFormat.read(from: file, labelColumn: .last, imageShape: FuzzSeeds.csvImageShape).count)" },
            { "rows \(try MNISTCSVFormat.read(from: file, labelColumn: .first, imageShape: FuzzSeeds.csvImageShape).count) label first" }
        ])
    }

    static let adversarialSet = FuzzTarget(
        name: "adversarial-set", summary: "AdversarialSet(contentsOf:)",
        seeds: FuzzSeeds.adversarialSet
    ) { file in
        let set = try AdversarialSet(archive: try readAndRoundTrip(file), file: file.path)
        return "set \(set.clean.shape) scores \(set.scoreClean != nil) \(set.scoreAdversarial != nil)"
    }

    static let detector = FuzzTarget(
        name: "detector", summary: "AnomalyDetector(archive:) from a detector file",
        seeds: FuzzSeeds.detector
    ) { file in
        let detector = try AnomalyDetector(archive: try SafetensorsArchive(contentsOf: file), file: file.path)
        return "detector \(detector.inputSize) \(detector.hiddenSizes) calibrated \(detector.calibration != nil)"
    }

    /// Decodes a PNG, checks that re-encoding what was read gives the same pixels, and converts
    /// it the ways a model would (grey and colour).
    static let png = FuzzTarget(
        name: "png", summary: "PNGFormat.decode (libpng) + encode/re-read round trip + channel conversion",
        seeds: FuzzSeeds.png
    ) { file in
        let bytes = [UInt8](try Data(contentsOf: file))
        let picture = try PNGFormat.decode(bytes, source: file.path)
        let again: PixelImage
        do { again = try PNGFormat.decode(try PNGFormat.encode(picture)) } catch {
            throw FuzzFinding(description: "png: a decoded image cannot be re-encoded and read: \(error)")
        }
        guard again == picture else { throw FuzzFinding(description: "png: re-encoding a decoded image changes its pixels") }
        let grey = Result { try picture.tensor(channels: 1, source: file.path) }
        let colour = try picture.tensor(channels: 3, source: file.path)
        return "png \(picture.width)x\(picture.height)x\(picture.channels) grey \((try? grey.get()) != nil) \(colour.shape)"
    }

    /// Reads a `.npy` file, checks that it survives writing and re-reading, and turns it into
    /// images when its shape allows.
    static let npy = FuzzTarget(
        name: "npy", summary: "NPYFormat.decode + encode/re-read round trip + ImageArrays",
        seeds: FuzzSeeds.npy
    ) { file in
        let array = try NPYFormat.decode([UInt8](try Data(contentsOf: file)), source: file.path)
        guard (try? NPYFormat.decode(NPYFormat.encode(array))) == array else {
            throw FuzzFinding(description: "npy: an array that parsed does not survive encode and decode")
        }
        let reader = ImageFileReader()
        let shape = array.shape.count >= 2 ? Array(array.shape.suffix(array.shape.count == 4 ? 3 : 2)) : [1, 1]
        let imageShape = shape.count == 3 ? shape : [1] + shape  // [C, H, W] that fits, when the rank allows
        let images = try reader.read(bytes: [UInt8](try Data(contentsOf: file)), kind: .npy, source: file.path, imageShape: imageShape)
        return "npy \(array.descr) \(array.shape) -> \(images.shape)"
    }

    /// Reads a `dafar-serve` JSON body for `[1, 2, 3]` images and checks that the images it gave
    /// survive writing as `{"images": ...}` and reading again.
    static let pixelsJSON = FuzzTarget(
        name: "pixels-json", summary: "PixelJSON.images (dafar-serve's JSON body) + write/re-read round trip",
        seeds: FuzzSeeds.pixelsJSON
    ) { file in
        let images = try PixelJSON.images([UInt8](try Data(contentsOf: file)), imageShape: FuzzSeeds.pixelsImageShape, source: file.path)
        let (n, h, w) = (images.shape[0], images.shape[2], images.shape[3])
        // Double(value) prints the Float's exact value in the shortest text that reads back as it.
        let rows = (0..<n).map { i in
            "[["
                + (0..<h).map { y in
                    "[" + (0..<w).map { x in "\(Double(images.storage[(i * h + y) * w + x]))" }.joined(separator: ",") + "]"
                }.joined(separator: ",") + "]]"
        }
        let written = Array("{\"images\":[\(rows.joined(separator: ","))]}".utf8)
        guard (try? PixelJSON.images(written, imageShape: FuzzSeeds.pixelsImageShape)) == images else {
            throw FuzzFinding(description: "pixels-json: images that parsed do not survive writing and reading again")
        }
        return "pixels-json \(images.shape)"
    }

    static let model = FuzzTarget(
        name: "model", summary: "JointNetwork(archive:) from a (cut-down) model file",
        seeds: FuzzSeeds.model
    ) { file in
        let network = try JointNetwork(archive: try SafetensorsArchive(contentsOf: file), file: file.path)
        return "model \(network.architecture) \(network.classCount)"
    }
}

/// Where fuzz inputs are written: a private folder, in memory when `/dev/shm` exists.
public enum FuzzScratch {
    /// A new folder for one fuzzing run.
    public static func makeFolder() throws -> URL {
        let base =
            FileManager.default.isWritableFile(atPath: "/dev/shm")
            ? URL(fileURLWithPath: "/dev/shm")
            : FileManager.default.temporaryDirectory
        let folder = base.appendingPathComponent("dafar-fuzz-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Replaces the file's contents with `bytes` (not atomically: speed matters here).
    static func write(_ bytes: [UInt8], to file: URL) throws {
        let descriptor = open(file.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw FuzzFinding(description: "cannot write the scratch file \(file.path)") }
        defer { close(descriptor) }
        var written = 0
        try bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let count = Foundation.write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                guard count > 0 else { throw FuzzFinding(description: "cannot write the scratch file \(file.path)") }
                written += count
            }
        }
    }
}
