import CPNG
import Foundation
import NeuralNetworks
import Tensors
import ToolkitCore

/// PNG reading and writing through libpng's simplified API (`png_image_*`), which reports
/// errors in the `png_image` instead of through `setjmp`/`longjmp`.
///
/// Reading gives the file's own samples at 8 bits: grey, grey + alpha, RGB or RGBA, at any bit
/// depth; palette images are expanded to RGB(A) through their palette (transparency becomes
/// alpha); 1-, 2- and 4-bit grey is scaled to 0...255; 16-bit samples are rounded to 8 bits and
/// read as sRGB (no gamma conversion when the file has no gAMA chunk). A file whose gAMA chunk
/// differs from sRGB is converted to sRGB by libpng. A corrupt or truncated file throws an
/// `ImageFileError`, never traps.
public enum PNGFormat {
    /// The 8 bytes every PNG file starts with.
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Images with more pixels are refused before their pixels are decoded (64 Mi pixels,
    /// 256 MiB as RGBA), so that a small file cannot make the reader allocate gigabytes.
    public static let maximumPixels = 1 << 26

    /// What a PNG file's header announces.
    public struct Header: Equatable, Sendable {
        /// Columns.
        public let width: Int
        /// Rows.
        public let height: Int
        /// Samples per pixel after decoding: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
        public let channels: Int
        /// True for a palette (colour-mapped) file.
        public let isPalette: Bool
        /// True when the file stores 16-bit samples.
        public let is16Bit: Bool
    }

    /// True when `bytes` start with the PNG signature.
    public static func hasSignature(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 8 && zip(bytes.prefix(8), signature).allSatisfy { $0 == $1 }
    }

    /// Reads the header of the PNG in `bytes` (everything before the pixels) without decoding.
    /// - Parameter source: names the data in error messages (a path, or nil for `the PNG data`).
    /// - Throws: `ImageFileError` (65) when the data is not a PNG or its header is corrupt.
    public static func header(_ bytes: [UInt8], source: String? = nil) throws -> Header {
        try bytes.withUnsafeBytes { buffer in
            let image = try ReadSession(buffer, source: SourceName.of(source, "the PNG data"))
            return header(of: image.pointer.pointee)
        }
    }

    /// Decodes the PNG in `bytes` into 8-bit samples (see the type's summary for the rules).
    /// - Throws: `ImageFileError` (65) naming `source` when the data is not a PNG, is truncated
    ///   or corrupt, or has more than `maximumPixels` pixels.
    public static func decode(_ bytes: [UInt8], source: String? = nil) throws -> PixelImage {
        let name = SourceName.of(source, "the PNG data")
        return try bytes.withUnsafeBytes { buffer in
            let session = try ReadSession(buffer, source: name)
            let image = session.pointer
            let found = header(of: image.pointee)
            guard found.width * found.height <= maximumPixels else {
                throw ImageFileError.badContent(
                    name, "declares \(found.width) x \(found.height) pixels, more than the \(maximumPixels) this reader accepts")
            }
            // The file's own layout at 8 bits: no compositing, no colour-map output.
            image.pointee.format =
                png_uint_32(found.channels >= 3 ? PNG_FORMAT_FLAG_COLOR : 0)
                | png_uint_32(found.channels % 2 == 0 ? PNG_FORMAT_FLAG_ALPHA : 0)
            image.pointee.flags |= png_uint_32(PNG_IMAGE_FLAG_16BIT_sRGB)  // 16-bit samples are scaled, not gamma-encoded
            var pixels = [UInt8](repeating: 0, count: found.width * found.height * found.channels)
            let status = pixels.withUnsafeMutableBytes { out in
                png_image_finish_read(image, nil, out.baseAddress, png_int_32(found.width * found.channels), nil)
            }
            guard status != 0, image.pointee.warning_or_error & 3 < 2 else {
                throw ImageFileError.badContent(
                    name, "is not a readable PNG: \(message(of: image, otherwise: "libpng could not decode the pixels"))")
            }
            return PixelImage(width: found.width, height: found.height, channels: found.channels, pixels: pixels)
        }
    }

    /// Encodes an image as PNG bytes (8-bit grey, grey + alpha, RGB or RGBA; an sRGB chunk
    /// records the colour space).
    /// - Throws: `ImageFileError` (65) when libpng refuses the image.
    public static func encode(_ picture: PixelImage) throws -> [UInt8] {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(picture.width)
        image.height = png_uint_32(picture.height)
        image.format =
            png_uint_32(picture.channels >= 3 ? PNG_FORMAT_FLAG_COLOR : 0)
            | png_uint_32(picture.channels % 2 == 0 ? PNG_FORMAT_FLAG_ALPHA : 0)
        return try write(image, pixels: picture.pixels, rowStride: picture.width * picture.channels, colormap: nil)
    }

    /// Writes `picture` to `url` atomically (temporary file, fsync, rename).
    /// - Throws: `ImageFileError` when encoding fails; a `ToolkitError` whose cause is `.cannotCreate` or `.ioFailure`
    ///   when the file cannot be written (the existing file, if any, is left as it was).
    public static func write(_ picture: PixelImage, to url: URL) throws {
        try AtomicFile.write(encode(picture), to: url)
    }

    /// Runs `png_image_write_to_memory` twice (size, then bytes) for a prepared `png_image`
    /// (version, width, height, format; `colormap_entries` for a palette); `pixels` holds `height`
    /// rows of `rowStride` bytes (palette indices when `colormap` is given). Public for tests and
    /// tools that write palette files; `encode` covers ordinary images.
    public static func write(_ prepared: png_image, pixels: [UInt8], rowStride: Int, colormap: [UInt8]?) throws -> [UInt8] {
        // libpng keeps the png_image's address while it works: it must not move between calls.
        let image = UnsafeMutablePointer<png_image>.allocate(capacity: 1)
        image.initialize(to: prepared)
        defer { png_image_free(image); image.deallocate() }
        func failure(_ otherwise: String) -> ImageFileError {
            ImageFileError("cannot encode a \(prepared.width) x \(prepared.height) PNG: \(message(of: image, otherwise: otherwise))")
        }
        var size = 0
        let measured = pixels.withUnsafeBytes { buffer in
            withOptionalBytes(colormap) { png_image_write_to_memory(image, nil, &size, 0, buffer.baseAddress, png_int_32(rowStride), $0) }
        }
        guard measured != 0, size > 0 else { throw failure("libpng refused the image") }
        var bytes = [UInt8](repeating: 0, count: size)
        image.initialize(to: prepared)
        let written = bytes.withUnsafeMutableBytes { out in
            pixels.withUnsafeBytes { buffer in
                withOptionalBytes(colormap) {
                    png_image_write_to_memory(image, out.baseAddress, &size, 0, buffer.baseAddress, png_int_32(rowStride), $0)
                }
            }
        }
        guard written != 0 else { throw failure("libpng failed") }
        return Array(bytes.prefix(size))
    }

    // MARK: - libpng plumbing

    /// One read: a `png_image` at a fixed address (libpng keeps the address between
    /// `png_image_begin_read_from_memory` and `png_image_finish_read`), freed on deinit.
    private final class ReadSession {
        let pointer: UnsafeMutablePointer<png_image>

        /// Begins reading `buffer` (which must outlive the session), after checking the
        /// signature (libpng's own message for a non-PNG is terse).
        init(_ buffer: UnsafeRawBufferPointer, source: String) throws {
            pointer = .allocate(capacity: 1)
            pointer.initialize(to: png_image())
            pointer.pointee.version = png_uint_32(PNG_IMAGE_VERSION)
            guard hasSignature(buffer) else {
                throw ImageFileError.badContent(
                    source,
                    buffer.count < 8
                        ? "is too short to be a PNG (\(buffer.count) bytes)"
                        : "is not a PNG file (it does not start with the PNG signature)")
            }
            guard png_image_begin_read_from_memory(pointer, buffer.baseAddress, buffer.count) != 0 else {
                throw ImageFileError.badContent(
                    source, "is not a readable PNG: \(message(of: pointer, otherwise: "libpng could not read its header"))")
            }
        }

        deinit {
            png_image_free(pointer)
            pointer.deallocate()
        }
    }

    private static func header(of image: png_image) -> Header {
        let format = image.format
        let colour = format & png_uint_32(PNG_FORMAT_FLAG_COLOR) != 0
        let alpha = format & png_uint_32(PNG_FORMAT_FLAG_ALPHA) != 0
        return Header(
            width: Int(image.width), height: Int(image.height), channels: (colour ? 3 : 1) + (alpha ? 1 : 0),
            isPalette: format & png_uint_32(PNG_FORMAT_FLAG_COLORMAP) != 0,
            is16Bit: format & png_uint_32(PNG_FORMAT_FLAG_LINEAR) != 0)
    }

    /// libpng's message in the `png_image` (a NUL-terminated `char[64]`), or `otherwise`.
    private static func message(of image: UnsafeMutablePointer<png_image>, otherwise: String) -> String {
        let text = withUnsafeBytes(of: &image.pointee.message) { raw -> String in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? otherwise : text
    }

    private static func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawPointer?) -> R) -> R {
        guard let bytes else { return body(nil) }
        return bytes.withUnsafeBytes { body($0.baseAddress) }
    }
}
