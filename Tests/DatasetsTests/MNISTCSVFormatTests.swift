import Foundation
import XCTest
@testable import Datasets

/// The CSV reader on 2x2 images (4 pixels and a label per line) unless stated.
final class MNISTCSVFormatTests: XCTestCase {
    private var scratch: ScratchDirectory!
    private let tiny = [1, 2, 2]

    override func setUpWithError() throws { scratch = try ScratchDirectory() }
    override func tearDown() { scratch.remove() }

    private func read(_ text: String, labelColumn: MNISTCSVFormat.LabelColumn = .last) throws -> LabeledImages {
        let file = try scratch.write("digits.csv", text: text)
        return try MNISTCSVFormat.read(from: file, labelColumn: labelColumn, imageShape: tiny)
    }

    func testLabelLastAsInTheMlxtendFile() throws {
        let set = try read(Fixture.csv([["0", "255", "51", "102", "7"], ["3", "4", "5", "6", "0"]]))
        XCTAssertEqual(set.images.shape, [2, 1, 2, 2])
        XCTAssertEqual(set.labels, [7, 0])
        XCTAssertEqual(set.images.storage, [0, 255, 51, 102, 3, 4, 5, 6].map { Float($0) / 255 })
    }

    func testLabelFirstHeaderCRLFBlankLinesAndSpaces() throws {
        let text = "label,p0,p1,p2,p3\r\n7, 0 ,255,51.0,102\r\n\r\n  \n3,1,2,3,4\r\n\n"
        let set = try read(text, labelColumn: .first)
        XCTAssertEqual(set.labels, [7, 3])
        XCTAssertEqual(Array(set.images.storage.prefix(4)), [0, 1, 0.2, 0.4])
    }

    func testGzipCSVAndTheRealImageSize() throws {
        let text = Fixture.mnist5kCSV(perDigit: 1)
        let file = try scratch.write("mnist.csv.gz", Gzip.compress(Array(text.utf8)))
        let set = try MNISTCSVFormat.read(from: file)
        XCTAssertEqual(set.images.shape, [10, 1, 28, 28])
        XCTAssertEqual(set.labels, Array(0..<10))
        XCTAssertEqual((0..<10).map { Fixture.rowID(set, $0) }, Array(0..<10))
    }

    func testWrongColumnCountNamesTheLine() throws {
        assertDatasetError(
            try read("1,2,3,4,5\n1,2,3,4\n"), kind: .badContent,
            "digits.csv", "line 2 has 4 fields where 5 (a label and 4 pixels) were expected")
        assertDatasetError(try read("1,2,3,4,5,6\n"), kind: .badContent, "line 1 has 6 fields")
    }

    func testNonNumericAndNonFiniteFields() throws {
        assertDatasetError(
            try read("1,2,3,4,5\n1,x2,3,4,5\n"), kind: .badContent,
            "line 2, column 2: pixel value \"x2\" is not a number")
        assertDatasetError(try read("1,,3,4,5\n"), kind: .badContent, "column 2: pixel value \"\" is not a number")
        assertDatasetError(try read("1,nan,3,4,5\n"), kind: .badContent, "\"nan\" is not a finite number")
        assertDatasetError(try read("1,2,3,4,inf\n"), kind: .badContent, "column 5: label \"inf\" is not a finite number")
        assertDatasetError(try read("1,2,3,4,1e999\n"), kind: .badContent, "is not a finite number")
    }

    func testPixelsOutside0To255() throws {
        assertDatasetError(try read("1,2,256,4,5\n"), kind: .badContent, "column 3: pixel value \"256\" is outside 0...255")
        assertDatasetError(try read("-1,2,3,4,5\n"), kind: .badContent, "column 1: pixel value \"-1\" is outside 0...255")
    }

    func testLabelsOutOfRangeOrFractional() throws {
        assertDatasetError(try read("1,2,3,4,10\n"), kind: .badContent, "label \"10\" is outside the class range 0...9")
        assertDatasetError(try read("1,2,3,4,-1\n"), kind: .badContent, "label \"-1\" is outside")
        assertDatasetError(try read("1,2,3,4,2.5\n"), kind: .badContent, "label \"2.5\" is not a whole number")
        assertDatasetError(try read("10,2,3,4,5\n", labelColumn: .first), kind: .badContent, "column 1: label \"10\"")
    }

    func testEmptyFilesAndFilesWithoutRows() throws {
        assertDatasetError(try read(""), kind: .badContent, "digits.csv is empty")
        assertDatasetError(try read("\n \n\n"), kind: .badContent, "holds no data rows")
        assertDatasetError(try read("label,a,b,c,d\n"), kind: .badContent, "holds no data rows")
        assertDatasetError(try MNISTCSVFormat.read(from: scratch.url), kind: .unreadable, "is a directory")
    }

    func testCorruptGzipCSV() throws {
        let compressed = Gzip.compress(Array(Fixture.mnist5kCSV(perDigit: 2).utf8))
        let file = try scratch.write("cut.csv.gz", Array(compressed.prefix(compressed.count / 2)))
        assertDatasetError(try MNISTCSVFormat.read(from: file), kind: .badContent, file.path, "truncated gzip")
    }
}
