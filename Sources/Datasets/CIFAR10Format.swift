import Foundation
import Tensors

/// Reader for the CIFAR-10 binary version (`cifar-10-binary.tar.gz`, unpacked).
///
/// Each batch file is a sequence of 3073-byte records: one label byte (0...9),
/// then 1024 red, 1024 green and 1024 blue bytes, each plane row-major 32x32.
/// That is already `[C, H, W]`, so a record's pixels map one-to-one onto NCHW.
/// Batch files may be gzip-compressed (detected by their magic bytes).
public enum CIFAR10Format {
    /// Bytes of one record: label + 3 x 32 x 32 pixels.
    public static let recordSize = 1 + 3 * 32 * 32
    /// The five training batch file names, in order.
    public static let trainingFileNames = (1...5).map { "data_batch_\($0).bin" }
    /// The test batch file name.
    public static let testFileName = "test_batch.bin"
    /// The folder the official archive unpacks to, accepted inside a data directory.
    public static let archiveFolderName = "cifar-10-batches-bin"

    /// Reads batch files and concatenates them in order as `[N, 3, 32, 32]` in [0, 1].
    public static func readBatches(_ urls: [URL], classCount: Int = 10) throws -> LabeledImages {
        precondition(!urls.isEmpty, "readBatches needs at least one file")
        let files = try urls.map { try FileBytes.read($0) }
        var counts = [Int]()
        for file in files {
            guard file.count % recordSize == 0 else {
                throw DatasetError.badContent(
                    file.path,
                    "has \(file.count) bytes, not a whole number of \(recordSize)-byte CIFAR-10 records (truncated or not a CIFAR-10 batch)"
                )
            }
            counts.append(file.count / recordSize)
        }
        let total = counts.reduce(0, +)
        let planeSize = recordSize - 1
        var labels = [Int]()
        labels.reserveCapacity(total)
        let images = try Tensor(shape: [total, 3, 32, 32]) { out in
            var record = 0
            for (file, count) in zip(files, counts) {
                try file.withUnsafeBytes { bytes in
                    let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    switch ByteDecoding.labels(base, count: count, stride: recordSize, classCount: classCount) {
                    case .success(let fileLabels):
                        labels += fileLabels
                    case .failure(let bad):
                        throw DatasetError.badContent(
                            file.path,
                            "has label \(bad.value) in record \(bad.index), outside the class range 0...\(classCount - 1)")
                    }
                    let destination = out + record * planeSize
                    Parallel.forEachChunk(count, minimumPerChunk: 256) { range in
                        for i in range {
                            ByteDecoding.unitFloats(
                                base + i * recordSize + 1, count: planeSize,
                                into: destination + i * planeSize)
                        }
                    }
                }
                record += count
            }
        }
        return LabeledImages(images: images, labels: labels, classCount: classCount)
    }

    /// The directory holding the batch files: `directory` itself, or its
    /// `cifar-10-batches-bin` subfolder when the files are there.
    public static func batchDirectory(in directory: URL) -> URL {
        let nested = directory.appendingPathComponent(archiveFolderName)
        let direct = directory.appendingPathComponent(testFileName).path
        if !FileManager.default.fileExists(atPath: direct)
            && FileManager.default.fileExists(atPath: nested.appendingPathComponent(testFileName).path)
        {
            return nested
        }
        return directory
    }

    /// Reads `data_batch_1.bin` ... `data_batch_5.bin` as the training set and
    /// `test_batch.bin` as the test set from `directory` (or its `cifar-10-batches-bin`).
    public static func load(directory: URL, missingHint: String = "check the path")
        throws -> (train: LabeledImages, test: LabeledImages)
    {
        let folder = batchDirectory(in: directory)
        let names = trainingFileNames + [testFileName]
        for name in names {
            let path = folder.appendingPathComponent(name).path
            if !FileManager.default.fileExists(atPath: path) {
                throw DatasetError.missing(path, hint: missingHint)
            }
        }
        let train = try readBatches(trainingFileNames.map { folder.appendingPathComponent($0) })
        let test = try readBatches([folder.appendingPathComponent(testFileName)])
        return (train, test)
    }
}
