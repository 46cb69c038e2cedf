import Tensors

/// Turns arrays read from `.npy`, safetensors or IDX files into a batch of images that fits a
/// model: one place for the accepted layouts, the shape check and the value check.
public enum ImageArrays {
    /// The accepted layouts, in words, for error messages.
    static let layouts = "[N, C, H, W], [N, H, W] or [H, W]"

    /// `shape` as `[N, C, H, W]`: rank 4 as it is, `[N, H, W]` as N one-channel images,
    /// `[H, W]` as one one-channel image.
    /// - Throws: `ImageFileError` (65) for another rank or no images.
    public static func batchShape(_ shape: [Int], source: String) throws -> [Int] {
        let batch: [Int]
        switch shape.count {
        case 4: batch = shape
        case 3: batch = [shape[0], 1, shape[1], shape[2]]
        case 2: batch = [1, 1, shape[0], shape[1]]
        default: throw ImageFileError.badContent(source, "holds an array of shape \(shape); images must be \(layouts)")
        }
        guard batch[0] > 0 else { throw ImageFileError.badContent(source, "holds no images (shape \(shape))") }
        return batch
    }

    /// Checks that images `[N, C, H, W]` fit a model reading `imageShape` (`[C, H, W]`); the
    /// message names both shapes. Nothing is ever resized.
    public static func checkFits(_ batch: [Int], imageShape: [Int], source: String) throws {
        let found = Array(batch.dropFirst())
        guard found == imageShape else {
            throw ImageFileError.badContent(
                source, "holds \(found) images (C, H, W) but the model reads \(imageShape) images; nothing is resized")
        }
    }

    /// Float values in `[N, C, H, W]` order as images fitting `imageShape`; every value must be
    /// finite and in [0, 1].
    /// - Throws: `ImageFileError` (65) for a shape that does not fit or a value out of range,
    ///   naming its position.
    public static func images(shape: [Int], values: [Float], imageShape: [Int], source: String) throws -> Tensor {
        let batch = try batchShape(shape, source: source)
        try checkFits(batch, imageShape: imageShape, source: source)
        precondition(values.count == batch.elementCount, "\(values.count) values for shape \(shape)")
        if let bad = values.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
            throw ImageFileError.badContent(
                source, "has value \(values[bad]) at \(position(bad, in: batch)); pixel values must be numbers in [0, 1]")
        }
        return Tensor(shape: batch, storage: values)
    }

    /// Byte values in `[N, C, H, W]` order as images fitting `imageShape`, each `byte / 255`.
    /// - Throws: `ImageFileError` (65) when the shape does not fit.
    public static func images(shape: [Int], bytes: [UInt8], imageShape: [Int], source: String) throws -> Tensor {
        let batch = try batchShape(shape, source: source)
        try checkFits(batch, imageShape: imageShape, source: source)
        precondition(bytes.count == batch.elementCount, "\(bytes.count) values for shape \(shape)")
        return Tensor(shape: batch) { out in
            for i in 0..<bytes.count { out[i] = Float(bytes[i]) / 255 }
        }
    }

    /// `[n, c, y, x]` of the flat index `index` in a `[N, C, H, W]` batch.
    static func position(_ index: Int, in batch: [Int]) -> String {
        var rest = index
        var coordinates: [Int] = []
        for extent in batch.reversed() {
            coordinates.append(rest % extent)
            rest /= extent
        }
        return "[" + coordinates.reversed().map(String.init).joined(separator: ", ") + "] (N, C, H, W)"
    }
}
