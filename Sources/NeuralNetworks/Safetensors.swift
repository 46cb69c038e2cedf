import Crypto
import Foundation
import Tensors
import ToolkitCore

// Safetensors checkpoints (https://github.com/huggingface/safetensors):
//
//   [8 bytes]  N, the header length, UInt64 little-endian
//   [N bytes]  UTF-8 JSON: {"__metadata__": {str: str},
//                           "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
//              padded with spaces so that the data buffer starts 8-byte aligned
//   [rest]     the data buffer; offsets are relative to its start, elements little-endian,
//              and the tensors cover it exactly (no overlaps, no holes).
//
// Parsing and validation live in SafetensorsHeader.swift, atomic writes in AtomicFile.swift.

/// The elements of one tensor in a safetensors file, with their element type.
public enum TensorData: Equatable, Sendable {
    /// 32-bit floats (`F32`), as a `Tensor`.
    case float32(Tensor)
    /// 64-bit signed integers (`I64`), for example labels.
    case int64(shape: [Int], values: [Int64])
    /// Bytes (`U8`), for example masks or raw images.
    case uint8(shape: [Int], values: [UInt8])

    /// The extent of each axis, outermost first.
    public var shape: [Int] {
        switch self {
        case .float32(let tensor): return tensor.shape
        case .int64(let shape, _), .uint8(let shape, _): return shape
        }
    }

    /// The safetensors dtype name: `F32`, `I64` or `U8`.
    public var dtype: String { dtypeCode.rawValue }

    /// Number of elements stored.
    public var count: Int {
        switch self {
        case .float32(let tensor): return tensor.count
        case .int64(_, let values): return values.count
        case .uint8(_, let values): return values.count
        }
    }

    var dtypeCode: SafetensorsDType {
        switch self {
        case .float32: return .f32
        case .int64: return .i64
        case .uint8: return .u8
        }
    }
}

/// The element types this package reads and writes.
enum SafetensorsDType: String, CaseIterable {
    case f32 = "F32", i64 = "I64", u8 = "U8"

    /// Bytes per element.
    var size: Int {
        switch self {
        case .f32: return 4
        case .i64: return 8
        case .u8: return 1
        }
    }
}

/// A safetensors file that cannot be read, is malformed, or cannot be written.
///
/// `description` is one sentence naming the problem, and the file when there is one.
public struct SafetensorsError: ToolkitError, Equatable {
    /// What went wrong, without the file name (`header length 90 is larger than ...`).
    public let reason: String
    /// The file involved, when the error concerns a file.
    public let path: String?
    /// Invalid data for bad content, missing input for a file that cannot be read, cannot-create or I/O failure for writes.
    public let cause: ErrorCause

    /// Creates an error; `cause` defaults to invalid data.
    public init(_ reason: String, path: String? = nil, cause: ErrorCause = .invalidData) {
        self.reason = reason
        self.path = path
        self.cause = cause
    }

    /// One sentence: the file (if any), then the problem.
    public var description: String {
        guard let path else { return "Invalid safetensors data: \(reason)." }
        switch cause {
        case .invalidData: return "Invalid safetensors file '\(path)': \(reason)."
        case .missingInput: return "Cannot read '\(path)': \(reason)."
        default: return "Cannot write '\(path)': \(reason)."
        }
    }

    /// The same error, attributed to the file at `url`: for example a tensor missing from an
    /// archive that was read from that file.
    public func inFile(_ url: URL) -> SafetensorsError {
        SafetensorsError(reason, path: url.path, cause: cause)
    }
}

/// A set of named tensors plus string metadata: the contents of one safetensors file.
public struct SafetensorsArchive: Equatable, Sendable {
    /// The tensors by name.
    public var tensors: [String: TensorData]
    /// The `__metadata__` entries (the format allows only string values).
    public var metadata: [String: String]

    /// Creates an archive from tensors and metadata.
    public init(tensors: [String: TensorData] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Parses the bytes of a safetensors file, validating the header and the layout.
    /// - Throws: `SafetensorsError` (exit 65) naming the first problem found.
    public init(bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { try SafetensorsArchive.parse($0) }
    }

    /// Reads and parses a safetensors file.
    /// - Throws: `SafetensorsError` naming the file: exit 66 when it is missing, a
    ///   folder or unreadable, exit 65 when its contents are malformed.
    public init(contentsOf url: URL) throws {
        let data = try SafetensorsArchive.readFile(url)
        do {
            self = try data.withUnsafeBytes { try SafetensorsArchive.parse($0) }
        } catch let error as SafetensorsError {
            throw error.inFile(url)
        }
    }

    /// The file's bytes: header keys sorted, tensors laid out in sorted-name order, and the
    /// header padded with spaces to a multiple of 8 bytes. Equal archives give equal bytes.
    public func encoded() -> [UInt8] {
        let names = tensors.keys.sorted()
        var header = "{"
        var entries: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0]!))" }
            entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for name in names {
            let data = tensors[name]!
            precondition(
                data.count == data.shape.elementCount && data.shape.allSatisfy { $0 >= 0 },
                "tensor '\(name)' has shape \(data.shape) but \(data.count) elements")
            let end = offset + data.count * data.dtypeCode.size
            let shape = data.shape.map(String.init).joined(separator: ",")
            entries.append(
                "\(jsonQuoted(name)):{\"dtype\":\"\(data.dtype)\",\"shape\":[\(shape)],"
                    + "\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += entries.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        headerBytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8))

        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + headerBytes.count + offset)
        appendLittleEndian(UInt64(headerBytes.count), to: &bytes)
        bytes.append(contentsOf: headerBytes)
        for name in names {
            switch tensors[name]! {
            case .float32(let tensor): appendLittleEndian(tensor.storage, to: &bytes)
            case .int64(_, let values): appendLittleEndian(values, to: &bytes)
            case .uint8(_, let values): bytes.append(contentsOf: values)
            }
        }
        return bytes
    }

    /// Writes the archive atomically (temporary file, fsync, rename).
    /// - Throws: `SafetensorsError` with exit 73 (cannot create) or 74 (I/O error).
    public func write(to url: URL) throws {
        try AtomicFile.write(encoded(), to: url)
    }

    /// The `F32` tensor called `name`.
    /// - Throws: `SafetensorsError` naming the tensor when it is missing or has another dtype.
    public func float32(_ name: String) throws -> Tensor {
        let data = try entry(name, expected: .f32)
        guard case .float32(let tensor) = data else { preconditionFailure("dtype checked above") }
        return tensor
    }

    /// The values of the `I64` tensor called `name`, row-major.
    /// - Throws: `SafetensorsError` naming the tensor when it is missing or has another dtype.
    public func int64(_ name: String) throws -> [Int64] {
        let data = try entry(name, expected: .i64)
        guard case .int64(_, let values) = data else { preconditionFailure("dtype checked above") }
        return values
    }

    /// The values of the `U8` tensor called `name`, row-major.
    /// - Throws: `SafetensorsError` naming the tensor when it is missing or has another dtype.
    public func uint8(_ name: String) throws -> [UInt8] {
        let data = try entry(name, expected: .u8)
        guard case .uint8(_, let values) = data else { preconditionFailure("dtype checked above") }
        return values
    }

    private func entry(_ name: String, expected: SafetensorsDType) throws -> TensorData {
        guard let data = tensors[name] else {
            let known = tensors.keys.sorted()
            let list =
                known.count <= 8
                ? known.joined(separator: ", ")
                : known.prefix(8).joined(separator: ", ") + ", ..."
            throw SafetensorsError("no tensor named '\(name)' (the archive has \(known.isEmpty ? "none" : list))")
        }
        guard data.dtypeCode == expected else {
            throw SafetensorsError("tensor '\(name)' has dtype \(data.dtype), expected \(expected.rawValue)")
        }
        return data
    }

    /// The SHA-256 of a file's bytes as 64 lowercase hex digits (ties a detector to its model).
    /// - Throws: `SafetensorsError` (exit 66) when the file is missing or unreadable.
    public static func sha256Hex(of url: URL) throws -> String {
        try checkReadableFile(url)
        guard let handle = try? FileHandle(forReadingFrom: url) else {
            throw SafetensorsError("the file cannot be opened for reading", path: url.path, cause: .missingInput)
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        do {
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                hasher.update(data: chunk)
            }
        } catch {
            throw SafetensorsError(
                "reading failed (\(error.localizedDescription))", path: url.path,
                cause: .missingInput)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

extension SafetensorsArchive {
    /// Adds named parameters as F32 tensors under `prefix.` + name.
    ///
    /// An empty prefix adds the names unchanged; existing tensors of the same name are replaced.
    public mutating func add(_ parameters: [NamedParameter], prefix: String) {
        for (name, parameter) in prefixed(prefix, parameters) {
            tensors[name] = .float32(parameter.value)
        }
    }

    /// Loads values into parameters (names `prefix.` + name); throws naming the tensor when
    /// one is missing or its shape differs (message names both shapes).
    ///
    /// Every tensor is checked before any parameter changes, so a failed load leaves the
    /// parameters as they were. Tensors in the archive that no parameter asks for are ignored.
    public func load(into parameters: [NamedParameter], prefix: String) throws {
        let named = prefixed(prefix, parameters)
        var values: [Tensor] = []
        values.reserveCapacity(named.count)
        for (name, parameter) in named {
            let tensor = try float32(name)
            guard tensor.shape == parameter.value.shape else {
                throw SafetensorsError(
                    "tensor '\(name)' has shape \(tensor.shape) in the archive "
                        + "but the parameter has shape \(parameter.value.shape)")
            }
            values.append(tensor)
        }
        for ((_, parameter), value) in zip(named, values) { parameter.value = value }
    }
}

// MARK: - Helpers shared with the parser and the writer

extension SafetensorsArchive {
    /// Checks that `url` names an existing regular file we may read (exit 66 otherwise).
    static func checkReadableFile(_ url: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw SafetensorsError("no such file", path: url.path, cause: .missingInput)
        }
        guard !isDirectory.boolValue else {
            throw SafetensorsError("it is a folder, not a file", path: url.path, cause: .missingInput)
        }
        // A pipe or device may block or never end (/dev/zero); only regular files are read.
        var status = stat()
        guard stat(url.path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw SafetensorsError(
                "it is not a regular file (a pipe, socket or device)", path: url.path,
                cause: .missingInput)
        }
    }

    /// The whole file, or a `SafetensorsError` with exit 66.
    static func readFile(_ url: URL) throws -> Data {
        try checkReadableFile(url)
        do {
            return try Data(contentsOf: url)
        } catch {
            throw SafetensorsError(
                "the file cannot be read (\(error.localizedDescription))", path: url.path,
                cause: .missingInput)
        }
    }
}

/// `value` as a JSON string literal: quotes, backslashes, control characters and DEL escaped
/// (the package's one JSON string encoder: safetensors headers and the tools' JSON output).
public func jsonQuoted(_ value: String) -> String {
    var result = "\""
    for scalar in value.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F: result += String(format: "\\u%04x", scalar.value)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

/// Appends 32-bit floats, each least significant byte first (one copy on little-endian machines).
func appendLittleEndian(_ values: [Float], to bytes: inout [UInt8]) {
    #if _endian(little)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
    #else
        for value in values { appendLittleEndian(value.bitPattern, to: &bytes) }
    #endif
}

/// Appends 64-bit integers, each least significant byte first (one copy on little-endian machines).
func appendLittleEndian(_ values: [Int64], to bytes: inout [UInt8]) {
    #if _endian(little)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
    #else
        for value in values { appendLittleEndian(value, to: &bytes) }
    #endif
}

/// Appends `value`'s bytes, least significant first.
@inline(__always)
func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
}
