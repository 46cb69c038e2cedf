import Attacks
import CPNG
import Datasets
import DAFAR
import Foundation
import ImageFiles
import NeuralNetworks
import Tensors

/// Small valid files in each format: the starting corpus of the fuzz targets.
public enum FuzzSeeds {
    /// `[C, H, W]` of the CSV seeds: 2 x 2 images keep lines short, the grammar is the same.
    public static let csvImageShape = [1, 2, 2]

    public static func safetensors() -> [[UInt8]] {
        let mixed = SafetensorsArchive(
            tensors: [
                "w": .float32(Tensor(shape: [2, 3], storage: [0, 1, -1.5, 3e-8, .infinity, 7])),
                "labels": .int64(shape: [2], values: [3, -9]), "mask": .uint8(shape: [3], values: [0, 1, 255]),
                "scalar": .float32(Tensor(shape: [], storage: [2])), "empty": .float32(Tensor(shape: [0, 4], storage: []))
            ],
            metadata: ["format": "seed", "note": "quote \" backslash \\ tab \t é 😀"])
        let plain = SafetensorsArchive(tensors: ["a.weight": .float32(Tensor(shape: [1, 2], storage: [0.5, 0.25]))])
        return [mixed.encoded(), plain.encoded(), SafetensorsArchive().encoded()]
    }

    public static func idx() -> [[UInt8]] {
        let images = idxFile(magic: 0x0803, extents: [3, 4, 5], payload: (0..<60).map { UInt8($0 * 17 % 256) })
        let labels = idxFile(magic: 0x0801, extents: [4], payload: [0, 1, 9, 5])
        return [images, labels, Gzip.compress(images), Gzip.compress(labels)]
    }

    public static func cifar10() -> [[UInt8]] {
        func record(_ label: UInt8, _ salt: Int) -> [UInt8] { [label] + (0..<3072).map { UInt8(($0 * 7 + salt) % 256) } }
        let two = record(3, 0) + record(9, 11)
        return [two, Gzip.compress(record(0, 5))]
    }

    public static func mnistCSV() -> [[UInt8]] {
        let plain = "0,255,17,3,7\n12,0,0,200,0\n"
        let header = "p0,p1,p2,p3,label\r\n1,2,3,4,9\r\n\r\n 5 , 6 ,7.0,8e1,1\r\n"
        return [Array(plain.utf8), Array(header.utf8), Gzip.compress(Array(plain.utf8))]
    }

    public static func adversarialSet() -> [[UInt8]] {
        let clean = Tensor(shape: [2, 1, 2, 2], storage: [0, 0.5, 1, 0.25, 0.75, 0, 0.125, 1])
        let adversarial = Tensor(shape: [2, 1, 2, 2], storage: [0.1, 0.4, 0.9, 0.35, 0.65, 0.1, 0.2, 0.9])
        let scored = AdversarialSet(
            clean: clean, adversarial: adversarial, labels: [3, 7], predictedClean: [3, 7],
            predictedAdversarial: [5, 7], success: [true, false], scoreClean: [0.5, 0.25],
            scoreAdversarial: [2, 0.5], metadata: ["attack": "FGSM", "seed": "0"])
        var unscored = scored
        unscored.scoreClean = nil
        unscored.scoreAdversarial = nil
        return [scored.archive().encoded(), unscored.archive().encoded()]
    }

    public static func detector() -> [[UInt8]] {
        let detector = AnomalyDetector(inputSize: 4, hiddenSizes: [3, 2], norm: .l2, seed: 1)
        let bare = detector.archive(modelHash: String(repeating: "ab", count: 32)).encoded()
        detector.calibration = AnomalyDetector.Calibration(
            statisticsSource: "validation", statistics: ScoreStatistics(mean: 1, standardDeviation: 0.5, count: 10),
            z: 3, thresholdsAtRate: [0.01: 2.5, 0.05: 2])
        return [detector.archive(modelHash: String(repeating: "cd", count: 32)).encoded(), bare]
    }

    /// Model metadata with the first convolution only: loading stops at the first missing tensor,
    /// which keeps inputs small while the metadata checks and the shape check are exercised.
    public static func model() -> [[UInt8]] {
        let network = JointNetwork(architecture: .mnist, seed: 0)
        var archive = network.archive(metadata: ["dataset": "mnist"])
        archive.tensors = archive.tensors.filter { $0.key == "target.features.0.weight" || $0.key == "target.features.0.bias" }
        return [archive.encoded()]
    }

    /// PNGs of every layout libpng writes here: grey, grey + alpha, RGB, RGBA, and a palette file.
    public static func png() -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        for channels in 1...4 {
            let pixels = (0..<(5 * 3 * channels)).map { UInt8($0 * 37 % 256) }
            if let bytes = try? PNGFormat.encode(PixelImage(width: 5, height: 3, channels: channels, pixels: pixels)) {
                seeds.append(bytes)
            }
        }
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = 4
        image.height = 2
        image.format = png_uint_32(PNG_FORMAT_FLAG_COLORMAP) | png_uint_32(PNG_FORMAT_FLAG_COLOR)
        image.colormap_entries = 3
        if let palette = try? PNGFormat.write(
            image, pixels: [0, 1, 2, 1, 2, 0, 0, 1], rowStride: 4, colormap: [0, 0, 0, 200, 10, 30, 255, 255, 255])
        {
            seeds.append(palette)
        }
        return seeds
    }

    /// `.npy` files of both dtypes in the image layouts, and a version 2.0 header.
    public static func npy() -> [[UInt8]] {
        let floats = NPYFormat.encode(.float32(shape: [2, 1, 2, 3], values: (0..<12).map { Float($0) / 11 }))
        let bytes = NPYFormat.encode(.uint8(shape: [2, 3], values: [0, 1, 127, 128, 254, 255]))
        let header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n".utf8)
        let version2 = NPYFormat.magic + [2, 0, UInt8(header.count), 0, 0, 0] + header + [UInt8](repeating: 0, count: 16)
        return [floats, bytes, version2]
    }

    /// `[C, H, W]` the `pixels-json` target reads: small, and every accepted layout fits it.
    public static let pixelsImageShape = [1, 2, 3]

    /// `dafar-serve` JSON bodies: one image as `[H][W]` and `[C][H][W]`, several images, and
    /// numbers in every JSON spelling.
    public static func pixelsJSON() -> [[UInt8]] {
        [
            "{\"pixels\": [[0, 0.5, 1], [1, 0.25, 0]]}",
            "{\"pixels\":[[[0.1,0.2,0.3],[0.4,0.5,0.6]]]}",
            "{ \"images\" : [ [[0,1,0],[1,0,1]] , [[1e-1, 2.5E-1, 0.0], [-0, 1.0e0, 5e-3]] ] }\n",
            "{\"images\": [[[[0.125, 0.375, 0.625], [0.875, 1, 0]]]]}"
        ].map { Array($0.utf8) }
    }

    static func idxFile(magic: UInt32, extents: [UInt32], payload: [UInt8]) -> [UInt8] {
        func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        return bigEndian(magic) + extents.flatMap(bigEndian) + payload
    }

}
