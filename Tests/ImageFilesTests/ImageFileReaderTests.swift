import Datasets
import NeuralNetworks
import Tensors
import ToolkitCore
import XCTest
@testable import ImageFiles

/// Reading user files: the format by signature and extension, each format from disk, shapes
/// that do not fit, and files that cannot be read.
final class ImageFileReaderTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws { folder = try TestImages.temporaryFolder() }
    override func tearDown() { try? FileManager.default.removeItem(at: folder) }

    func write(_ bytes: [UInt8], _ name: String) throws -> URL {
        let url = folder.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    func testFormatBySignatureThenByExtension() throws {
        let png = try PNGFormat.encode(PixelImage(width: 1, height: 1, channels: 1, pixels: [0]))
        let safetensors = SafetensorsArchive(tensors: ["x": .uint8(shape: [1], values: [1])]).encoded()
        let idx: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 1]
        let cases: [([UInt8], String, ImageFileKind?)] = [
            (png, "a.npy", .png), (TestImages.numpyUInt8, "a.png", .npy), (safetensors, "a.bin", .safetensors),
            (idx, "a", .idx), (Gzip.compress(idx), "a", .idx), ([1, 2, 3], "t10k-images-idx3-ubyte", .idx),
            ([1, 2, 3], "A.PNG", .png), ([1, 2, 3], "x.safetensors", .safetensors), ([1, 2, 3], "x.txt", nil)
        ]
        for (bytes, name, kind) in cases {
            XCTAssertEqual(bytes.withUnsafeBytes { ImageFileKind.detect($0, fileName: name) }, kind, name)
        }
    }

    func testEachFormatFromDisk() throws {
        let reader = ImageFileReader()
        let grey = PixelImage(width: 3, height: 2, channels: 1, pixels: [0, 51, 102, 153, 204, 255])
        let png = try write(try PNGFormat.encode(grey), "digit.png")
        XCTAssertEqual(try reader.read(contentsOf: png, imageShape: [1, 2, 3]).storage, [0, 0.2, 0.4, 0.6, 0.8, 1])
        XCTAssertEqual(try reader.read(contentsOf: png, imageShape: [3, 2, 3]).shape, [1, 3, 2, 3])

        let npy = try write(TestImages.numpyFloat32, "x.npy")
        XCTAssertEqual(try reader.read(contentsOf: npy, imageShape: [1, 2, 3]).storage, [0, 0.125, 0.25, 0.375, 0.5, 0.625])

        // An adversarial set: x_adv is read before x; --tensor picks another.
        let set = SafetensorsArchive(tensors: [
            "x": .float32(Tensor(shape: [2, 1, 1, 2], storage: [0, 0, 0, 0])),
            "x_adv": .float32(Tensor(shape: [2, 1, 1, 2], storage: [0.5, 1, 0.25, 0])),
            "y": .int64(shape: [2], values: [1, 2])
        ]).encoded()
        let setURL = try write(set, "fgsm.safetensors")
        XCTAssertEqual(try reader.read(contentsOf: setURL, imageShape: [1, 1, 2]).storage, [0.5, 1, 0.25, 0])
        XCTAssertEqual(try ImageFileReader(tensorNames: ["x"]).read(contentsOf: setURL, imageShape: [1, 1, 2]).storage, [0, 0, 0, 0])
        let onlyX = try write(SafetensorsArchive(tensors: ["x": .uint8(shape: [1, 2], values: [255, 0])]).encoded(), "clean.safetensors")
        XCTAssertEqual(try reader.read(contentsOf: onlyX, imageShape: [1, 1, 2]).storage, [1, 0])
        XCTAssertThrowsError(try ImageFileReader(tensorNames: ["images"]).read(contentsOf: setURL, imageShape: [1, 1, 2])) {
            XCTAssertTrue("\($0)".contains("has no tensor named 'images' (it holds 'x', 'x_adv', 'y')"), "\($0)")
        }
        XCTAssertThrowsError(try ImageFileReader(tensorNames: ["y"]).read(contentsOf: setURL, imageShape: [1, 1, 2])) {
            XCTAssertTrue("\($0)".contains("tensor 'y' holds I64 values"), "\($0)")
        }

        let idxBytes: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 255, 51, 0]
        for (name, bytes) in [("images-idx3-ubyte", idxBytes), ("images-idx3-ubyte.gz", Gzip.compress(idxBytes))] {
            let images = try reader.read(contentsOf: try write(bytes, name), imageShape: [1, 1, 2])
            XCTAssertEqual(images.shape, [2, 1, 1, 2], name)
            XCTAssertEqual(images.storage, [0, 1, 0.2, 0], name)
        }
    }

    func testShapesThatDoNotFitNameBothShapes() throws {
        let reader = ImageFileReader()
        let png = try write(
            try PNGFormat.encode(PixelImage(width: 32, height: 30, channels: 3, pixels: .init(repeating: 0, count: 2880))), "big.png")
        XCTAssertThrowsError(try reader.read(contentsOf: png, imageShape: [1, 28, 28])) { error in
            XCTAssertEqual((error as? ImageFileError)?.cause, .invalidData)
            XCTAssertEqual(
                "\(error)",
                "'\(png.path)' is a 32 x 30 PNG ([1, 30, 32] as C, H, W) but the model reads [1, 28, 28] images; nothing is resized")
        }
        let idx = try write([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 7, 7], "one-idx3-ubyte")
        XCTAssertThrowsError(try reader.read(contentsOf: idx, imageShape: [1, 28, 28])) {
            XCTAssertTrue("\($0)".contains("holds [1, 1, 2] images (C, H, W) but the model reads [1, 28, 28] images"), "\($0)")
        }
    }

    func testFilesThatCannotBeReadAreMissingInputAndBadContentInvalidData() throws {
        let reader = ImageFileReader()
        func status(_ url: URL) -> ErrorCause? {
            do { _ = try reader.read(contentsOf: url, imageShape: [1, 2, 2]); return nil } catch { return (error as? ToolkitError)?.cause }
        }
        XCTAssertEqual(status(folder.appendingPathComponent("missing.png")), .missingInput)
        XCTAssertEqual(status(folder), .missingInput)
        let fifo = folder.appendingPathComponent("fifo.png")
        XCTAssertEqual(mkfifo(fifo.path, 0o600), 0)
        XCTAssertEqual(status(fifo), .missingInput, "a FIFO is refused, not read forever")
        XCTAssertEqual(status(try write([], "empty.png")), .invalidData)
        XCTAssertEqual(status(try write(Array("hello".utf8), "notes.txt")), .invalidData)
        XCTAssertEqual(status(try write(Array(TestImages.numpyUInt8.dropLast()), "cut.npy")), .invalidData)
        let png = try PNGFormat.encode(PixelImage(width: 2, height: 2, channels: 1, pixels: [1, 2, 3, 4]))
        XCTAssertEqual(status(try write(Array(png.dropLast(20)), "cut.png")), .invalidData)
        let set = SafetensorsArchive(tensors: ["x": .float32(Tensor(shape: [1, 2, 2], storage: [0, 0, 0, 0]))]).encoded()
        XCTAssertEqual(status(try write(Array(set.dropLast(3)), "cut.safetensors")), .invalidData)
        XCTAssertEqual(status(try write(Gzip.compress(Array("not idx".utf8)), "odd.gz")), .invalidData)
        XCTAssertThrowsError(
            try reader.read(contentsOf: try write(Gzip.compress(TestImages.numpyUInt8), "x.npy.gz"), imageShape: [1, 2, 2])
        ) {
            XCTAssertTrue(
                "\($0)".hasSuffix("is gzip-compressed; only IDX files are read compressed, so gunzip this npy file first"), "\($0)")
        }
        XCTAssertEqual(try reader.read(contentsOf: try write(set, "ok.safetensors"), imageShape: [1, 2, 2]).shape, [1, 1, 2, 2])
    }

    func testBytesInMemory() throws {
        let reader = ImageFileReader()
        let png = try PNGFormat.encode(PixelImage(width: 2, height: 1, channels: 3, pixels: [255, 0, 0, 0, 255, 0]))
        XCTAssertEqual(try reader.read(bytes: png, imageShape: [3, 1, 2]).storage, [1, 0, 0, 1, 0, 0])
        XCTAssertEqual(
            try reader.read(bytes: TestImages.numpyUInt8, kind: .npy, imageShape: [1, 2, 2]).storage, [0, 1, 17 / 255, 128 / 255])
        XCTAssertThrowsError(try reader.read(bytes: Array(png.prefix(40)), imageShape: [3, 1, 2])) {
            XCTAssertTrue("\($0)".hasPrefix("the PNG data is not a readable PNG"), "\($0)")
        }
        XCTAssertThrowsError(try reader.read(bytes: [1, 2, 3], imageShape: [3, 1, 2])) {
            XCTAssertTrue("\($0)".contains("no known signature"), "\($0)")
        }
    }
}
