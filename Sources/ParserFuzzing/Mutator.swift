/// A small, fast, seeded generator (SplitMix64): the same seed gives the same mutations.
public struct FuzzRandom {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<bound` (`bound` > 0).
    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    /// True with probability `1 / n`.
    public mutating func oneIn(_ n: Int) -> Bool { below(n) == 0 }
}

/// Mutations of valid files that reach the corners of binary and text parsers: bit flips,
/// interesting bytes, truncation, chunk deletion and duplication, splices with another input,
/// edits of binary length fields (little and big endian) and of decimal numbers in text, and,
/// for safetensors-like inputs, edits of the JSON header that keep its 8-byte length right.
public struct Mutator {
    /// Inputs are cut to this many bytes.
    public var maximumLength: Int

    public init(maximumLength: Int = 1 << 20) { self.maximumLength = maximumLength }

    /// Integers that sit at the edges of sizes and counts.
    static let interestingIntegers: [UInt64] = [
        0, 1, 2, 3, 7, 8, 16, 255, 256, 3073, 65535, 65536, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
        0x1_0000_0000, 100_000_000, 100_000_001, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, UInt64.max
    ]
    /// Decimal texts that stress number parsing and range checks.
    static let interestingNumbers = [
        "0", "-1", "1", "-0", "255", "256", "999", "1000", "9", "10", "11", "1e3", "1.5", "nan", "inf", "-inf",
        "1e309", "4294967296", "2147483648", "9223372036854775807", "9223372036854775808",
        "18446744073709551615", "18446744073709551616", "100000000", "0.0", "00", "+1", "0x10"
    ]
    /// Bytes that matter to the formats: JSON and CSV punctuation, quotes, digits, controls.
    static let interestingBytes: [UInt8] = Array("{}[]\",:-.e0123456789 \n\r\t\\u".utf8) + [0, 1, 0x7F, 0x80, 0xC0, 0xFF, 0x1F, 0x8B]

    /// `input` changed by one to four stacked mutations; `other` is a second input to splice with.
    public func mutate(_ input: [UInt8], other: [UInt8], random: inout FuzzRandom) -> [UInt8] {
        var bytes = input
        for _ in 0..<(1 + random.below(4)) {
            bytes = mutateOnce(bytes, other: other, random: &random)
        }
        if bytes.count > maximumLength { bytes.removeLast(bytes.count - maximumLength) }
        return bytes
    }

    func mutateOnce(_ input: [UInt8], other: [UInt8], random: inout FuzzRandom) -> [UInt8] {
        var bytes = input
        if bytes.isEmpty { return [Self.interestingBytes[random.below(Self.interestingBytes.count)]] }
        // Offsets near the start (headers, length fields) are chosen half of the time.
        func offset() -> Int { random.oneIn(2) ? random.below(min(bytes.count, 48)) : random.below(bytes.count) }
        switch random.below(12) {
        case 0:  // flip one bit
            bytes[offset()] ^= UInt8(1) << UInt8(random.below(8))
        case 1:  // an interesting byte
            bytes[offset()] = Self.interestingBytes[random.below(Self.interestingBytes.count)]
        case 2:  // truncate
            bytes.removeLast(random.below(bytes.count) + 1)
        case 3:  // delete a chunk
            let start = offset()
            bytes.removeSubrange(start..<min(bytes.count, start + 1 + random.below(64)))
        case 4:  // duplicate a chunk in place
            let start = offset()
            let chunk = bytes[start..<min(bytes.count, start + 1 + random.below(64))]
            bytes.insert(contentsOf: chunk, at: random.below(bytes.count + 1))
        case 5:  // splice: a prefix of this input and a suffix of the other
            guard !other.isEmpty else { break }
            bytes = Array(bytes.prefix(random.below(bytes.count + 1))) + other.suffix(random.below(other.count + 1))
        case 6:  // a binary integer field, 1, 2, 4 or 8 bytes, little or big endian
            let width = [1, 2, 4, 8][random.below(4)]
            let start = offset()
            guard start + width <= bytes.count else { break }
            var value = Self.interestingIntegers[random.below(Self.interestingIntegers.count)]
            if random.oneIn(4) { value = UInt64(bytes.count) &+ UInt64(bitPattern: Int64(random.below(5) - 2)) }
            let bigEndian = random.oneIn(2)
            for i in 0..<width {
                let shift = UInt64(8 * (bigEndian ? width - 1 - i : i))
                bytes[start + i] = UInt8(truncatingIfNeeded: value >> shift)
            }
        case 7, 8:  // a decimal number in text (JSON header, CSV field)
            bytes = replacingNumber(in: bytes, random: &random)
        case 9:  // insert random bytes
            let count = 1 + random.below(16)
            let inserted = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            bytes.insert(contentsOf: inserted, at: random.below(bytes.count + 1))
        default:  // safetensors: edit the JSON header and fix its length field
            bytes = mutatingSafetensorsHeader(bytes, other: other, random: &random)
        }
        return bytes
    }

    /// Replaces one run of decimal digits (with its sign) by an interesting number.
    func replacingNumber(in bytes: [UInt8], random: inout FuzzRandom) -> [UInt8] {
        let isDigit = { (b: UInt8) in b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        let starts = bytes.indices.filter { isDigit(bytes[$0]) && ($0 == 0 || !isDigit(bytes[$0 - 1])) }
        guard !starts.isEmpty else { return bytes }
        var start = starts[random.below(starts.count)]
        var end = start
        while end < bytes.count && isDigit(bytes[end]) { end += 1 }
        if start > 0 && bytes[start - 1] == UInt8(ascii: "-") { start -= 1 }
        var result = bytes
        result.replaceSubrange(start..<end, with: Array(Self.interestingNumbers[random.below(Self.interestingNumbers.count)].utf8))
        return result
    }

    /// When `bytes` looks like safetensors (8-byte length, then `{`), mutates only the header text
    /// and rewrites the length so the mutation reaches the JSON and layout checks.
    func mutatingSafetensorsHeader(_ bytes: [UInt8], other: [UInt8], random: inout FuzzRandom) -> [UInt8] {
        guard bytes.count > 8 else { return bytes }
        var length = 0
        for i in (0..<8).reversed() { length = length << 8 | Int(bytes[i]) }
        guard length <= bytes.count - 8, length > 0, bytes[8] == UInt8(ascii: "{") else { return bytes }
        var header = Array(bytes[8..<(8 + length)])
        let data = bytes[(8 + length)...]
        switch random.below(3) {
        case 0: header = replacingNumber(in: header, random: &random)
        case 1: header[random.below(header.count)] = Self.interestingBytes[random.below(Self.interestingBytes.count)]
        default:
            let start = random.below(header.count)
            header.removeSubrange(start..<min(header.count, start + 1 + random.below(24)))
        }
        var result: [UInt8] = []
        var newLength = UInt64(header.count)
        for _ in 0..<8 { result.append(UInt8(truncatingIfNeeded: newLength)); newLength >>= 8 }
        return result + header + data
    }
}
