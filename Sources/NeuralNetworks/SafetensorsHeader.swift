import Tensors

// Reading safetensors files: a strict JSON parser for the header and the checks that make a
// malformed file an error with a sentence instead of a crash or a huge allocation. Nothing is
// allocated from a size read in the file before that size has been checked against the file.

extension SafetensorsArchive {
    /// The largest header accepted, as in the reference implementation (100 MB).
    public static let maximumHeaderLength = 100_000_000

    /// Where one tensor lives in the data buffer, as declared in the header.
    private struct Entry {
        var name: String
        var dtype: SafetensorsDType
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    /// Parses a whole file held in `raw`; errors carry no path (the caller adds it).
    static func parse(_ raw: UnsafeRawBufferPointer) throws -> SafetensorsArchive {
        guard raw.count >= 8 else {
            throw SafetensorsError("the file is \(raw.count) bytes long, shorter than the 8-byte header length")
        }
        var declared: UInt64 = 0
        for index in (0..<8).reversed() { declared = declared << 8 | UInt64(raw[index]) }
        guard declared <= UInt64(maximumHeaderLength) else {
            throw SafetensorsError("header length \(declared) exceeds the limit of \(maximumHeaderLength) bytes")
        }
        let headerLength = Int(declared)
        guard headerLength <= raw.count - 8 else {
            throw SafetensorsError(
                "header length \(headerLength) is larger than the \(raw.count - 8) bytes "
                    + "that follow it (the file is truncated)")
        }
        let headerBytes = Array(raw[8..<(8 + headerLength)])
        let buffer = UnsafeRawBufferPointer(rebasing: raw[(8 + headerLength)...])

        guard String(validating: headerBytes, as: UTF8.self) != nil else {
            throw SafetensorsError("the header is not valid UTF-8")
        }
        var parser = JSONParser(bytes: headerBytes)
        let header: JSONValue
        do {
            header = try parser.parseDocument()
        } catch let error as JSONParser.Failure {
            throw SafetensorsError("the header is not valid JSON (\(error.message) at byte \(error.offset))")
        }
        guard case .object(let members) = header else {
            throw SafetensorsError("the header is not a JSON object")
        }

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (key, value) in members {
            if key == "__metadata__" {
                metadata = try parseMetadata(value)
            } else {
                entries.append(try parseEntry(name: key, value))
            }
        }
        try checkLayout(entries, bufferSize: buffer.count)

        var tensors: [String: TensorData] = [:]
        for entry in entries {
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[entry.begin..<entry.end])
            switch entry.dtype {
            case .f32:
                let storage = readLittleEndian(bytes, as: UInt32.self).map(Float.init(bitPattern:))
                tensors[entry.name] = .float32(Tensor(shape: entry.shape, storage: storage))
            case .i64:
                tensors[entry.name] = .int64(shape: entry.shape, values: readLittleEndian(bytes, as: Int64.self))
            case .u8:
                tensors[entry.name] = .uint8(shape: entry.shape, values: Array(bytes))
            }
        }
        return SafetensorsArchive(tensors: tensors, metadata: metadata)
    }

    private static func parseMetadata(_ value: JSONValue) throws -> [String: String] {
        if case .null = value { return [:] }
        guard case .object(let members) = value else {
            throw SafetensorsError("__metadata__ is not a JSON object")
        }
        var metadata: [String: String] = [:]
        for (key, value) in members {
            guard case .string(let text) = value else {
                throw SafetensorsError("__metadata__ value for '\(key)' is not a string")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseEntry(name: String, _ value: JSONValue) throws -> Entry {
        guard case .object(let members) = value else {
            throw SafetensorsError("the header entry for tensor '\(name)' is not a JSON object")
        }
        func field(_ key: String) throws -> JSONValue {
            guard let value = members.first(where: { $0.key == key })?.value else {
                throw SafetensorsError("tensor '\(name)' has no '\(key)' field")
            }
            return value
        }
        guard case .string(let dtypeName) = try field("dtype") else {
            throw SafetensorsError("tensor '\(name)' has a dtype that is not a string")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            let supported = SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw SafetensorsError("tensor '\(name)' has unsupported dtype '\(dtypeName)' (supported: \(supported))")
        }
        guard case .array(let axes) = try field("shape"), let shape = integers(axes) else {
            throw SafetensorsError("tensor '\(name)' has a shape that is not a list of integers")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw SafetensorsError("tensor '\(name)' has a negative axis in shape \(shape)")
        }
        var byteCount = dtype.size
        for axis in shape {
            let (product, overflow) = byteCount.multipliedReportingOverflow(by: axis)
            guard !overflow else {
                throw SafetensorsError("tensor '\(name)' has shape \(shape), too many elements to count")
            }
            byteCount = product
        }
        guard case .array(let offsetValues) = try field("data_offsets"),
            let offsets = integers(offsetValues), offsets.count == 2, offsets.allSatisfy({ $0 >= 0 })
        else {
            throw SafetensorsError("tensor '\(name)' has data_offsets that are not two non-negative integers")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else {
            throw SafetensorsError("tensor '\(name)' has data_offsets [\(begin), \(end)] that begin after they end")
        }
        guard end - begin == byteCount else {
            throw SafetensorsError(
                "tensor '\(name)' occupies \(end - begin) bytes but shape \(shape) "
                    + "of \(dtype.rawValue) needs \(byteCount) bytes")
        }
        return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// The values of `array` when all are integers that fit in `Int`.
    private static func integers(_ array: [JSONValue]) -> [Int]? {
        var result: [Int] = []
        for value in array {
            guard case .number(let text) = value, let integer = Int(text) else { return nil }
            result.append(integer)
        }
        return result
    }

    /// Checks that the tensors lie inside the buffer and cover it with no overlap and no hole.
    private static func checkLayout(_ entries: [Entry], bufferSize: Int) throws {
        for entry in entries where entry.end > bufferSize {
            throw SafetensorsError(
                "tensor '\(entry.name)' ends at byte \(entry.end), beyond the "
                    + "\(bufferSize)-byte data buffer")
        }
        let ordered = entries.sorted { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var covered = 0
        var previous: String?
        for entry in ordered {
            if entry.begin < covered, let previous {
                throw SafetensorsError("tensors '\(previous)' and '\(entry.name)' overlap in the data buffer")
            }
            if entry.begin > covered {
                throw SafetensorsError(
                    "the data buffer has a gap: bytes \(covered)..<\(entry.begin) "
                        + "before tensor '\(entry.name)' belong to no tensor")
            }
            covered = entry.end
            previous = entry.name
        }
        if covered < bufferSize {
            throw SafetensorsError("the data buffer has \(bufferSize - covered) trailing bytes that belong to no tensor")
        }
    }
}

/// Reads `bytes` as consecutive little-endian integers (the count is a multiple of the size).
private func readLittleEndian<T: FixedWidthInteger>(_ bytes: UnsafeRawBufferPointer, as type: T.Type) -> [T] {
    let count = bytes.count / MemoryLayout<T>.size
    return [T](unsafeUninitializedCapacity: count) { destination, initialized in
        if count > 0 {
            // The source may be unaligned: copy bytes, then fix the byte order in place.
            UnsafeMutableRawBufferPointer(destination).copyMemory(from: bytes)
            #if _endian(big)
                for index in 0..<count { destination[index] = T(littleEndian: destination[index]) }
            #endif
        }
        initialized = count
    }
}

// MARK: - JSON

/// A parsed JSON value; objects keep their members in file order.
enum JSONValue {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    /// The number's text as written (validated against the JSON grammar).
    case number(String)
    case bool(Bool)
    case null
}

/// A strict RFC 8259 parser over UTF-8 bytes, with a nesting limit and duplicate-key detection.
struct JSONParser {
    /// Why parsing stopped, and where (a byte offset into the header).
    struct Failure: Error {
        var message: String
        var offset: Int
    }

    private let bytes: [UInt8]
    private var index = 0
    private var depth = 0
    private static let maximumDepth = 64

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses one value followed only by whitespace.
    mutating func parseDocument() throws -> JSONValue {
        let value = try parseValue()
        skipWhitespace()
        guard index == bytes.count else { throw fail("unexpected text after the JSON value") }
        return value
    }

    private func fail(_ message: String) -> Failure { Failure(message: message, offset: index) }

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    private mutating func expect(_ byte: UInt8) throws {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == byte else {
            throw fail("expected '\(Character(Unicode.Scalar(byte)))'")
        }
        index += 1
    }

    private mutating func parseValue() throws -> JSONValue {
        skipWhitespace()
        guard index < bytes.count else { throw fail("unexpected end of the header") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            return try parseContainer(close: UInt8(ascii: "}")) { parser in
                var members: [(key: String, value: JSONValue)] = []
                var seen = Set<String>()
                repeat {
                    parser.skipWhitespace()
                    guard parser.index < parser.bytes.count, parser.bytes[parser.index] == UInt8(ascii: "\"") else {
                        throw parser.fail("expected a string key")
                    }
                    let key = try parser.parseString()
                    guard seen.insert(key).inserted else { throw parser.fail("duplicate key '\(key)'") }
                    try parser.expect(UInt8(ascii: ":"))
                    members.append((key, try parser.parseValue()))
                } while try parser.nextElement(close: UInt8(ascii: "}"))
                return .object(members)
            }
        case UInt8(ascii: "["):
            return try parseContainer(close: UInt8(ascii: "]")) { parser in
                var elements: [JSONValue] = []
                repeat { elements.append(try parser.parseValue()) } while try parser.nextElement(close: UInt8(ascii: "]"))
                return .array(elements)
            }
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return .number(try parseNumber())
        }
    }

    /// Opens a container, handles the empty case and the depth limit, then runs `body`.
    private mutating func parseContainer(close: UInt8, _ body: (inout JSONParser) throws -> JSONValue) throws -> JSONValue {
        depth += 1
        guard depth <= Self.maximumDepth else { throw fail("nesting deeper than \(Self.maximumDepth) levels") }
        defer { depth -= 1 }
        index += 1
        skipWhitespace()
        if index < bytes.count, bytes[index] == close {
            index += 1
            return close == UInt8(ascii: "}") ? .object([]) : .array([])
        }
        return try body(&self)
    }

    /// After an element: true on ',', false (consumed) on `close`, else a failure.
    private mutating func nextElement(close: UInt8) throws -> Bool {
        skipWhitespace()
        guard index < bytes.count else { throw fail("unexpected end of the header") }
        let byte = bytes[index]
        index += 1
        if byte == UInt8(ascii: ",") { return true }
        if byte == close { return false }
        index -= 1
        throw fail("expected ',' or '\(Character(Unicode.Scalar(close)))'")
    }

    private mutating func literal(_ word: String) throws {
        let expected = Array(word.utf8)
        guard bytes.count - index >= expected.count, Array(bytes[index..<(index + expected.count)]) == expected else {
            throw fail("unexpected character")
        }
        index += expected.count
    }

    private mutating func parseNumber() throws -> String {
        let start = index
        func digits() -> Int {
            let first = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            return index - first
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        let integerStart = index
        let integerDigits = digits()
        guard integerDigits > 0 else { throw fail("unexpected character") }
        guard integerDigits == 1 || bytes[integerStart] != UInt8(ascii: "0") else { throw fail("number with a leading zero") }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw fail("number without digits after '.'") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw fail("number without digits in its exponent") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// Parses a string starting at its opening quote; the header was checked to be UTF-8.
    private mutating func parseString() throws -> String {
        index += 1
        var scalars = String.UnicodeScalarView()
        var runStart = index
        func flushRun() { scalars.append(contentsOf: String(decoding: bytes[runStart..<index], as: UTF8.self).unicodeScalars) }
        while true {
            guard index < bytes.count else { throw fail("unterminated string") }
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                flushRun()
                index += 1
                return String(scalars)
            }
            guard byte >= 0x20 else { throw fail("control character in a string") }
            guard byte == UInt8(ascii: "\\") else { index += 1; continue }
            flushRun()
            index += 1
            guard index < bytes.count else { throw fail("unterminated string") }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"): scalars.append(try parseUnicodeEscape())
            default: index -= 1; throw fail("invalid escape in a string")
            }
            runStart = index
        }
    }

    /// The scalar of `\uXXXX` (the `\u` consumed), joining a surrogate pair.
    private mutating func parseUnicodeEscape() throws -> Unicode.Scalar {
        let high = try hexQuad()
        if (0xD800..<0xDC00).contains(high) {
            guard bytes.count - index >= 2, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                throw fail("unpaired surrogate in a string")
            }
            index += 2
            let low = try hexQuad()
            guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in a string") }
            return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))!
        }
        guard let scalar = Unicode.Scalar(high) else { throw fail("unpaired surrogate in a string") }
        return scalar
    }

    private mutating func hexQuad() throws -> UInt32 {
        guard bytes.count - index >= 4 else { throw fail("invalid \\u escape in a string") }
        var value: UInt32 = 0
        for byte in bytes[index..<(index + 4)] {
            guard let digit = Character(Unicode.Scalar(byte)).hexDigitValue else {
                throw fail("invalid \\u escape in a string")
            }
            value = value << 4 | UInt32(digit)
        }
        index += 4
        return value
    }
}
