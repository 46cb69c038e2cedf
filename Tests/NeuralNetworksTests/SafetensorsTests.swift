import Foundation
import Tensors
import XCTest
@testable import NeuralNetworks
@testable import ToolkitCore

final class SafetensorsTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("SafetensorsTests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    /// An archive with every dtype, a scalar, an empty tensor, NaN/Inf and awkward metadata.
    private func sampleArchive() -> SafetensorsArchive {
        SafetensorsArchive(
            tensors: [
                "target.features.0.weight": .float32(Tensor(shape: [2, 3], storage: [1, -2, 3.5, 0, 1e-30, -7])),
                "scale": .float32(Tensor(shape: [], storage: [Float.pi])),
                "special": .float32(Tensor(shape: [2], storage: [.infinity, -.infinity])),
                "empty": .float32(Tensor(shape: [0, 3], storage: [])),
                "labels": .int64(shape: [3], values: [0, -1, Int64.max]),
                "mask": .uint8(shape: [2, 2], values: [0, 1, 254, 255])
            ],
            metadata: ["format": "dafar-1", "quote\"and\\slash": "line\nbreak\ttab\u{01}", "ünï": "日本"])
    }

    // MARK: Round trips

    func testRoundTripThroughBytes() throws {
        let archive = sampleArchive()
        let decoded = try SafetensorsArchive(bytes: archive.encoded())
        XCTAssertEqual(decoded, archive, "decoding the encoded bytes must give the same tensors and metadata")
        XCTAssertEqual(try decoded.int64("labels"), [0, -1, Int64.max])
        XCTAssertEqual(try decoded.uint8("mask"), [0, 1, 254, 255])
        XCTAssertEqual(try decoded.float32("target.features.0.weight").shape, [2, 3])
        XCTAssertEqual(decoded.tensors["mask"]?.shape, [2, 2])
    }

    func testRoundTripThroughFileKeepsNaN() throws {
        var archive = sampleArchive()
        archive.tensors["nan"] = .float32(Tensor(shape: [1], storage: [.nan]))
        let url = folder.appendingPathComponent("model.safetensors")
        try archive.write(to: url)
        let decoded = try SafetensorsArchive(contentsOf: url)
        XCTAssertTrue(try decoded.float32("nan").storage[0].isNaN, "NaN is valid data and must survive")
        decoded.tensors.keys.filter { $0 != "nan" }.forEach {
            XCTAssertEqual(decoded.tensors[$0], archive.tensors[$0], "tensor \($0) changed through a file")
        }
        XCTAssertEqual(decoded.metadata, archive.metadata)
        XCTAssertEqual(try Array(Data(contentsOf: url)), archive.encoded(), "the file holds exactly encoded()")
    }

    func testEncodingIsDeterministicSortedAndAligned() throws {
        var first = SafetensorsArchive()
        var second = SafetensorsArchive()
        for name in ["b", "c", "a"] { first.tensors[name] = .uint8(shape: [1], values: Array(name.utf8)) }
        for name in ["a", "c", "b"] { second.tensors[name] = first.tensors[name] }
        first.metadata = ["z": "1", "y": "2"]
        second.metadata = ["y": "2", "z": "1"]
        let bytes = first.encoded()
        XCTAssertEqual(bytes, second.encoded(), "insertion order must not change the bytes")
        XCTAssertEqual(Array(bytes.suffix(3)), Array("abc".utf8), "data must be laid out in sorted-name order")
        let headerLength = Int(bytes[0])
        XCTAssertEqual(headerLength % 8, 0, "the header is padded to a multiple of 8 bytes")
        let header = String(decoding: bytes[8..<(8 + headerLength)], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix(#"{"__metadata__":{"y":"2","z":"1"},"a":"#), header)
    }

    // MARK: Golden bytes

    /// `{"a": float32 [1.0, -2.5]}` with metadata `{"format": "pt"}`, byte by byte (the same
    /// bytes that `safetensors.numpy.save` 0.8.0 writes).
    private let goldenBytes: [UInt8] = {
        let header =
            #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
            + "   "  // 85 + 3 spaces = 88 bytes
        return [0x58, 0, 0, 0, 0, 0, 0, 0]  // 88, little-endian UInt64
            + Array(header.utf8)
            + [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0]  // 1.0, -2.5 little-endian
    }()

    func testGoldenBytes() throws {
        let archive = SafetensorsArchive(
            tensors: ["a": .float32(Tensor(shape: [2], storage: [1.0, -2.5]))],
            metadata: ["format": "pt"])
        XCTAssertEqual(goldenBytes.count, 104)
        XCTAssertEqual(archive.encoded(), goldenBytes, "encoded() differs from the hand-written golden bytes")
        let decoded = try SafetensorsArchive(bytes: goldenBytes)
        XCTAssertEqual(try decoded.float32("a"), Tensor(shape: [2], storage: [1.0, -2.5]))
        XCTAssertEqual(decoded.metadata, ["format": "pt"])
    }

    /// Written by the reference implementation (`safetensors.numpy.save`, 0.8.0), which lays
    /// tensors out by dtype size rather than by name:
    /// labels I64 [[3, -1]], images F32 [0.5, -2, inf], mask U8 [7, 255], metadata dataset=mnist.
    func testReadsReferenceImplementationBytes() throws {
        let hex =
            "d8000000000000007b225f5f6d657461646174615f5f223a7b2264617461736574223a226d6e697374227d2c"
            + "226c6162656c73223a7b226474797065223a22493634222c227368617065223a5b312c325d2c22646174615f"
            + "6f666673657473223a5b302c31365d7d2c22696d61676573223a7b226474797065223a22463332222c227368"
            + "617065223a5b335d2c22646174615f6f666673657473223a5b31362c32385d7d2c226d61736b223a7b226474"
            + "797065223a225538222c227368617065223a5b325d2c22646174615f6f666673657473223a5b32382c3330"
            + "5d7d7d20200300000000000000ffffffffffffffff0000003f000000c00000807f07ff"
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        let archive = try SafetensorsArchive(bytes: bytes)
        XCTAssertEqual(archive.tensors["labels"], .int64(shape: [1, 2], values: [3, -1]))
        XCTAssertEqual(try archive.float32("images"), Tensor(shape: [3], storage: [0.5, -2, .infinity]))
        XCTAssertEqual(archive.tensors["mask"], .uint8(shape: [2], values: [7, 255]))
        XCTAssertEqual(archive.metadata, ["dataset": "mnist"])
    }

    // MARK: Corrupt files

    /// A file with `header` (not padded) followed by `data`.
    private func file(_ header: String, data: [UInt8] = []) -> [UInt8] {
        var bytes: [UInt8] = []
        appendLittleEndian(UInt64(header.utf8.count), to: &bytes)
        return bytes + Array(header.utf8) + data
    }

    private func entry(_ name: String, _ dtype: String = "F32", shape: String = "[1]", offsets: String = "[0,4]") -> String {
        #""\#(name)":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":\#(offsets)}"#
    }

    func testRejectsCorruptFilesWithDistinctMessages() {
        var headerOnly: [UInt8] = []
        appendLittleEndian(UInt64(1) << 40, to: &headerOnly)
        var tooLong: [UInt8] = []
        appendLittleEndian(UInt64(100), to: &tooLong)
        let four = [UInt8](repeating: 0, count: 4)
        let cases: [(String, [UInt8], String)] = [
            ("short file", [1, 2, 3], "3 bytes long, shorter than the 8-byte header length"),
            ("huge header length", headerOnly, "header length 1099511627776 exceeds the limit of 100000000 bytes"),
            ("truncated header", tooLong + [UInt8](repeating: 0x20, count: 10), "header length 100 is larger than the 10 bytes"),
            ("invalid UTF-8", [3, 0, 0, 0, 0, 0, 0, 0, 0x7B, 0xFF, 0x7D], "the header is not valid UTF-8"),
            ("unterminated JSON", file(#"{"a":"#), "not valid JSON (unexpected end of the header"),
            ("text after JSON", file("{} x"), "unexpected text after the JSON value"),
            ("duplicate key", file("{\(entry("a")),\(entry("a"))}", data: four), "duplicate key 'a'"),
            (
                "deep nesting", file(String(repeating: "[", count: 500) + String(repeating: "]", count: 500)),
                "nesting deeper than 64 levels"
            ),
            ("header not an object", file("[1,2]"), "the header is not a JSON object"),
            ("entry not an object", file(#"{"a":3}"#), "the header entry for tensor 'a' is not a JSON object"),
            ("missing field", file(#"{"a":{"dtype":"F32","shape":[1]}}"#), "tensor 'a' has no 'data_offsets' field"),
            (
                "dtype not a string", file(#"{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}"#),
                "tensor 'a' has a dtype that is not a string"
            ),
            (
                "unknown dtype", file("{\(entry("a", "BF16", offsets: "[0,2]"))}", data: [0, 0]),
                "tensor 'a' has unsupported dtype 'BF16'"
            ),
            ("fractional shape", file("{\(entry("a", shape: "[1.5]"))}", data: four), "shape that is not a list of integers"),
            ("negative shape", file("{\(entry("a", shape: "[-1, 2]"))}", data: four), "negative axis in shape [-1, 2]"),
            (
                "overflowing shape", file("{\(entry("a", shape: "[4611686018427387904,4]"))}", data: four),
                "too many elements to count"
            ),
            ("one offset", file("{\(entry("a", offsets: "[0]"))}", data: four), "data_offsets that are not two non-negative integers"),
            (
                "begin after end", file("{\(entry("a", offsets: "[8,4]"))}", data: four + four),
                "data_offsets [8, 4] that begin after they end"
            ),
            (
                "size mismatch", file("{\(entry("a", shape: "[3]", offsets: "[0,8]"))}", data: four + four),
                "occupies 8 bytes but shape [3] of F32 needs 12 bytes"
            ),
            (
                "end beyond buffer", file("{\(entry("a", shape: "[2]", offsets: "[0,8]"))}", data: four),
                "tensor 'a' ends at byte 8, beyond the 4-byte data buffer"
            ),
            (
                "overlap",
                file(
                    "{\(entry("a", shape: "[2]", offsets: "[0,8]")),\(entry("b", shape: "[2]", offsets: "[4,12]"))}",
                    data: four + four + four), "tensors 'a' and 'b' overlap in the data buffer"
            ),
            (
                "inner gap", file("{\(entry("a")),\(entry("b", offsets: "[8,12]"))}", data: four + four + four),
                "gap: bytes 4..<8 before tensor 'b'"
            ),
            ("trailing bytes", file("{\(entry("a"))}", data: four + four), "4 trailing bytes that belong to no tensor"),
            ("metadata not an object", file(#"{"__metadata__":[]}"#), "__metadata__ is not a JSON object"),
            ("metadata number", file(#"{"__metadata__":{"v":1}}"#), "__metadata__ value for 'v' is not a string")
        ]
        var seen = Set<String>()
        for (label, bytes, fragment) in cases {
            XCTAssertTrue(seen.insert(fragment).inserted, "\(label): fragment '\(fragment)' is not distinct")
            XCTAssertThrowsError(try SafetensorsArchive(bytes: bytes), label) { error in
                guard let error = error as? SafetensorsError else { return XCTFail("\(label): \(error) is not a SafetensorsError") }
                XCTAssertTrue(error.description.contains(fragment), "\(label): '\(error.description)' lacks '\(fragment)'")
                XCTAssertEqual(error.cause, .invalidData, label)
            }
        }
        XCTAssertGreaterThanOrEqual(seen.count, 20)
    }

    func testNullMetadataReadsAsEmpty() throws {
        let archive = try SafetensorsArchive(bytes: file(#"{"__metadata__":null}"#))
        XCTAssertEqual(archive, SafetensorsArchive())
    }

    func testFileErrorsNameTheFile() throws {
        let missing = folder.appendingPathComponent("missing.safetensors")
        XCTAssertThrowsError(try SafetensorsArchive(contentsOf: missing)) { error in
            let error = error as! SafetensorsError
            XCTAssertEqual(error.cause, .missingInput)
            XCTAssertEqual(error.description, "Cannot read '\(missing.path)': no such file.")
        }
        XCTAssertThrowsError(try SafetensorsArchive(contentsOf: folder)) { error in
            XCTAssertEqual((error as! SafetensorsError).cause, .missingInput)
            XCTAssertTrue("\(error)".contains("it is a folder, not a file"), "\(error)")
        }
        let corrupt = folder.appendingPathComponent("corrupt.safetensors")
        try Data(goldenBytes.dropLast()).write(to: corrupt)
        XCTAssertThrowsError(try SafetensorsArchive(contentsOf: corrupt)) { error in
            let error = error as! SafetensorsError
            XCTAssertEqual(error.cause, .invalidData)
            XCTAssertEqual(
                error.description,
                "Invalid safetensors file '\(corrupt.path)': "
                    + "tensor 'a' ends at byte 8, beyond the 7-byte data buffer.")
        }
    }

    func testAccessorsNameTheTensor() {
        let archive = sampleArchive()
        XCTAssertThrowsError(try archive.float32("decoder.0.weight")) { error in
            XCTAssertTrue("\(error)".contains("no tensor named 'decoder.0.weight'"), "\(error)")
            let url = URL(fileURLWithPath: "/models/dafar.safetensors")
            XCTAssertTrue(
                (error as! SafetensorsError).inFile(url).description
                    .hasPrefix("Invalid safetensors file '/models/dafar.safetensors': no tensor named"), "\(error)")
        }
        XCTAssertThrowsError(try archive.int64("mask")) { error in
            XCTAssertTrue("\(error)".contains("tensor 'mask' has dtype U8, expected I64"), "\(error)")
        }
        XCTAssertThrowsError(try archive.uint8("labels")) { error in
            XCTAssertTrue("\(error)".contains("tensor 'labels' has dtype I64, expected U8"), "\(error)")
        }
    }

    // MARK: Atomic writes

    private func contents(of folder: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    }

    func testAtomicWriteReplacesExistingFileAndKeepsItsMode() throws {
        let url = folder.appendingPathComponent("out.bin")
        try AtomicFile.write(Array(repeating: 7, count: 100), to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: url.path)
        try AtomicFile.write([1, 2, 3], to: url)
        XCTAssertEqual(try Array(Data(contentsOf: url)), [1, 2, 3], "the old, longer contents must be gone")
        XCTAssertEqual(try contents(of: folder), ["out.bin"], "no temporary file may stay behind")
        let mode = try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o640, "replacing a file keeps its permission bits")
    }

    func testAtomicWriteIntoMissingFolderThrowsAndCreatesNothing() {
        let missingFolder = folder.appendingPathComponent("no/such/folder", isDirectory: true)
        let url = missingFolder.appendingPathComponent("model.safetensors")
        XCTAssertThrowsError(try SafetensorsArchive().write(to: url)) { error in
            let error = error as! FileWriteError
            XCTAssertEqual(error.cause, .cannotCreate)
            XCTAssertTrue(error.description.contains("the folder '\(missingFolder.path)' does not exist"), error.description)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("no").path))
        XCTAssertEqual(try contents(of: folder), [])
    }

    func testFailedAtomicWriteLeavesOldFileAndNoTemporaryFile() throws {
        struct Injected: Error {}
        let url = folder.appendingPathComponent("model.safetensors")
        let old = goldenBytes
        try AtomicFile.write(old, to: url)
        XCTAssertThrowsError(try AtomicFile.write([9, 9, 9], to: url, beforeRename: { throw Injected() })) { error in
            XCTAssertTrue(error is Injected, "the hook's error must come through: \(error)")
        }
        XCTAssertEqual(try Array(Data(contentsOf: url)), old, "a failed write must leave the old file byte-identical")
        XCTAssertEqual(try contents(of: folder), ["model.safetensors"], "the temporary file must be removed")

        // A real failure: the target is a folder.
        let target = folder.appendingPathComponent("taken", isDirectory: true)
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: false)
        XCTAssertThrowsError(try AtomicFile.write([1], to: target)) { error in
            XCTAssertEqual((error as? FileWriteError)?.cause, .cannotCreate, "\(error)")
        }
        XCTAssertEqual(try contents(of: folder), ["model.safetensors", "taken"])
        XCTAssertEqual(try contents(of: target), [])
    }

    // MARK: Parameters

    func testAddAndLoadParameters() throws {
        let weight = Parameter(Tensor(shape: [2, 3], storage: [1, 2, 3, 4, 5, 6]))
        let bias = Parameter(Tensor(shape: [2], storage: [-1, 1]))
        var archive = SafetensorsArchive()
        archive.add([("0.weight", weight), ("0.bias", bias)], prefix: "decoder")
        archive.add([("w", bias)], prefix: "")
        XCTAssertEqual(archive.tensors.keys.sorted(), ["decoder.0.bias", "decoder.0.weight", "w"])

        let decoded = try SafetensorsArchive(bytes: archive.encoded())
        let freshWeight = Parameter(Tensor.zeros([2, 3]))
        let freshBias = Parameter(Tensor.zeros([2]))
        try decoded.load(into: [("0.weight", freshWeight), ("0.bias", freshBias)], prefix: "decoder")
        XCTAssertEqual(freshWeight.value, weight.value)
        XCTAssertEqual(freshBias.value, bias.value)
    }

    func testLoadShapeMismatchNamesBothShapesAndChangesNothing() {
        var archive = SafetensorsArchive()
        archive.add(
            [
                ("bias", Parameter(Tensor(shape: [3], storage: [1, 2, 3]))),
                ("weight", Parameter(Tensor.zeros([2, 3])))
            ], prefix: "target")
        let bias = Parameter(Tensor.zeros([3]))
        let weight = Parameter(Tensor.zeros([3, 2]))
        XCTAssertThrowsError(try archive.load(into: [("bias", bias), ("weight", weight)], prefix: "target")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("tensor 'target.weight' has shape [2, 3] in the archive"), text)
            XCTAssertTrue(text.contains("the parameter has shape [3, 2]"), text)
        }
        XCTAssertEqual(bias.value, Tensor.zeros([3]), "a failed load must not change any parameter")
        XCTAssertThrowsError(try archive.load(into: [("gamma", bias)], prefix: "target")) { error in
            XCTAssertTrue("\(error)".contains("no tensor named 'target.gamma'"), "\(error)")
        }
    }

    // MARK: Hashing

    func testSHA256OfKnownContents() throws {
        let url = folder.appendingPathComponent("abc.txt")
        try Data("abc".utf8).write(to: url)
        XCTAssertEqual(
            try SafetensorsArchive.sha256Hex(of: url),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let empty = folder.appendingPathComponent("empty")
        try Data().write(to: empty)
        XCTAssertEqual(
            try SafetensorsArchive.sha256Hex(of: empty),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertThrowsError(try SafetensorsArchive.sha256Hex(of: folder.appendingPathComponent("nope"))) { error in
            XCTAssertEqual((error as? SafetensorsError)?.cause, .missingInput)
        }
    }
}
