import Foundation
import XCTest
@testable import Datasets

final class CIFAR10FormatTests: XCTestCase {
    private var scratch: ScratchDirectory!

    override func setUpWithError() throws { scratch = try ScratchDirectory() }
    override func tearDown() { scratch.remove() }

    /// Five training batches of 2 records and a test batch of 3, in `folder`.
    private func writeBatches(in folder: String, compressFirst: Bool = false) throws {
        for batch in 0..<5 {
            let labels = [UInt8(2 * batch), UInt8(2 * batch + 1)]
            let bytes = Fixture.cifarBatch(labels: labels, firstRecord: 2 * batch)
            try scratch.write(folder + "data_batch_\(batch + 1).bin", batch == 0 && compressFirst ? Gzip.compress(bytes) : bytes)
        }
        try scratch.write(folder + "test_batch.bin", Fixture.cifarBatch(labels: [3, 1, 4], firstRecord: 100))
    }

    private func checkPlanes(_ set: LabeledImages, firstRecord: Int, file: StaticString = #filePath, line: UInt = #line) {
        for record in 0..<set.count {
            for channel in 0..<3 {
                for position in [0, 31, 32, 500, 1023] {
                    let value = set.images.storage[record * 3072 + channel * 1024 + position]
                    let expected = Float(Fixture.cifarPixel(record: firstRecord + record, channel: channel, position: position)) / 255
                    XCTAssertEqual(value, expected, "record \(record) channel \(channel) position \(position)", file: file, line: line)
                }
            }
        }
    }

    func testReadsBatchesFromTheArchiveFolderIntoNCHW() throws {
        try writeBatches(in: "cifar-10-batches-bin/", compressFirst: true)
        let (train, test) = try CIFAR10Format.load(directory: scratch.url)
        XCTAssertEqual(train.images.shape, [10, 3, 32, 32])
        XCTAssertEqual(train.labels, Array(0..<10))
        XCTAssertEqual(test.images.shape, [3, 3, 32, 32])
        XCTAssertEqual(test.labels, [3, 1, 4])
        checkPlanes(train, firstRecord: 0)
        checkPlanes(test, firstRecord: 100)
    }

    func testReadsBatchesFromTheDirectoryItselfThroughTheLoader() throws {
        try writeBatches(in: "")
        let splits = try DatasetLoader.load(.cifar10, dataDirectory: scratch.url, validationFraction: 0)
        XCTAssertEqual(splits.train.count, 10)
        XCTAssertEqual(splits.test.labels, [3, 1, 4])
        XCTAssertEqual(splits.train.imageShape, DatasetName.cifar10.imageShape)
    }

    func testLengthThatIsNotWholeRecords() throws {
        let file = try scratch.write("test_batch.bin", Array(Fixture.cifarBatch(labels: [1, 2], firstRecord: 0).dropLast(5)))
        assertDatasetError(
            try CIFAR10Format.readBatches([file]), kind: .badContent,
            file.path, "has 6141 bytes", "3073-byte CIFAR-10 records")
        let empty = try scratch.write("empty.bin", [])
        assertDatasetError(try CIFAR10Format.readBatches([empty]), kind: .badContent, "is empty")
    }

    func testLabelOutOfRange() throws {
        let file = try scratch.write("test_batch.bin", Fixture.cifarBatch(labels: [1, 10], firstRecord: 0))
        assertDatasetError(try CIFAR10Format.readBatches([file]), kind: .badContent, file.path, "label 10 in record 1")
    }

    func testMissingBatchNamesTheFileAndHowToGetIt() throws {
        try writeBatches(in: "")
        try FileManager.default.removeItem(at: scratch.url.appendingPathComponent("data_batch_3.bin"))
        assertDatasetError(
            try DatasetLoader.load(.cifar10, dataDirectory: scratch.url), kind: .missing,
            "data_batch_3.bin was not found", "data directory")
    }
}
