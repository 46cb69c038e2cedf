import Datasets
import Foundation
import NeuralNetworks
import Tensors

/// The image file formats `ImageFileReader` reads.
public enum ImageFileKind: String, CaseIterable, Sendable {
    /// PNG: 8-bit (or 16-bit) grey, grey + alpha, RGB, RGBA or palette, one image per file.
    case png
    /// NumPy `.npy`: float32 in [0, 1] or uint8, `[N, C, H, W]`, `[N, H, W]` or `[H, W]`.
    case npy
    /// safetensors: one named tensor (F32 in [0, 1] or U8) of the `.npy` layouts.
    case safetensors
    /// IDX images (MNIST layout `[N, rows, cols]`), plain or gzip-compressed.
    case idx

    /// The kind of a file: by its first bytes when they are a known signature (PNG, `.npy`,
    /// IDX images, gzip, a safetensors JSON header), else by the name's extension, else nil.
    public static func detect(_ bytes: UnsafeRawBufferPointer, fileName: String) -> ImageFileKind? {
        if PNGFormat.hasSignature(bytes) { return .png }
        if NPYFormat.hasMagic(bytes) { return .npy }
        if bytes.count >= 4 && bytes[0] == 0 && bytes[1] == 0 && bytes[2] == 0x08 && bytes[3] == 0x03 { return .idx }
        if bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B { return .idx }  // the only compressed format read
        if bytes.count >= 9 && bytes[6] == 0 && bytes[7] == 0 && bytes[8] == UInt8(ascii: "{") { return .safetensors }
        return byExtension(fileName)
    }

    /// The kind a file name's extension announces (`.png`, `.npy`, `.safetensors`, `.idx`,
    /// `-ubyte`, also with `.gz`), or nil.
    public static func byExtension(_ fileName: String) -> ImageFileKind? {
        var name = fileName.lowercased()
        if name.hasSuffix(".gz") { name.removeLast(3) }
        if name.hasSuffix(".png") { return .png }
        if name.hasSuffix(".npy") { return .npy }
        if name.hasSuffix(".safetensors") { return .safetensors }
        if name.hasSuffix(".idx") || name.hasSuffix("-ubyte") || name.hasSuffix(".idx3-ubyte") { return .idx }
        return nil
    }
}

/// Reads images from user files (PNG, `.npy`, safetensors, IDX) as `[N, C, H, W]` tensors
/// with values in [0, 1] that fit a model's `[C, H, W]`; nothing is resized.
///
/// ```swift
/// let reader = ImageFileReader()
/// let images = try reader.read(contentsOf: URL(fileURLWithPath: "digit.png"), imageShape: [1, 28, 28])
/// ```
/// Every problem is an `ImageFileError` (or the `ToolkitError` of the underlying
/// safetensors / IDX reader) naming the file: exit 66 when it cannot be read, 65 when its
/// content is bad or does not fit.
public struct ImageFileReader: Sendable {
    /// Safetensors tensors tried in order (adversarial sets of `dafar-attack` hold `x_adv`).
    public var tensorNames: [String]
    /// Files larger than this are refused before being read (default 1 GiB).
    public var maximumFileSize: Int

    /// A reader that takes safetensors tensors named `tensorNames` (first found wins).
    public init(tensorNames: [String] = ["x_adv", "x"], maximumFileSize: Int = 1 << 30) {
        precondition(!tensorNames.isEmpty, "at least one tensor name is needed")
        self.tensorNames = tensorNames
        self.maximumFileSize = maximumFileSize
    }

    /// Reads the images of one file, choosing the format by signature and then by extension.
    /// Messages name the file as `url.relativePath` (the path as the user gave it).
    /// - Parameter imageShape: `[C, H, W]` of the model's images.
    public func read(contentsOf url: URL, imageShape: [Int]) throws -> Tensor {
        let bytes = try readFile(url)
        let kind = bytes.withUnsafeBytes { ImageFileKind.detect($0, fileName: url.lastPathComponent) }
        guard let kind else {
            throw ImageFileError.badContent(
                "'\(url.relativePath)'", "is not a PNG, .npy, safetensors or IDX file (neither its first bytes nor its extension say which)"
            )
        }
        if kind == .idx {
            if let named = ImageFileKind.byExtension(url.lastPathComponent), named != .idx, bytes.count >= 2, bytes[0] == 0x1F,
                bytes[1] == 0x8B
            {
                throw ImageFileError.badContent(
                    "'\(url.relativePath)'",
                    "is gzip-compressed; only IDX files are read compressed, so gunzip this \(named.rawValue) file first")
            }
            let images = try IDXFormat.readImages(from: url)  // plain or gzip; checks extents against the file
            try ImageArrays.checkFits(images.shape, imageShape: imageShape, source: "'\(url.relativePath)'")
            return images
        }
        return try read(bytes: bytes, kind: kind, source: url.relativePath, imageShape: imageShape)
    }

    /// Reads images from bytes in memory (an upload, say): PNG, `.npy` or safetensors.
    /// - Parameters:
    ///   - kind: the format, or nil to tell it by the signature.
    ///   - source: names the data in error messages (nil: `the PNG data`, ...).
    public func read(bytes: [UInt8], kind: ImageFileKind? = nil, source: String? = nil, imageShape: [Int]) throws -> Tensor {
        precondition(imageShape.count == 3, "imageShape is [C, H, W], got \(imageShape)")
        let found = kind ?? bytes.withUnsafeBytes { ImageFileKind.detect($0, fileName: "") }
        switch found {
        case .png?:
            let name = SourceName.of(source, "the PNG data")
            let header = try PNGFormat.header(bytes, source: source)
            guard header.height == imageShape[1] && header.width == imageShape[2] else {
                throw ImageFileError.badContent(
                    name,
                    "is a \(header.width) x \(header.height) PNG ([\(imageShape[0]), \(header.height), \(header.width)] as C, H, W) "
                        + "but the model reads \(imageShape) images; nothing is resized")
            }
            return try PNGFormat.decode(bytes, source: source).tensor(channels: imageShape[0], source: name)
        case .npy?:
            let name = SourceName.of(source, "the .npy data")
            switch try NPYFormat.decode(bytes, source: source) {
            case .float32(let shape, let values):
                return try ImageArrays.images(shape: shape, values: values, imageShape: imageShape, source: name)
            case .uint8(let shape, let values):
                return try ImageArrays.images(shape: shape, bytes: values, imageShape: imageShape, source: name)
            }
        case .safetensors?:
            return try readSafetensors(bytes, source: source, imageShape: imageShape)
        case .idx?:
            throw ImageFileError.badContent(SourceName.of(source, "the data"), "is IDX or gzip data, which is read from files only")
        case nil:
            throw ImageFileError.badContent(SourceName.of(source, "the data"), "is not PNG, .npy or safetensors data (no known signature)")
        }
    }

    private func readSafetensors(_ bytes: [UInt8], source: String?, imageShape: [Int]) throws -> Tensor {
        let name = SourceName.of(source, "the safetensors data")
        let archive: SafetensorsArchive
        do { archive = try SafetensorsArchive(bytes: bytes) } catch let error as SafetensorsError {
            throw source.map { SafetensorsError(error.reason, path: $0, cause: error.cause) } ?? error
        }
        guard let tensorName = tensorNames.first(where: { archive.tensors[$0] != nil }) else {
            let held = archive.tensors.keys.sorted()
            let list = held.isEmpty ? "none" : held.prefix(8).map { "'\($0)'" }.joined(separator: ", ") + (held.count > 8 ? ", ..." : "")
            throw ImageFileError.badContent(
                name, "has no tensor named \(tensorNames.map { "'\($0)'" }.joined(separator: " or ")) (it holds \(list))")
        }
        let label = "\(name) tensor '\(tensorName)'"
        switch archive.tensors[tensorName]! {
        case .float32(let tensor):
            return try ImageArrays.images(shape: tensor.shape, values: tensor.storage, imageShape: imageShape, source: label)
        case .uint8(let shape, let values):
            return try ImageArrays.images(shape: shape, bytes: values, imageShape: imageShape, source: label)
        case .int64: throw ImageFileError.badContent(label, "holds I64 values; images are F32 in [0, 1] or U8")
        }
    }

    /// The whole file: only regular files up to `maximumFileSize` (a FIFO or device is refused
    /// instead of blocking), exit 66 when it cannot be read.
    private func readFile(_ url: URL) throws -> [UInt8] {
        let name = "'\(url.relativePath)'"
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw ImageFileError.noInput(name, "does not exist")
        }
        guard !isDirectory.boolValue else { throw ImageFileError.noInput(name, "is a folder, not a file") }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
            attributes[.type] as? FileAttributeType == .typeRegular
        else {
            throw ImageFileError.noInput(name, "is not a regular file (a pipe, socket or device)")
        }
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        guard size <= maximumFileSize else {
            throw ImageFileError.badContent(name, "has \(size) bytes, more than the \(maximumFileSize) this reader accepts")
        }
        guard size > 0 else { throw ImageFileError.badContent(name, "is empty") }
        do {
            return [UInt8](try Data(contentsOf: url))
        } catch {
            throw ImageFileError.noInput(name, "cannot be read (\(error.localizedDescription))")
        }
    }
}
