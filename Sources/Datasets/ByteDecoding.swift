import Tensors

/// Shared decoding kernels for the binary formats: bytes to `[0, 1]` floats,
/// label bytes to checked `Int`s, big-endian integers.
enum ByteDecoding {
    /// The one pixel formula of every reader: `Float(byte) / 255` (vectorises; exact to the ulp).
    @inline(__always)
    static func unit(_ byte: UInt8) -> Float { Float(byte) / 255 }

    /// Writes `unit(source[i])` to `destination[i]` for `i < count`, split across cores.
    static func unitFloats(_ source: UnsafePointer<UInt8>, count: Int, into destination: UnsafeMutablePointer<Float>) {
        Parallel.forEachChunk(count, minimumPerChunk: 1 << 20) { range in
            for i in range { destination[i] = unit(source[i]) }
        }
    }

    /// Pixel bytes `[count]` as a tensor of `shape` with values in [0, 1].
    /// - Precondition: `shape.elementCount == count` (checked by the caller against the file).
    static func imageTensor(_ source: UnsafePointer<UInt8>, count: Int, shape: [Int]) -> Tensor {
        precondition(shape.elementCount == count, "image shape \(shape) does not hold \(count) bytes")
        return Tensor(shape: shape) { out in unitFloats(source, count: count, into: out) }
    }

    /// Reads `count` label bytes spaced `stride` apart.
    /// Returns the labels, or the index and value of the first byte `>= classCount`.
    static func labels(
        _ source: UnsafePointer<UInt8>, count: Int, stride: Int = 1,
        classCount: Int
    ) -> Result<[Int], LabelOutOfRange> {
        var firstBad = -1
        let labels = [Int](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count {
                let value = Int(source[i * stride])
                if value >= classCount && firstBad < 0 { firstBad = i }
                buffer[i] = value
            }
            initialized = count
        }
        if firstBad >= 0 { return .failure(LabelOutOfRange(index: firstBad, value: labels[firstBad])) }
        return .success(labels)
    }

    /// The first label byte outside `0..<classCount`.
    struct LabelOutOfRange: Error {
        /// Position of the label (record number).
        var index: Int
        /// The stored value.
        var value: Int
    }

    /// The big-endian `UInt32` at `offset`.
    static func bigEndianUInt32(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}
