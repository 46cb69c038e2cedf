import Tensors
import ToolkitCore
import XCTest
@testable import ImageFiles

/// PNG through libpng: round trips through the writer, palette files written by libpng,
/// hand-assembled files at other bit depths, channel conversion, and corrupt files.
final class PNGFormatTests: XCTestCase {
    func testGreyGreyAlphaRGBAndRGBARoundTrip() throws {
        for channels in 1...4 {
            let (width, height) = (7, 5)
            let picture = PixelImage(
                width: width, height: height, channels: channels,
                pixels: TestImages.bytes(width * height * channels, seed: UInt64(channels)))
            let bytes = try PNGFormat.encode(picture)
            XCTAssertEqual(Array(bytes.prefix(8)), PNGFormat.signature)
            let header = try PNGFormat.header(bytes)
            XCTAssertEqual(header, PNGFormat.Header(width: width, height: height, channels: channels, isPalette: false, is16Bit: false))
            XCTAssertEqual(try PNGFormat.decode(bytes), picture, "\(picture.layoutName) must read back byte for byte")
        }
    }

    func testPaletteFilesWrittenByLibpngExpandThroughTheirPalette() throws {
        let colormap: [UInt8] = [0, 0, 0, 255, 0, 0, 10, 200, 30, 255, 255, 255]  // 4 RGB entries
        let indices: [UInt8] = [0, 1, 2, 3, 3, 2, 1, 0, 2, 2, 0, 1]  // 4 x 3
        let bytes = try TestImages.palettePNG(width: 4, height: 3, indices: indices, colormap: colormap, hasAlpha: false)
        let header = try PNGFormat.header(bytes)
        XCTAssertTrue(header.isPalette, "libpng must have written a colour-mapped file")
        XCTAssertEqual(header.channels, 3)
        let decoded = try PNGFormat.decode(bytes)
        XCTAssertEqual(decoded.pixels, indices.flatMap { colormap[Int($0) * 3..<Int($0) * 3 + 3] })

        let rgba: [UInt8] = [0, 0, 0, 0, 90, 80, 70, 128, 255, 255, 255, 255]  // 3 RGBA entries
        let alphaBytes = try TestImages.palettePNG(width: 3, height: 2, indices: [0, 1, 2, 2, 1, 0], colormap: rgba, hasAlpha: true)
        let withAlpha = try PNGFormat.decode(alphaBytes)
        XCTAssertEqual(withAlpha.channels, 4, "palette transparency becomes alpha")
        XCTAssertEqual(Array(withAlpha.pixels[4..<8]), [90, 80, 70, 128], "palette entry 1 with its alpha")
        let tensor = try withAlpha.tensor(channels: 3)
        XCTAssertEqual(tensor.shape, [1, 3, 2, 3])
        XCTAssertEqual(tensor.storage[1], 90 / 255, accuracy: 0, "alpha is dropped, not composited")
    }

    func testHandBuiltFilesAtOtherBitDepths() throws {
        // 16-bit grey: sample v * 257 is read as v.
        let values: [UInt16] = [0, 257, 128 * 257, 65535, 200 * 257, 3 * 257]
        let rows = stride(from: 0, to: 6, by: 3).map { start in values[start..<start + 3].flatMap { [UInt8($0 >> 8), UInt8($0 & 255)] } }
        let sixteen = TestImages.handBuiltPNG(width: 3, height: 2, bitDepth: 16, colourType: 0, rows: rows)
        XCTAssertTrue(try PNGFormat.header(sixteen).is16Bit)
        XCTAssertEqual(try PNGFormat.decode(sixteen).pixels, values.map { UInt8($0 / 257) })

        // 2-bit grey: 0, 1, 2, 3 scale to 0, 85, 170, 255; 4 pixels in one byte.
        let twoBit = TestImages.handBuiltPNG(width: 4, height: 1, bitDepth: 2, colourType: 0, rows: [[0b00_01_10_11]])
        XCTAssertEqual(try PNGFormat.decode(twoBit).pixels, [0, 85, 170, 255])

        // 8-bit RGB with a tRNS colour: that colour becomes transparent, the others opaque.
        let rgbRows: [[UInt8]] = [[1, 2, 3, 9, 9, 9]]
        let keyed = TestImages.handBuiltPNG(
            width: 2, height: 1, bitDepth: 8, colourType: 2, rows: rgbRows, transparency: [0, 9, 0, 9, 0, 9])
        XCTAssertEqual(try PNGFormat.decode(keyed).pixels, [1, 2, 3, 255, 9, 9, 9, 0])

        // A palette file assembled by hand (colour type 3, 4-bit indices).
        let palette = TestImages.handBuiltPNG(
            width: 2, height: 1, bitDepth: 4, colourType: 3, rows: [[0x10]],
            palette: [5, 6, 7, 50, 60, 70])
        XCTAssertEqual(try PNGFormat.decode(palette).pixels, [50, 60, 70, 5, 6, 7])
    }

    func testChannelConversionRules() throws {
        let grey = PixelImage(width: 2, height: 1, channels: 1, pixels: [51, 255])
        XCTAssertEqual(try grey.tensor(channels: 1).storage, [0.2, 1])
        XCTAssertEqual(try grey.tensor(channels: 3).storage, [0.2, 1, 0.2, 1, 0.2, 1], "grey is copied into R, G and B")
        let greyInColour = PixelImage(width: 2, height: 1, channels: 4, pixels: [7, 7, 7, 0, 9, 9, 9, 255])
        XCTAssertEqual(try greyInColour.tensor(channels: 1).storage, [7, 9].map { Float($0) / 255 })
        let colour = PixelImage(width: 2, height: 1, channels: 3, pixels: [7, 7, 7, 9, 8, 9])
        XCTAssertEqual(try colour.tensor(channels: 3).storage, [7, 9, 7, 8, 7, 9].map { Float($0) / 255 }, "planes R, G, B")
        XCTAssertThrowsError(try colour.tensor(channels: 1, source: "'c.png'")) { error in
            XCTAssertEqual((error as? ImageFileError)?.cause, .invalidData)
            XCTAssertTrue("\(error)".contains("pixel (x 1, y 0) has R, G, B = 9, 8, 9"), "\(error)")
        }
        XCTAssertThrowsError(try grey.tensor(channels: 2))
    }

    func testTensorsAreQuantisedByRounding() {
        let tensor = Tensor(shape: [1, 1, 6], storage: [0, 1.0 / 255, 0.5, 1, -0.3, .nan])
        XCTAssertEqual(PixelImage(tensor: tensor).pixels, [0, 1, 128, 255, 0, 0])
        let values = (0...255).map { Float($0) / 255 }
        XCTAssertEqual(PixelImage(tensor: Tensor(shape: [1, 16, 16], storage: values)).pixels, Array(0...255), "k / 255 gives k back")
    }

    func testCorruptAndTruncatedFilesThrowInsteadOfCrashing() throws {
        let picture = PixelImage(width: 9, height: 6, channels: 3, pixels: TestImages.bytes(162, seed: 9))
        let good = try PNGFormat.encode(picture)
        // Cut inside the final 12-byte IEND chunk every pixel is there: libpng, like most readers, accepts it.
        for length in (good.count - 12)..<good.count {
            XCTAssertEqual(try PNGFormat.decode(Array(good.prefix(length))), picture, "cut at \(length), in IEND")
        }
        for length in 0..<(good.count - 12) {
            XCTAssertThrowsError(try PNGFormat.decode(Array(good.prefix(length)), source: "cut.png"), "cut at \(length)") { error in
                XCTAssertEqual((error as? ImageFileError)?.cause, .invalidData, "cut at \(length): \(error)")
                XCTAssertTrue("\(error)".hasPrefix("'cut.png' "), "\(error)")
            }
        }
        var flipped = good
        flipped[good.count / 2] ^= 0x40  // inside IDAT: its CRC no longer matches
        XCTAssertThrowsError(try PNGFormat.decode(flipped))
        var notPNG = good
        notPNG[1] = UInt8(ascii: "J")
        XCTAssertThrowsError(try PNGFormat.decode(notPNG)) {
            XCTAssertTrue("\($0)".contains("does not start with the PNG signature"), "\($0)")
        }

        // A header announcing 1 000 000 x 1 000 000 pixels is refused before any pixel is allocated.
        let huge = TestImages.handBuiltPNG(width: 1_000_000, height: 1_000_000, bitDepth: 8, colourType: 0, rows: [[0]])
        XCTAssertThrowsError(try PNGFormat.decode(huge)) { XCTAssertTrue("\($0)".contains("more than the"), "\($0)") }
        // Bad IHDR values (bit depth 3, zero width) are libpng errors, reported as messages.
        for bad in [
            TestImages.handBuiltPNG(width: 2, height: 1, bitDepth: 3, colourType: 0, rows: [[0]]),
            TestImages.handBuiltPNG(width: 0, height: 1, bitDepth: 8, colourType: 0, rows: [[]])
        ] {
            XCTAssertThrowsError(try PNGFormat.decode(bad)) { XCTAssertTrue("\($0)".contains("is not a readable PNG"), "\($0)") }
        }
        // Too little IDAT data for the rows the header announces.
        let short = TestImages.handBuiltPNG(width: 4, height: 4, bitDepth: 8, colourType: 0, rows: [[1, 2, 3, 4]])
        XCTAssertThrowsError(try PNGFormat.decode(short, source: nil)) { XCTAssertTrue("\($0)".hasPrefix("the PNG data "), "\($0)") }
    }

    func testWriteIsAtomicAndReadableFromDisk() throws {
        let folder = try TestImages.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("strip.png")
        let picture = PixelImage(width: 3, height: 2, channels: 1, pixels: [0, 50, 100, 150, 200, 250])
        try PNGFormat.write(picture, to: url)
        XCTAssertEqual(try PNGFormat.decode([UInt8](Data(contentsOf: url))), picture)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["strip.png"], "no temporary file is left")
        XCTAssertThrowsError(try PNGFormat.write(picture, to: folder.appendingPathComponent("missing/strip.png"))) {
            XCTAssertEqual(($0 as? ToolkitError)?.cause, .cannotCreate)
        }
    }
}
