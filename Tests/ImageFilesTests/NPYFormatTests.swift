import Tensors
import XCTest
@testable import ImageFiles

/// `.npy`: files numpy wrote, round trips for each dtype and shape, strict headers, values.
final class NPYFormatTests: XCTestCase {
    func testFilesNumpyWrote() throws {
        XCTAssertEqual(
            try NPYFormat.decode(TestImages.numpyFloat32), .float32(shape: [1, 2, 3], values: [0, 0.125, 0.25, 0.375, 0.5, 0.625]))
        XCTAssertEqual(try NPYFormat.decode(TestImages.numpyUInt8), .uint8(shape: [2, 2], values: [0, 255, 17, 128]))
    }

    func testRoundTripForEachDtypeAndShape() throws {
        for shape in [[2, 1, 3, 4], [2, 3, 4], [3, 4], [5], []] {
            let count = shape.reduce(1, *)
            let bytes = TestImages.bytes(count, seed: UInt64(count))
            for array in [
                NPYFormat.Array.uint8(shape: shape, values: bytes),
                .float32(shape: shape, values: bytes.map { Float($0) / 255 })
            ] {
                let encoded = NPYFormat.encode(array)
                XCTAssertEqual(
                    encoded.count % 64, (count * (array.descr == "<f4" ? 4 : 1)) % 64, "\(shape): the header is padded to 64 bytes")
                XCTAssertEqual(try NPYFormat.decode(encoded), array, "\(array.descr) \(shape)")
            }
        }
    }

    func testImagesFromEachLayout() throws {
        let values = (0..<24).map { Float($0) / 23 }
        let fourD = try ImageArrays.images(shape: [2, 3, 2, 2], values: values, imageShape: [3, 2, 2], source: "a")
        XCTAssertEqual(fourD.shape, [2, 3, 2, 2])
        XCTAssertEqual(try ImageArrays.images(shape: [6, 2, 2], values: values, imageShape: [1, 2, 2], source: "a").shape, [6, 1, 2, 2])
        XCTAssertEqual(try ImageArrays.images(shape: [4, 6], values: values, imageShape: [1, 4, 6], source: "a").shape, [1, 1, 4, 6])
        let bytes = try ImageArrays.images(shape: [2, 2], bytes: [0, 51, 255, 102], imageShape: [1, 2, 2], source: "b")
        XCTAssertEqual(bytes.storage, [0, 0.2, 1, 0.4])
        XCTAssertThrowsError(try ImageArrays.images(shape: [6, 2, 2], values: values, imageShape: [1, 28, 28], source: "'x.npy'")) {
            XCTAssertEqual("\($0)", "'x.npy' holds [1, 2, 2] images (C, H, W) but the model reads [1, 28, 28] images; nothing is resized")
        }
        XCTAssertThrowsError(try ImageArrays.images(shape: [24], values: values, imageShape: [1, 2, 2], source: "a")) {
            XCTAssertTrue("\($0)".contains("images must be [N, C, H, W], [N, H, W] or [H, W]"), "\($0)")
        }
        XCTAssertThrowsError(try ImageArrays.images(shape: [0, 2, 2], values: [], imageShape: [1, 2, 2], source: "a")) {
            XCTAssertTrue("\($0)".contains("holds no images"), "\($0)")
        }
    }

    func testValuesOutsideTheUnitIntervalOrNaNAreErrors() {
        for (bad, text) in [(Float.nan, "nan"), (1.5, "1.5"), (-0.25, "-0.25"), (.infinity, "inf")] {
            var values = [Float](repeating: 0.5, count: 8)
            values[5] = bad
            XCTAssertThrowsError(try ImageArrays.images(shape: [2, 2, 2], values: values, imageShape: [1, 2, 2], source: "'v.npy'")) {
                error in
                XCTAssertEqual((error as? ImageFileError)?.cause, .invalidData)
                XCTAssertEqual("\(error)", "'v.npy' has value \(text) at [1, 0, 0, 1] (N, C, H, W); pixel values must be numbers in [0, 1]")
            }
        }
    }

    func testHeadersOfOtherVersionsAndSpellings() throws {
        func file(version: UInt8, _ header: String, data: [UInt8]) -> [UInt8] {
            let text = Array((header + "\n").utf8)
            let length: [UInt8] =
                version == 1
                ? [UInt8(text.count & 255), UInt8(text.count >> 8)]
                : [UInt8(text.count & 255), UInt8(text.count >> 8), 0, 0]
            return NPYFormat.magic + [version, 0] + length + text + data
        }
        let cases = [
            file(version: 2, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2), }", data: [3, 4]),
            file(version: 3, "{\"shape\": (1,2), \"descr\": \"|u1\", \"fortran_order\": False}   ", data: [3, 4]),
            file(version: 1, "{ 'fortran_order' : False , 'shape' : ( 1 , 2 , ) , 'descr' : '<u1' }", data: [3, 4])
        ]
        for bytes in cases { XCTAssertEqual(try NPYFormat.decode(bytes), .uint8(shape: [1, 2], values: [3, 4])) }
    }

    func testBadHeadersAreRejectedWithTheReason() {
        func file(_ header: String, version: UInt8 = 1, data: [UInt8] = [0, 0, 0, 0]) -> [UInt8] {
            let text = Array(header.utf8)
            return NPYFormat.magic + [version, 0, UInt8(text.count & 255), UInt8(text.count >> 8)] + (version == 1 ? [] : [0, 0]) + text
                + data
        }
        let good = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }\n"
        XCTAssertNoThrow(try NPYFormat.decode(file(good)), "the baseline parses")
        let cases: [([UInt8], String)] = [
            (file(good, version: 4), "format version 4.0"),
            (file(good.replacingOccurrences(of: "False", with: "True")), "Fortran order"),
            (file(good.replacingOccurrences(of: "|u1", with: "<f8")), "dtype '<f8'"),
            (file(good.replacingOccurrences(of: "|u1", with: ">f4")), "dtype '>f4'"),
            (file(good.replacingOccurrences(of: "'descr': '|u1', ", with: "")), "missing key descr"),
            (file(good.replacingOccurrences(of: "}", with: "'extra': 1}")), "unexpected key 'extra'"),
            (file(good.replacingOccurrences(of: "(2, 2)", with: "(4)")), "a one-element shape must be written (n,)"),
            (file(good.replacingOccurrences(of: "(2, 2)", with: "(2, -2)")), "expected a non-negative integer"),
            (file(good.replacingOccurrences(of: "\n", with: " ")), "does not end with a newline"),
            (file(good.replacingOccurrences(of: "'shape'", with: "'shape': (1,), 'shape'")), "key 'shape' appears twice"),
            (file(good, data: [0, 0, 0]), "declares shape [2, 2] of '|u1' (4 bytes) but 3 bytes of data follow"),
            (file(good, data: [0, 0, 0, 0, 0]), "but 5 bytes of data follow"),
            (file(good.replacingOccurrences(of: "(2, 2)", with: "(99999999999, 99999999999)")), "overflows"),
            (Array(file(good).prefix(30)), "is truncated: its header needs"),
            (Array("PK\u{3}\u{4} a zip file".utf8), "is not a .npy file"),
            (Array(file(good).prefix(9)), "is too short")
        ]
        for (bytes, fragment) in cases {
            XCTAssertThrowsError(try NPYFormat.decode(bytes, source: "h.npy"), fragment) { error in
                XCTAssertEqual((error as? ImageFileError)?.cause, .invalidData, "\(error)")
                XCTAssertTrue("\(error)".contains(fragment), "expected \"\(fragment)\" in: \(error)")
                XCTAssertFalse("\(error)".contains("\n"), "one line: \(error)")
            }
        }
    }

    func testEveryTruncationAndEveryByteFlipOfTheHeaderThrowsOrParses() {
        let good = TestImages.numpyFloat32
        for length in 0..<good.count {
            XCTAssertThrowsError(try NPYFormat.decode(Array(good.prefix(length))), "cut at \(length)")
        }
        for position in 0..<128 {
            for flip: UInt8 in [0x01, 0x80, 0xFF] {
                var bytes = good
                bytes[position] ^= flip
                do { _ = try NPYFormat.decode(bytes) } catch {
                    XCTAssertTrue(error is ImageFileError, "byte \(position) ^ \(flip): \(type(of: error))")
                }
            }
        }
    }
}
