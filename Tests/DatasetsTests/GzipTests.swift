import Foundation
import XCTest
@testable import Datasets

/// Corrupt and unusual gzip streams, read through the IDX labels reader.
final class GzipTests: XCTestCase {
    private var scratch: ScratchDirectory!
    private let labels: [UInt8] = (0..<5000).map { UInt8($0 * 7 % 10) }
    private var compressed: [UInt8] { Gzip.compress(Fixture.idxLabels(labels)) }

    override func setUpWithError() throws { scratch = try ScratchDirectory() }
    override func tearDown() { scratch.remove() }

    func testIntactStreamRoundTrips() throws {
        let file = try scratch.write("labels.gz", compressed)
        XCTAssertEqual(try IDXFormat.readLabels(from: file), labels.map(Int.init))
    }

    func testTruncatedStream() throws {
        for cut in [1, 8, 30] {
            let file = try scratch.write("cut\(cut).gz", Array(compressed.dropLast(cut)))
            assertDatasetError(try IDXFormat.readLabels(from: file), kind: .badContent, file.path, "is a truncated gzip file")
        }
        let header = try scratch.write("header.gz", Array(compressed.prefix(12)))
        assertDatasetError(try IDXFormat.readLabels(from: header), kind: .badContent, "is a truncated gzip file")
    }

    func testBadCRCAndBadLength() throws {
        var badCRC = compressed
        badCRC[badCRC.count - 8] ^= 0xFF  // first byte of the CRC-32 trailer
        let crcFile = try scratch.write("crc.gz", badCRC)
        assertDatasetError(
            try IDXFormat.readLabels(from: crcFile), kind: .badContent,
            crcFile.path, "fails its gzip integrity check (incorrect data check)")
        var badLength = compressed
        badLength[badLength.count - 4] ^= 0x01  // ISIZE trailer
        let lengthFile = try scratch.write("length.gz", badLength)
        assertDatasetError(try IDXFormat.readLabels(from: lengthFile), kind: .badContent, "incorrect length check")
    }

    func testCorruptDeflateData() throws {
        var corrupt = compressed
        corrupt[10] = 0xFF  // first byte of the deflate data: an invalid block type
        let file = try scratch.write("corrupt.gz", corrupt)
        assertDatasetError(try IDXFormat.readLabels(from: file), kind: .badContent, file.path, "is a corrupt gzip file")
    }

    func testConcatenatedMembersAndZeroPadding() throws {
        // `cat a.gz b.gz` is a valid gzip file; the small last member's size hint forces buffer growth.
        let whole = Fixture.idxLabels(labels)
        let split = whole.count - 3
        let members = Gzip.compress(Array(whole[..<split])) + Gzip.compress(Array(whole[split...]))
        let file = try scratch.write("members.gz", members + [0, 0, 0, 0])
        XCTAssertEqual(try IDXFormat.readLabels(from: file), labels.map(Int.init))
    }

    func testTrailingGarbageAndEmptyPayload() throws {
        let garbage = try scratch.write("garbage.gz", compressed + Array("junk".utf8))
        assertDatasetError(try IDXFormat.readLabels(from: garbage), kind: .badContent, "4 bytes of unexpected data")
        let empty = try scratch.write("empty.gz", Gzip.compress([]))
        assertDatasetError(try IDXFormat.readLabels(from: empty), kind: .badContent, "decompresses to nothing")
    }
}
