import Foundation
import Tensors

/// The NumPy `.npy` format, read strictly and written the way `numpy.save` writes it.
///
///     \x93NUMPY  major minor  header-length  header  data
///     6 bytes    1     1      2 (v1) or 4 (v2, v3) bytes, little-endian
///
/// The header is a Python dict literal with exactly the keys `descr`, `fortran_order` and
/// `shape`, padded with spaces and ended by a newline (latin-1 for v1/v2, UTF-8 for v3). The
/// data follows, C order, and must fill the rest of the file exactly. Read are `'<f4'`
/// (little-endian float32) and `'|u1'` (uint8); anything else is refused with a sentence that
/// says what was found.
public enum NPYFormat {
    /// The 6 bytes every `.npy` file starts with.
    public static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
    /// Headers longer than this are refused (numpy itself refuses 10 000 bytes by default).
    public static let maximumHeaderLength = 65536

    /// True when `bytes` start with the `.npy` magic string.
    public static func hasMagic(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 6 && zip(bytes.prefix(6), magic).allSatisfy { $0 == $1 }
    }

    /// An array read from a `.npy` file: its shape and its elements in C order.
    public enum Array: Equatable, Sendable {
        /// `'<f4'`.
        case float32(shape: [Int], values: [Float])
        /// `'|u1'`.
        case uint8(shape: [Int], values: [UInt8])

        /// The extents, outermost first (`[]` for a scalar).
        public var shape: [Int] {
            switch self {
            case .float32(let shape, _), .uint8(let shape, _): return shape
            }
        }

        /// The numpy dtype string: `<f4` or `|u1`.
        public var descr: String {
            switch self {
            case .float32: return "<f4"
            case .uint8: return "|u1"
            }
        }
    }

    /// Parses `.npy` bytes.
    /// - Parameter source: names the data in error messages (a path, or nil for `the .npy data`).
    /// - Throws: `ImageFileError` (65) naming the first problem: magic, version, header syntax,
    ///   keys, dtype, Fortran order, shape, or a data size that differs from the shape's.
    public static func decode(_ bytes: [UInt8], source: String? = nil) throws -> Array {
        let name = SourceName.of(source, "the .npy data")
        func bad(_ problem: String) -> ImageFileError { .badContent(name, problem) }
        guard bytes.count >= 10 else { throw bad("is too short to be a .npy file (\(bytes.count) bytes)") }
        guard bytes.prefix(6).elementsEqual(magic) else { throw bad("is not a .npy file (it does not start with \\x93NUMPY)") }
        let major = bytes[6], minor = bytes[7]
        guard (1...3).contains(major), minor == 0 else {
            throw bad("has .npy format version \(major).\(minor); versions 1.0, 2.0 and 3.0 are read")
        }
        let lengthBytes = major == 1 ? 2 : 4
        guard bytes.count >= 8 + lengthBytes else { throw bad("is truncated inside its header length") }
        let headerLength = (0..<lengthBytes).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        let headerStart = 8 + lengthBytes
        guard headerLength <= maximumHeaderLength else {
            throw bad("declares a header of \(headerLength) bytes, more than \(maximumHeaderLength)")
        }
        guard headerLength <= bytes.count - headerStart else {
            throw bad("is truncated: its header needs \(headerLength) bytes but \(bytes.count - headerStart) follow")
        }
        let headerBytes = bytes[headerStart..<(headerStart + headerLength)]
        let header: String
        if major == 3 {
            guard let text = String(validating: headerBytes, as: UTF8.self) else { throw bad("has a header that is not UTF-8") }
            header = text
        } else {
            header = String(headerBytes.map { Character(Unicode.Scalar($0)) })  // latin-1
        }
        let fields: HeaderFields
        do { fields = try HeaderFields(parsing: header) } catch let error as HeaderSyntaxError {
            throw bad("has a malformed header (\(error.reason)): \(header.prefix(120).debugDescription)")
        }
        guard !fields.fortranOrder else { throw bad("stores its array in Fortran order; save it in C order (numpy.ascontiguousarray)") }
        var count = 1
        for extent in fields.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            guard !overflow else { throw bad("declares shape \(fields.shape), whose size overflows") }
            count = product
        }
        let data = bytes.count - headerStart - headerLength
        let itemSize: Int
        switch fields.descr {
        case "<f4": itemSize = 4
        case "|u1", "<u1", "u1": itemSize = 1
        default:
            throw bad(
                "holds dtype '\(fields.descr)'; only float32 ('<f4', values in [0, 1]) and uint8 ('|u1') are read, "
                    + "so convert it with .astype(numpy.float32)")
        }
        let (needed, overflow) = count.multipliedReportingOverflow(by: itemSize)
        guard !overflow, needed == data else {
            throw bad(
                "declares shape \(fields.shape) of '\(fields.descr)' (\(overflow ? "too many" : String(needed)) bytes) but \(data) bytes of data follow the header"
            )
        }
        let start = headerStart + headerLength
        if itemSize == 1 { return .uint8(shape: fields.shape, values: Swift.Array(bytes[start...])) }
        let values = [Float](unsafeUninitializedCapacity: count) { out, initialized in
            bytes.withUnsafeBytes { raw in
                for i in 0..<count {
                    out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self)))
                }
            }
            initialized = count
        }
        return .float32(shape: fields.shape, values: values)
    }

    /// The bytes `numpy.save` writes for `array` (format 1.0, header padded to 64 bytes).
    public static func encode(_ array: Array) -> [UInt8] {
        let shape = array.shape.count == 1 ? "(\(array.shape[0]),)" : "(" + array.shape.map(String.init).joined(separator: ", ") + ")"
        var header = Swift.Array("{'descr': '\(array.descr)', 'fortran_order': False, 'shape': \(shape), }".utf8)
        let unpadded = magic.count + 2 + 2 + header.count + 1
        header += [UInt8](repeating: UInt8(ascii: " "), count: (64 - unpadded % 64) % 64) + [UInt8(ascii: "\n")]
        var bytes = magic + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)] + header
        switch array {
        case .uint8(_, let values): bytes += values
        case .float32(_, let values):
            bytes.reserveCapacity(bytes.count + 4 * values.count)
            for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 } }
        }
        return bytes
    }
}

/// The three keys of a `.npy` header, parsed from its dict literal.
struct HeaderFields {
    var descr = ""
    var fortranOrder = false
    var shape: [Int] = []

    /// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` followed by spaces and
    /// one newline: single or double quotes, any key order, optional trailing commas; every key
    /// exactly once and no other key.
    init(parsing text: String) throws {
        var scanner = HeaderScanner(Array(text.unicodeScalars))
        guard text.hasSuffix("\n") else { throw HeaderSyntaxError(reason: "it does not end with a newline") }
        try scanner.expect("{")
        var seen: Set<String> = []
        while !scanner.peek("}") {
            let key = try scanner.string()
            guard seen.insert(key).inserted else { throw HeaderSyntaxError(reason: "key '\(key)' appears twice") }
            try scanner.expect(":")
            switch key {
            case "descr": descr = try scanner.string()
            case "fortran_order": fortranOrder = try scanner.boolean()
            case "shape": shape = try scanner.tuple()
            default: throw HeaderSyntaxError(reason: "unexpected key '\(key.prefix(40))'")
            }
            if !scanner.peek("}") { try scanner.expect(",") }
        }
        try scanner.expect("}")
        guard scanner.atEnd else { throw HeaderSyntaxError(reason: "text after the closing brace") }
        guard seen == ["descr", "fortran_order", "shape"] else {
            throw HeaderSyntaxError(
                reason: "missing key \(["descr", "fortran_order", "shape"].filter { !seen.contains($0) }.joined(separator: ", "))")
        }
    }
}

struct HeaderSyntaxError: Error { let reason: String }

/// A tiny scanner for the dict literal; whitespace between tokens is skipped.
private struct HeaderScanner {
    let scalars: [Unicode.Scalar]
    var position = 0

    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

    var atEnd: Bool { mutating get { skipSpace(); return position == scalars.count } }

    mutating func skipSpace() { while position < scalars.count, [" ", "\n", "\t", "\r"].contains(scalars[position]) { position += 1 } }

    mutating func peek(_ token: Unicode.Scalar) -> Bool { skipSpace(); return position < scalars.count && scalars[position] == token }

    mutating func expect(_ token: Unicode.Scalar) throws {
        guard peek(token) else { throw HeaderSyntaxError(reason: "expected '\(token)' at character \(position)") }
        position += 1
    }

    /// A quoted string without escapes (numpy never writes any in these fields).
    mutating func string() throws -> String {
        skipSpace()
        guard position < scalars.count, scalars[position] == "'" || scalars[position] == "\"" else {
            throw HeaderSyntaxError(reason: "expected a quoted string at character \(position)")
        }
        let quote = scalars[position]
        position += 1
        var text = String.UnicodeScalarView()
        while position < scalars.count, scalars[position] != quote {
            guard scalars[position] != "\\", text.count < 64 else {
                throw HeaderSyntaxError(reason: "unsupported string at character \(position)")
            }
            text.append(scalars[position])
            position += 1
        }
        guard position < scalars.count else { throw HeaderSyntaxError(reason: "unterminated string") }
        position += 1
        return String(text)
    }

    mutating func boolean() throws -> Bool {
        skipSpace()
        for (word, value) in [("True", true), ("False", false)] where scalars[position...].starts(with: word.unicodeScalars) {
            position += word.unicodeScalars.count
            return value
        }
        throw HeaderSyntaxError(reason: "expected True or False at character \(position)")
    }

    /// `()`, `(5,)`, `(2, 3)` or `(2, 3,)`: non-negative integers of at most 12 digits, at most 8 of them.
    mutating func tuple() throws -> [Int] {
        try expect("(")
        var values: [Int] = []
        var trailingComma = false
        while !peek(")") {
            var digits = 0, value = 0
            while position < scalars.count,
                let digit = scalars[position].properties.numericType == .decimal && scalars[position].isASCII
                    ? Int(scalars[position].value) - 48 : nil, digits < 12
            {
                value = value * 10 + digit
                digits += 1
                position += 1
            }
            guard digits > 0 else { throw HeaderSyntaxError(reason: "expected a non-negative integer at character \(position)") }
            values.append(value)
            guard values.count <= 8 else { throw HeaderSyntaxError(reason: "more than 8 dimensions") }
            trailingComma = false
            if peek(")") { break }
            try expect(",")
            trailingComma = true
        }
        try expect(")")
        guard values.count != 1 || trailingComma else { throw HeaderSyntaxError(reason: "a one-element shape must be written (n,)") }
        return values
    }
}
