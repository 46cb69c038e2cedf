import Foundation
import XCTest
@testable import Datasets

final class IDXFormatTests: XCTestCase {
    private var scratch: ScratchDirectory!

    override func setUpWithError() throws { scratch = try ScratchDirectory() }
    override func tearDown() { scratch.remove() }

    /// Three 2x4 images (not square, so swapped rows and columns would show).
    private func pixel(_ n: Int, _ r: Int, _ c: Int) -> UInt8 { UInt8((n * 8 + r * 4 + c) * 10 % 256) }
    private var imageBytes: [UInt8] { Fixture.idxImages(count: 3, rows: 2, columns: 4, pixel: pixel) }

    private func checkImages(_ images: LabeledImages, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(images.images.shape, [3, 1, 2, 4], file: file, line: line)
        XCTAssertEqual(images.labels, [7, 0, 9], file: file, line: line)
        for n in 0..<3 {
            for r in 0..<2 {
                for c in 0..<4 {
                    XCTAssertEqual(
                        images.images.storage[n * 8 + r * 4 + c], Float(pixel(n, r, c)) / 255,
                        "pixel (\(n), \(r), \(c))", file: file, line: line)
                }
            }
        }
    }

    func testReadsPlainImagesAndLabelsAsUnitFloats() throws {
        let images = try scratch.write("images-idx3-ubyte", imageBytes)
        let labels = try scratch.write("labels-idx1-ubyte", Fixture.idxLabels([7, 0, 9]))
        checkImages(try IDXFormat.load(images: images, labels: labels))
    }

    func testReadsGzipByMagicBytesWhateverTheName() throws {
        // A gzip file without .gz and a plain file with .gz: the content decides.
        let images = try scratch.write("images-idx3-ubyte", Gzip.compress(imageBytes))
        let labels = try scratch.write("labels-idx1-ubyte.gz", Fixture.idxLabels([7, 0, 9]))
        checkImages(try IDXFormat.load(images: images, labels: labels))
    }

    func testMissingFileEmptyFileAndDirectory() throws {
        let missing = scratch.url.appendingPathComponent("nope-idx3-ubyte")
        assertDatasetError(try IDXFormat.readImages(from: missing), kind: .missing, missing.path, "was not found")
        let empty = try scratch.write("empty-idx3-ubyte", [])
        assertDatasetError(try IDXFormat.readImages(from: empty), kind: .badContent, empty.path, "is empty")
        assertDatasetError(
            try IDXFormat.readImages(from: scratch.url), kind: .unreadable,
            scratch.url.path, "is a directory")
    }

    func testTruncatedHeaderAndTruncatedPixels() throws {
        let tiny = try scratch.write("tiny", [0, 0])
        assertDatasetError(try IDXFormat.readImages(from: tiny), kind: .badContent, tiny.path, "truncated", "magic")
        let halfHeader = try scratch.write("half", Array(imageBytes.prefix(10)))
        assertDatasetError(try IDXFormat.readImages(from: halfHeader), kind: .badContent, "truncated inside its IDX images header")
        let short = try scratch.write("short", Array(imageBytes.dropLast(5)))
        assertDatasetError(
            try IDXFormat.readImages(from: short), kind: .badContent, short.path,
            "is truncated", "3 x 2 x 4 images (24 bytes)", "only 19 bytes follow")
        let labels = try scratch.write("labels", Array(Fixture.idxLabels([1, 2, 3]).dropLast()))
        assertDatasetError(try IDXFormat.readLabels(from: labels), kind: .badContent, "is truncated", "3 labels")
    }

    func testExtraBytesAreRejected() throws {
        let long = try scratch.write("long", imageBytes + [1, 2, 3])
        assertDatasetError(try IDXFormat.readImages(from: long), kind: .badContent, "has 3 bytes more than")
    }

    func testWrongMagicNumbers() throws {
        let labels = try scratch.write("labels", Fixture.idxLabels([1, 2]))
        assertDatasetError(
            try IDXFormat.readImages(from: labels), kind: .badContent,
            labels.path, "is an IDX labels file (magic 0x00000801)", "0x00000803")
        let images = try scratch.write("images", imageBytes)
        assertDatasetError(try IDXFormat.readLabels(from: images), kind: .badContent, "is an IDX images file")
        let text = try scratch.write("text", Array("hello, world".utf8))
        assertDatasetError(try IDXFormat.readImages(from: text), kind: .badContent, "is not an IDX images file")
        let floats = try scratch.write("floats", Fixture.idx(magic: 0x0D03, extents: [1, 1, 1], payload: [0, 0, 0, 0]))
        assertDatasetError(try IDXFormat.readImages(from: floats), kind: .badContent, "element type 0x0D")
    }

    func testExtentsWhoseProductOverflowsOrIsInconsistent() throws {
        let huge = try scratch.write("huge", Fixture.idx(magic: 0x0803, extents: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], payload: [1]))
        assertDatasetError(try IDXFormat.readImages(from: huge), kind: .badContent, "overflows")
        // Large but representable: must be refused from the file length, not by allocating.
        let large = try scratch.write("large", Fixture.idx(magic: 0x0803, extents: [0x7FFF_FFFF, 28, 28], payload: [1]))
        assertDatasetError(try IDXFormat.readImages(from: large), kind: .badContent, "is truncated", "only 1 bytes follow")
        let none = try scratch.write("none", Fixture.idx(magic: 0x0803, extents: [0, 28, 28], payload: []))
        assertDatasetError(try IDXFormat.readImages(from: none), kind: .badContent, "holds no images")
        let flat = try scratch.write("flat", Fixture.idx(magic: 0x0803, extents: [2, 0, 28], payload: []))
        assertDatasetError(try IDXFormat.readImages(from: flat), kind: .badContent, "empty images of 0x28")
    }

    func testImageAndLabelCountsMustAgree() throws {
        let images = try scratch.write("images", imageBytes)
        let labels = try scratch.write("labels", Fixture.idxLabels([1, 2]))
        assertDatasetError(
            try IDXFormat.load(images: images, labels: labels), kind: .badContent,
            labels.path, "holds 2 labels but \(images.path) holds 3 images")
    }

    func testLabelsOutOfRange() throws {
        let labels = try scratch.write("labels", Fixture.idxLabels([1, 10, 255]))
        assertDatasetError(
            try IDXFormat.readLabels(from: labels), kind: .badContent,
            labels.path, "label 10 at position 1", "0...9")
        XCTAssertEqual(try IDXFormat.readLabels(from: labels, classCount: 256), [1, 10, 255])
    }
}
