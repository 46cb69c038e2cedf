import CPNG
import CZlib
import Foundation
@testable import ImageFiles

/// Files in the real formats, built without the code under test: PNG chunks assembled by hand
/// (zlib for IDAT and CRC), palette PNGs through libpng, and a `.npy` file
/// that numpy 2.4 wrote.
enum TestImages {
    /// `np.save` of `np.arange(6, dtype=np.float32).reshape(1, 2, 3) / 8` (numpy 2.4.6, format 1.0).
    static let numpyFloat32 = hex(
        "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028312c20322c2033292c207d"
            + String(repeating: "20", count: 55) + "0a" + "000000000000003e0000803e0000c03e0000003f0000203f")
    /// `np.save` of `np.array([[0, 255], [17, 128]], dtype=np.uint8)`.
    static let numpyUInt8 = hex(
        "934e554d5059010076007b276465736372273a20277c7531272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2032292c207d"
            + String(repeating: "20", count: 58) + "0a" + "00ff1180")

    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    /// A PNG assembled chunk by chunk: IHDR, optional PLTE / tRNS, one IDAT of `rows` (each
    /// row's filter byte 0 is added here), IEND.
    static func handBuiltPNG(
        width: Int, height: Int, bitDepth: UInt8, colourType: UInt8, rows: [[UInt8]],
        palette: [UInt8]? = nil, transparency: [UInt8]? = nil
    ) -> [UInt8] {
        var ihdr = bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        ihdr += [bitDepth, colourType, 0, 0, 0]
        var png = PNGFormat.signature + chunk("IHDR", ihdr)
        if let palette { png += chunk("PLTE", palette) }
        if let transparency { png += chunk("tRNS", transparency) }
        png += chunk("IDAT", zlibCompress(rows.flatMap { [0] + $0 }))
        return png + chunk("IEND", [])
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        let crc = body.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc)
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 255), UInt8(value >> 8 & 255), UInt8(value & 255)]
    }

    static func zlibCompress(_ bytes: [UInt8]) -> [UInt8] {
        var size = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let status = compress(&out, &size, bytes, uLong(bytes.count))
        precondition(status == Z_OK, "zlib compress failed: \(status)")
        return Array(out.prefix(Int(size)))
    }

    /// A palette PNG written by libpng's simplified writer: `indices` `[height, width]` into
    /// `colormap` (RGB or RGBA entries, `hasAlpha`).
    static func palettePNG(width: Int, height: Int, indices: [UInt8], colormap: [UInt8], hasAlpha: Bool) throws -> [UInt8] {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format =
            png_uint_32(PNG_FORMAT_FLAG_COLORMAP) | png_uint_32(PNG_FORMAT_FLAG_COLOR) | png_uint_32(hasAlpha ? PNG_FORMAT_FLAG_ALPHA : 0)
        image.colormap_entries = png_uint_32(colormap.count / (hasAlpha ? 4 : 3))
        return try PNGFormat.write(image, pixels: indices, rowStride: width, colormap: colormap)
    }

    /// Deterministic bytes (a linear congruential generator).
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
    }

    /// A fresh temporary folder.
    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("imagefiles-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
