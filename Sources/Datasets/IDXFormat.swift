import Foundation
import Tensors

/// Reader for the IDX files of MNIST and Fashion-MNIST, plain or gzip-compressed
/// (detected by the magic bytes `1f 8b`, not by the name).
///
/// An IDX file is a big-endian header, magic `0x0000 TT RR` (`TT` = 0x08 for
/// unsigned bytes, `RR` = rank), then `RR` big-endian `UInt32` extents, then the
/// elements row-major. Images are rank 3, `[N, rows, cols]` (magic `0x00000803`);
/// labels are rank 1, `[N]` (magic `0x00000801`).
///
/// Every size is checked against the file length before anything is allocated;
/// a bad file throws a `DatasetError` naming it, never traps.
public enum IDXFormat {
    /// Magic number of an IDX images file: unsigned bytes, rank 3.
    public static let imagesMagic: UInt32 = 0x0000_0803
    /// Magic number of an IDX labels file: unsigned bytes, rank 1.
    public static let labelsMagic: UInt32 = 0x0000_0801

    /// Reads an images file as `[N, 1, rows, cols]` with values `byte / 255` in [0, 1].
    public static func readImages(from url: URL) throws -> Tensor {
        let file = try FileBytes.read(url)
        return try file.withUnsafeBytes { bytes in
            let extents = try header(bytes, path: file.path, expected: imagesMagic)
            let (count, rows, columns) = (extents[0], extents[1], extents[2])
            let pixelCount = try payloadSize(extents, bytes: bytes, path: file.path, itemName: "images")
            guard rows > 0 && columns > 0 else {
                throw DatasetError.badContent(file.path, "declares empty images of \(rows)x\(columns) pixels")
            }
            let pixels = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + headerSize(rank: 3)
            return ByteDecoding.imageTensor(pixels, count: pixelCount, shape: [count, 1, rows, columns])
        }
    }

    /// Reads a labels file; every label must be in `0..<classCount`.
    public static func readLabels(from url: URL, classCount: Int = 10) throws -> [Int] {
        let file = try FileBytes.read(url)
        return try file.withUnsafeBytes { bytes in
            let extents = try header(bytes, path: file.path, expected: labelsMagic)
            let count = try payloadSize(extents, bytes: bytes, path: file.path, itemName: "labels")
            let start = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + headerSize(rank: 1)
            switch ByteDecoding.labels(start, count: count, classCount: classCount) {
            case .success(let labels):
                return labels
            case .failure(let bad):
                throw DatasetError.badContent(
                    file.path,
                    "has label \(bad.value) at position \(bad.index), outside the class range 0...\(classCount - 1)")
            }
        }
    }

    /// Reads an images file and its labels file and checks that their counts agree.
    public static func load(images: URL, labels: URL, classCount: Int = 10) throws -> LabeledImages {
        let imageTensor = try readImages(from: images)
        let labelValues = try readLabels(from: labels, classCount: classCount)
        guard imageTensor.shape[0] == labelValues.count else {
            throw DatasetError.badContent(
                labels.path,
                "holds \(labelValues.count) labels but \(images.path) holds \(imageTensor.shape[0]) images")
        }
        return LabeledImages(images: imageTensor, labels: labelValues, classCount: classCount)
    }

    /// Bytes taken by the magic number and `rank` extents.
    static func headerSize(rank: Int) -> Int { 4 + 4 * rank }

    /// Checks the magic number and returns the extents it announces.
    private static func header(_ bytes: UnsafeRawBufferPointer, path: String, expected: UInt32) throws -> [Int] {
        let rank = Int(expected & 0xFF)
        let kind = expected == imagesMagic ? "IDX images" : "IDX labels"
        guard bytes.count >= 4 else {
            throw DatasetError.badContent(path, "is truncated: \(bytes.count) bytes cannot hold the 4-byte IDX magic number")
        }
        let magic = ByteDecoding.bigEndianUInt32(bytes, at: 0)
        guard magic == expected else {
            throw DatasetError.badContent(path, describeWrongMagic(magic, expected: expected, kind: kind))
        }
        guard bytes.count >= headerSize(rank: rank) else {
            throw DatasetError.badContent(
                path,
                "is truncated inside its \(kind) header (\(bytes.count) bytes, the header needs \(headerSize(rank: rank)))")
        }
        return (0..<rank).map { Int(ByteDecoding.bigEndianUInt32(bytes, at: 4 + 4 * $0)) }
    }

    private static func describeWrongMagic(_ magic: UInt32, expected: UInt32, kind: String) -> String {
        let found = "0x" + String(format: "%08X", magic)
        let wanted = String(format: "0x%08X", expected)
        if magic == imagesMagic || magic == labelsMagic {
            let other = magic == imagesMagic ? "an IDX images file" : "an IDX labels file"
            return "is \(other) (magic \(found)) where \(kind) (magic \(wanted)) were expected"
        }
        if magic >> 16 == 0 && (magic >> 8) & 0xFF != 0x08 {
            return
                "stores IDX element type 0x\(String(format: "%02X", (magic >> 8) & 0xFF)) (magic \(found)); only unsigned bytes (\(wanted)) are supported"
        }
        return "does not start with the \(kind) magic number \(wanted) (found \(found)); it is not an \(kind) file"
    }

    /// The element count the extents promise, checked for overflow and against the file length.
    private static func payloadSize(
        _ extents: [Int], bytes: UnsafeRawBufferPointer, path: String,
        itemName: String
    ) throws -> Int {
        let described = extents.map(String.init).joined(separator: " x ")
        var product = 1
        for extent in extents {
            let (next, overflow) = product.multipliedReportingOverflow(by: extent)
            guard !overflow else {
                throw DatasetError.badContent(path, "declares extents \(described) whose product overflows, so its header is corrupt")
            }
            product = next
        }
        guard extents[0] > 0 else { throw DatasetError.badContent(path, "holds no \(itemName) (its header says 0)") }
        let available = bytes.count - headerSize(rank: extents.count)
        if product > available {
            throw DatasetError.badContent(
                path,
                "is truncated: its header declares \(described) \(itemName) (\(product) bytes) but only \(available) bytes follow")
        }
        if product < available {
            throw DatasetError.badContent(
                path,
                "has \(available - product) bytes more than its header's \(described) \(itemName) account for")
        }
        return product
    }
}
