import Tensors

/// Images written as JSON pixel arrays, the body `dafar-serve` accepts as `application/json`.
///
/// Two shapes of document, values numbers in [0, 1] (byte / 255 for 8-bit pixels):
/// - `{"pixels": P}`: one image; P is `[H][W]` (one channel) or `[C][H][W]`;
/// - `{"images": [P, P, ...]}`: several images, each as above and all of one shape.
///
/// The parser is written for this grammar only (not a general JSON reader): whitespace as JSON
/// allows it, one object with exactly one of the two members, rectangular nested arrays of JSON
/// numbers. It never recurses deeper than four arrays, stops at the first error, and allocates
/// no more than the values it has read, so that a hostile body costs at most its own size.
public enum PixelJSON {
    /// At most this many images in one document.
    public static let maximumImages = 4096

    /// Reads a document and returns its images as `[N, C, H, W]`, checked against `imageShape`
    /// (`[C, H, W]`: nothing is resized).
    /// - Throws: `ImageFileError` (65) naming the byte offset of a syntax error, the member that
    ///   is missing or unknown, ragged arrays, both shapes when they differ, or the first value
    ///   outside [0, 1] with its position.
    public static func images(_ bytes: [UInt8], imageShape: [Int], source: String = "the JSON body") throws -> Tensor {
        var parser = Parser(bytes: bytes, source: source)
        let (member, array) = try parser.document()
        let shape = try batchShape(member: member, arrayShape: array.shape, imageShape: imageShape, source: source)
        return try ImageArrays.images(shape: shape, values: array.values, imageShape: imageShape, source: source)
    }

    /// `[N, C, H, W]` of a document's array: pixels `[H, W]` or `[C, H, W]`, images one more level.
    static func batchShape(member: String, arrayShape: [Int], imageShape: [Int], source: String) throws -> [Int] {
        let single = member == "pixels"
        let imageRank = arrayShape.count - (single ? 0 : 1)
        let expected = "\(imageShape) (C, H, W)" + (imageShape[0] == 1 ? " or \(Array(imageShape.dropFirst())) (H, W)" : "")
        guard imageRank == 2 || imageRank == 3, single || arrayShape[0] > 0 else {
            let what =
                single
                ? "\"pixels\" is an array of shape \(arrayShape)" : "\"images\" holds arrays of shape \(Array(arrayShape.dropFirst()))"
            throw ImageFileError.badContent(source, "is not images: \(what) but the model reads \(expected) images")
        }
        guard single || arrayShape[0] <= maximumImages else {
            throw ImageFileError.badContent(source, "holds \(arrayShape[0]) images; at most \(maximumImages) are read in one request")
        }
        let image = Array(arrayShape.suffix(imageRank))
        let chw = imageRank == 2 ? [1] + image : image
        return [single ? 1 : arrayShape[0]] + chw
    }

    /// A rectangular nested array of numbers: its shape and its values in row-major order.
    struct NumberArray {
        var shape: [Int]
        var values: [Float]
    }

    /// Recursive descent over the bytes, at most `maximumDepth` arrays deep.
    struct Parser {
        static let maximumDepth = 4
        let bytes: [UInt8]
        let source: String
        var offset = 0

        init(bytes: [UInt8], source: String) {
            self.bytes = bytes
            self.source = source
        }

        func fail(_ problem: String) -> ImageFileError {
            ImageFileError.badContent(
                source, "is not a pixel document: \(problem) at byte \(offset); send {\"pixels\": [[...]]} or {\"images\": [...]}")
        }

        mutating func skipSpace() {
            while offset < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[offset]) { offset += 1 }
        }

        mutating func expect(_ byte: UInt8, _ what: String) throws {
            skipSpace()
            guard offset < bytes.count, bytes[offset] == byte else {
                throw fail(offset < bytes.count ? "expected \(what)" : "the document ends where \(what) was expected")
            }
            offset += 1
        }

        /// `{ "pixels" | "images" : array }` and nothing after it but whitespace.
        mutating func document() throws -> (String, NumberArray) {
            try expect(UInt8(ascii: "{"), "'{'")
            skipSpace()
            let keyStart = offset
            let key = try string()
            guard key == "pixels" || key == "images" else {
                offset = keyStart
                throw fail("member \"\(key.prefix(40))\" is not \"pixels\" or \"images\"")
            }
            try expect(UInt8(ascii: ":"), "':'")
            var array = NumberArray(shape: [], values: [])
            try self.array(depth: 0, into: &array)
            try expect(UInt8(ascii: "}"), "'}' (one member only)")
            skipSpace()
            guard offset == bytes.count else { throw fail("text follows the document") }
            return (key, array)
        }

        /// A string without escapes (member names are plain ASCII words).
        mutating func string() throws -> String {
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw fail("expected a member name in quotes") }
            let start = offset + 1
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), end - start < 64 { end += 1 }
            guard end < bytes.count, bytes[end] == UInt8(ascii: "\"") else { throw fail("a member name that is not a short plain string") }
            offset = end + 1
            return String(decoding: bytes[start..<end], as: UTF8.self)
        }

        /// An array at `depth`: numbers (the innermost level) or arrays of one shape.
        mutating func array(depth: Int, into result: inout NumberArray) throws {
            guard depth < Self.maximumDepth else { throw fail("arrays nested deeper than \(Self.maximumDepth)") }
            try expect(UInt8(ascii: "["), "'['")
            skipSpace()
            var count = 0
            var isNumbers: Bool?
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
                offset += 1
                try record(count: 0, depth: depth, leaf: true, into: &result)
                return
            }
            while true {
                skipSpace()
                guard offset < bytes.count else { throw fail("the document ends inside an array") }
                let nested = bytes[offset] == UInt8(ascii: "[")
                if let isNumbers, isNumbers == nested { throw fail("an array mixes numbers and arrays") }
                isNumbers = !nested
                if nested { try array(depth: depth + 1, into: &result) } else { result.values.append(try number()) }
                count += 1
                skipSpace()
                guard offset < bytes.count else { throw fail("the document ends inside an array") }
                if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
                if bytes[offset] == UInt8(ascii: "]") { offset += 1; break }
                throw fail("expected ',' or ']'")
            }
            try record(count: count, depth: depth, leaf: isNumbers!, into: &result)
        }

        /// Lengths of the arrays at each depth (nil until the first one there is complete).
        var lengths = [Int?](repeating: nil, count: Self.maximumDepth)
        /// Depth of the innermost arrays (those holding numbers), fixed by the first one read.
        var leafDepth: Int?

        /// Checks that the array just read at `depth` has the length and kind of its siblings.
        mutating func record(count: Int, depth: Int, leaf: Bool, into result: inout NumberArray) throws {
            if let length = lengths[depth], length != count {
                throw fail("ragged arrays (an array of \(count) where the ones before it at that depth have \(length))")
            }
            lengths[depth] = count
            if leaf {
                if let leafDepth, leafDepth != depth {
                    throw fail("ragged arrays (numbers at nesting depths \(leafDepth + 1) and \(depth + 1))")
                }
                leafDepth = depth
            }
            if depth == 0 { result.shape = lengths[0...(leafDepth ?? 0)].map { $0 ?? 0 } }
        }

        /// A JSON number (`-`? digits, optional fraction and exponent) as a Float.
        mutating func number() throws -> Float {
            let start = offset
            func digits() -> Int {
                let from = offset
                while offset < bytes.count, bytes[offset] >= 0x30, bytes[offset] <= 0x39 { offset += 1 }
                return offset - from
            }
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            guard digits() > 0 else { offset = start; throw fail("expected a number") }
            if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
                offset += 1
                guard digits() > 0 else { throw fail("a number with no digits after '.'") }
            }
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
                offset += 1
                if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
                guard digits() > 0 else { throw fail("a number with no exponent digits") }
            }
            guard offset - start <= 64, let value = Double(String(decoding: bytes[start..<offset], as: UTF8.self)) else {
                offset = start
                throw fail("a number too long to read")
            }
            return Float(value)
        }
    }
}
