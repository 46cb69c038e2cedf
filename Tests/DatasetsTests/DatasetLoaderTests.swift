import Foundation
import Tensors
import XCTest
@testable import Datasets

final class DatasetLoaderTests: XCTestCase {
    private var scratch: ScratchDirectory!

    override func setUpWithError() throws { scratch = try ScratchDirectory() }
    override func tearDown() { scratch.remove() }

    private func writeMNIST5k(perDigit: Int) throws {
        try scratch.write(DatasetLoader.mnist5kFileName, Gzip.compress(Array(Fixture.mnist5kCSV(perDigit: perDigit).utf8)))
    }

    func testMNIST5kPerDigitHeadTrainsAndTailTests() throws {
        try writeMNIST5k(perDigit: 5)
        let splits = try DatasetLoader.load(.mnist5k, dataDirectory: scratch.url, validationFraction: 0)
        XCTAssertEqual(splits.name, .mnist5k)
        XCTAssertEqual(splits.train.count, 40)
        XCTAssertEqual(splits.test.count, 10)
        XCTAssertEqual(splits.validation.count, 0)
        XCTAssertEqual(splits.train.classCounts, [Int](repeating: 4, count: 10))
        // Digit d's rows are 5d ..< 5d + 5: the last one tests, the first four train,
        // each part ordered round-robin over digits.
        XCTAssertEqual((0..<10).map { Fixture.rowID(splits.test, $0) }, (0..<10).map { 5 * $0 + 4 })
        XCTAssertEqual(splits.test.labels, Array(0..<10))
        XCTAssertEqual((0..<40).map { Fixture.rowID(splits.train, $0) }, (0..<40).map { 5 * ($0 % 10) + $0 / 10 })
        XCTAssertEqual(splits.train.images.shape, [40, 1, 28, 28])
    }

    func testMNIST5kSplitIs400And100For500PerDigit() throws {
        let labels = (0..<5000).map { $0 / 500 }
        let all = LabeledImages(
            images: Tensor(shape: [5000, 1, 1, 1], storage: (0..<5000).map(Float.init)),
            labels: labels, classCount: 10)
        let (train, test) = try DatasetLoader.splitMNIST5k(all, path: "mnist_5k.csv.gz")
        XCTAssertEqual(train.classCounts, [Int](repeating: 400, count: 10))
        XCTAssertEqual(test.classCounts, [Int](repeating: 100, count: 10))
        let testRows = Set(test.images.storage.map { Int($0) })
        XCTAssertEqual(testRows, Set((0..<10).flatMap { digit in (500 * digit + 400)..<(500 * digit + 500) }))
    }

    func testMNIST5kNeedsTwoRowsForEveryDigit() throws {
        var counts = [Int](repeating: 3, count: 10)
        counts[7] = 1
        let file = try scratch.write("few.csv", text: Fixture.perDigitCSV(counts))
        assertDatasetError(
            try DatasetLoader.load(.mnist5k, dataDirectory: file), kind: .badContent,
            file.path, "has 1 row for digit 7", "needs at least 2", "500 per digit")
        counts[7] = 0
        try scratch.write("none.csv", text: Fixture.perDigitCSV(counts))
        assertDatasetError(
            try DatasetLoader.load(.mnist5k, dataDirectory: scratch.url.appendingPathComponent("none.csv")),
            kind: .badContent, "has 0 rows for digit 7")
    }

    func testValidationIsAStratifiedSeededHoldOutOfTraining() throws {
        try writeMNIST5k(perDigit: 10)  // 8 train + 2 test per digit
        let splits = try DatasetLoader.load(.mnist5k, dataDirectory: scratch.url, validationFraction: 0.25, seed: 3)
        XCTAssertEqual(splits.validation.classCounts, [Int](repeating: 2, count: 10))
        XCTAssertEqual(splits.train.classCounts, [Int](repeating: 6, count: 10))
        let trainRows = Set((0..<splits.train.count).map { Fixture.rowID(splits.train, $0) })
        let validationRows = Set((0..<splits.validation.count).map { Fixture.rowID(splits.validation, $0) })
        let testRows = Set((0..<splits.test.count).map { Fixture.rowID(splits.test, $0) })
        XCTAssertTrue(trainRows.isDisjoint(with: validationRows) && trainRows.isDisjoint(with: testRows))
        XCTAssertEqual(trainRows.union(validationRows), Set((0..<100).filter { $0 % 10 < 8 }))

        let again = try DatasetLoader.load(.mnist5k, dataDirectory: scratch.url, validationFraction: 0.25, seed: 3)
        XCTAssertEqual(again.validation.images, splits.validation.images, "same seed, same validation set")
        let other = try DatasetLoader.load(.mnist5k, dataDirectory: scratch.url, validationFraction: 0.25, seed: 4)
        XCTAssertNotEqual(other.validation.images, splits.validation.images, "another seed, another validation set")
    }

    func testInPlaceAndCopyingHoldOutAgreeAndKeepImagesWhole() {
        // Image k is [2k, 2k + 1] with label k % 5.
        func makeSet() -> LabeledImages {
            LabeledImages(
                images: Tensor(shape: [50, 1, 1, 2], storage: (0..<100).map(Float.init)),
                labels: (0..<50).map { $0 % 5 }, classCount: 5)
        }
        let set = makeSet()
        var first = SeededGenerator(seed: 9), second = SeededGenerator(seed: 9)
        let (kept, heldOut) = set.stratifiedSplit(heldOutFraction: 0.3, using: &first)
        var unique = makeSet()
        let removed = unique.removeStratifiedSample(fraction: 0.3, using: &second)
        XCTAssertEqual(unique.images, kept.images)
        XCTAssertEqual(unique.labels, kept.labels)
        XCTAssertEqual(removed.images, heldOut.images)
        XCTAssertEqual(set.count, 50, "the copying form leaves its input alone")
        XCTAssertEqual(heldOut.classCounts, [Int](repeating: 3, count: 5))
        var seen = [Int]()
        for part in [kept, heldOut] {
            for i in 0..<part.count {
                let k = Int(part.images.storage[2 * i]) / 2
                XCTAssertEqual(part.images.storage[2 * i + 1], Float(2 * k + 1), "image \(k) stays whole")
                XCTAssertEqual(part.labels[i], k % 5, "image \(k) keeps its label")
                seen.append(k)
            }
        }
        XCTAssertEqual(seen.sorted(), Array(0..<50))
        XCTAssertEqual(kept.labels.count, 35)
        XCTAssertTrue(zip(seen.prefix(35), seen.prefix(35).dropFirst()).allSatisfy { $0 < $1 }, "kept images stay in order")
    }

    func testLimitKeepsEveryClass() throws {
        try writeMNIST5k(perDigit: 10)
        let ten = try DatasetLoader.load(.mnist5k, dataDirectory: scratch.url, validationFraction: 0.1, limit: 10)
        XCTAssertEqual(ten.train.classCounts, [Int](repeating: 1, count: 10))
        XCTAssertEqual(ten.validation.count, 0, "a class with one image keeps it for training")
        XCTAssertEqual(ten.test.classCounts, [Int](repeating: 1, count: 10))
        let some = try DatasetLoader.load(.mnist5k, dataDirectory: scratch.url, validationFraction: 0.5, limit: 40)
        XCTAssertEqual(some.train.count + some.validation.count, 40)
        XCTAssertEqual(some.validation.classCounts, [Int](repeating: 2, count: 10))
        XCTAssertEqual(some.test.count, 20, "the limit is above the 20 test images")
    }

    func testStratifiedPrefixOfAShuffledSet() {
        let labels = [3, 3, 3, 1, 1, 0, 3, 2]
        let set = LabeledImages(images: Tensor(shape: [8, 1, 1, 1], storage: (0..<8).map(Float.init)), labels: labels, classCount: 4)
        let four = set.stratifiedPrefix(4)
        XCTAssertEqual(four.images.storage, [0, 3, 5, 7], "one per class, in file order")
        XCTAssertEqual(set.stratifiedPrefix(6).labels.sorted(), [0, 1, 1, 2, 3, 3])
        XCTAssertEqual(set.stratifiedPrefix(nil).count, 8)
        XCTAssertEqual(LabeledImages.roundRobin([[0, 1, 2], [], [5]]), [0, 5, 1, 2])
    }

    func testFashionAndFullMNISTFromIDXDirectories() throws {
        let names = DatasetLoader.idxFileNames
        try scratch.write(
            names.trainImages + ".gz", Gzip.compress(Fixture.idxImages(count: 20, rows: 28, columns: 28) { n, _, _ in UInt8(n) }))
        try scratch.write(names.trainLabels, Fixture.idxLabels((0..<20).map { UInt8($0 % 10) }))
        try scratch.write(names.testImages, Fixture.idxImages(count: 10, rows: 28, columns: 28) { n, _, _ in UInt8(100 + n) })
        try scratch.write(names.testLabels + ".gz", Gzip.compress(Fixture.idxLabels((0..<10).map { UInt8(9 - $0) })))
        for name in [DatasetName.fashionMNIST, .mnist] {
            let splits = try DatasetLoader.load(name, dataDirectory: scratch.url, validationFraction: 0.5, seed: 1)
            XCTAssertEqual(splits.train.count, 10)
            XCTAssertEqual(splits.validation.classCounts, [Int](repeating: 1, count: 10))
            XCTAssertEqual(splits.test.labels, Array((0..<10).reversed()))
            XCTAssertEqual(splits.test.images.storage[5 * 784], Float(105) / 255)
            XCTAssertEqual(splits.train.imageShape, name.imageShape)
        }
    }

    func testMissingDataSaysWhichFileAndHowToGetIt() throws {
        assertDatasetError(
            try DatasetLoader.load(.mnist5k, dataDirectory: scratch.url), kind: .missing,
            scratch.url.appendingPathComponent("mnist_5k.csv.gz").path, "`make data`", "data directory")
        assertDatasetError(
            try DatasetLoader.load(.fashionMNIST, dataDirectory: scratch.url), kind: .missing,
            "train-images-idx3-ubyte.gz (or without .gz) was not found", "`make data`", "dataset-fashion-mnist")
        assertDatasetError(
            try DatasetLoader.load(.mnist, dataDirectory: scratch.url), kind: .missing,
            "train-images-idx3-ubyte", "data directory")
        let file = try scratch.write("not-a-directory", text: "x")
        assertDatasetError(
            try DatasetLoader.load(.fashionMNIST, dataDirectory: file), kind: .unreadable,
            file.path, "is a file", "needs a directory")
        XCTAssertTrue(DatasetLoader.missingHint(.mnist5k, given: false).hasPrefix("run `make data`"))
    }

    func testOptionsOutOfRange() throws {
        try writeMNIST5k(perDigit: 5)
        for fraction in [-0.1, 1, .nan] {
            assertDatasetError(
                try DatasetLoader.load(.mnist5k, dataDirectory: scratch.url, validationFraction: fraction),
                kind: .invalidOption, "validation fraction")
        }
        assertDatasetError(try DatasetLoader.load(.mnist5k, dataDirectory: scratch.url, limit: 0), kind: .invalidOption, "limit")
    }

    func testDatasetNames() {
        XCTAssertEqual(DatasetName.allCases.map(\.rawValue), ["mnist5k", "fashion-mnist", "mnist", "cifar10"])
        XCTAssertEqual(DatasetName(rawValue: "fashion-mnist"), .fashionMNIST)
        for name in DatasetName.allCases {
            XCTAssertEqual(name.classCount, 10)
            XCTAssertEqual(Set(name.classNames).count, 10, "\(name) class names are distinct")
        }
        XCTAssertEqual(DatasetName.cifar10.imageShape, [3, 32, 32])
        XCTAssertEqual(DatasetName.fashionMNIST.imageShape, [1, 28, 28])
        XCTAssertEqual(DatasetName.fashionMNIST.classNames[9], "Ankle boot")
        XCTAssertEqual(DatasetName.allCases.filter(\.isFetchedByMakeData), [.mnist5k, .fashionMNIST])
    }
}
