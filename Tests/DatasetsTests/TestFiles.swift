import Foundation
import Tensors
import ToolkitCore
import XCTest
@testable import Datasets

/// A temporary directory that test files are written into; removed by `remove()`.
struct ScratchDirectory {
    /// The directory's URL.
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("datasets-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// Writes `bytes` to `name` (sub-folders are created) and returns its URL.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> URL {
        let file = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: file)
        return file
    }

    /// Writes UTF-8 `text` to `name`.
    @discardableResult
    func write(_ name: String, text: String) throws -> URL { try write(name, Array(text.utf8)) }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Builders for small files in the real formats.
enum Fixture {
    /// An IDX file: big-endian magic, big-endian extents, payload.
    static func idx(magic: UInt32, extents: [UInt32], payload: [UInt8]) -> [UInt8] {
        var bytes = bigEndian(magic)
        for extent in extents { bytes += bigEndian(extent) }
        return bytes + payload
    }

    /// An IDX images file of `count` images `rows x columns` whose pixel bytes are `pixel(n, r, c)`.
    static func idxImages(count: Int, rows: Int, columns: Int, pixel: (Int, Int, Int) -> UInt8) -> [UInt8] {
        var payload = [UInt8]()
        for n in 0..<count { for r in 0..<rows { for c in 0..<columns { payload.append(pixel(n, r, c)) } } }
        return idx(magic: 0x0803, extents: [UInt32(count), UInt32(rows), UInt32(columns)], payload: payload)
    }

    /// An IDX labels file.
    static func idxLabels(_ labels: [UInt8]) -> [UInt8] {
        idx(magic: 0x0801, extents: [UInt32(labels.count)], payload: labels)
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    /// The pixel byte of CIFAR record `record`, channel `channel`, position `y * 32 + x`.
    static func cifarPixel(record: Int, channel: Int, position: Int) -> UInt8 {
        UInt8((record * 7 + channel * 85 + position) % 256)
    }

    /// A CIFAR-10 batch: per record one label byte then the R, G and B planes.
    static func cifarBatch(labels: [UInt8], firstRecord: Int) -> [UInt8] {
        var bytes = [UInt8]()
        for (i, label) in labels.enumerated() {
            bytes.append(label)
            for channel in 0..<3 {
                for position in 0..<1024 {
                    bytes.append(cifarPixel(record: firstRecord + i, channel: channel, position: position))
                }
            }
        }
        return bytes
    }

    /// CSV text, one line per row of fields.
    static func csv(_ rows: [[String]], lineEnd: String = "\n") -> String {
        rows.map { $0.joined(separator: ",") }.joined(separator: lineEnd) + lineEnd
    }

    /// An MNIST-5k-like CSV (784 pixels then the label, no header, sorted by label)
    /// with `perDigit` rows per digit; row `k` (in file order) has pixel 0 = `k % 256`
    /// and pixel 1 = `k / 256`, so tests can tell rows apart.
    static func mnist5kCSV(perDigit: Int) -> String {
        perDigitCSV((0..<10).map { _ in perDigit })
    }

    /// Like `mnist5kCSV`, with `counts[d]` rows for digit `d`.
    static func perDigitCSV(_ counts: [Int]) -> String {
        let zeros = [String](repeating: "0", count: 782).joined(separator: ",")
        var lines = [String]()
        var row = 0
        for (digit, count) in counts.enumerated() {
            for _ in 0..<count {
                lines.append("\(row % 256),\(row / 256),\(zeros),\(digit)")
                row += 1
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The row id written by `perDigitCSV` into an image's first two pixels.
    static func rowID(_ images: LabeledImages, _ index: Int) -> Int {
        let item = images.images.itemCount
        let low = Int((images.images.storage[index * item] * 255).rounded())
        let high = Int((images.images.storage[index * item + 1] * 255).rounded())
        return high * 256 + low
    }

}

/// Asserts that `expression` throws a `DatasetError` of `kind` whose message
/// contains every string of `fragments` (and the cause that `kind` implies).
func assertDatasetError<T>(
    _ expression: @autoclosure () throws -> T, kind: DatasetError.Kind,
    _ fragments: String..., file: StaticString = #filePath, line: UInt = #line
) {
    do {
        _ = try expression()
        XCTFail("expected a DatasetError (\(kind)) containing \(fragments), but nothing was thrown", file: file, line: line)
    } catch let error as DatasetError {
        XCTAssertEqual(error.kind, kind, "wrong kind for: \(error.message)", file: file, line: line)
        let expectedCause: ErrorCause = kind == .badContent ? .invalidData : kind == .invalidOption ? .invalidArgument : .missingInput
        XCTAssertEqual(error.cause, expectedCause, "wrong cause for: \(error.message)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(
                error.message.contains(fragment), "message \"\(error.message)\" lacks \"\(fragment)\"",
                file: file, line: line)
        }
        XCTAssertTrue(error.message.hasSuffix("."), "message is not a sentence: \(error.message)", file: file, line: line)
    } catch {
        XCTFail("expected a DatasetError, got \(error)", file: file, line: line)
    }
}
