import Tensors

/// An 8-bit image as it comes out of (or goes into) a PNG file: interleaved samples, row-major.
///
/// `channels` is 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA); `pixels` holds
/// `[height, width, channels]` bytes.
public struct PixelImage: Equatable, Sendable {
    /// Columns.
    public let width: Int
    /// Rows.
    public let height: Int
    /// Samples per pixel: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
    public let channels: Int
    /// `[height, width, channels]` samples, 0...255.
    public var pixels: [UInt8]

    /// Wraps samples already laid out as `[height, width, channels]`.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "an image needs at least one pixel, got \(width) x \(height)")
        precondition((1...4).contains(channels), "channels must be 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA), got \(channels)")
        precondition(
            pixels.count == width * height * channels,
            "\(width) x \(height) x \(channels) samples expected, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image from a `[C, H, W]` tensor (C = 1 grey, 3 RGB or 4 RGBA) with values in [0, 1]:
    /// each value becomes `round(255 * v)`, clamped to 0...255 (NaN becomes 0).
    public init(tensor: Tensor) {
        precondition(
            tensor.rank == 3 && [1, 3, 4].contains(tensor.shape[0]),
            "a [C, H, W] tensor with C = 1, 3 or 4 is needed, got \(tensor.shape)")
        let (c, h, w) = (tensor.shape[0], tensor.shape[1], tensor.shape[2])
        var samples = [UInt8](repeating: 0, count: c * h * w)
        tensor.withUnsafeBufferPointer { values in
            for channel in 0..<c {
                for i in 0..<(h * w) {  // i = y * w + x
                    samples[i * c + channel] = Self.byte(values[channel * h * w + i])
                }
            }
        }
        self.init(width: w, height: h, channels: c, pixels: samples)
    }

    /// The one quantisation formula of the writers: `round(255 * v)` clamped to 0...255.
    @inline(__always)
    static func byte(_ value: Float) -> UInt8 {
        guard value > 0 else { return 0 }  // also NaN
        return value >= 1 ? 255 : UInt8((value * 255).rounded())
    }

    /// A name for the layout: `grey`, `grey + alpha`, `RGB`, `RGBA`.
    public var layoutName: String { ["grey", "grey + alpha", "RGB", "RGBA"][channels - 1] }

    /// The image as a `[1, modelChannels, H, W]` tensor with values `byte / 255`.
    ///
    /// Conversion rules (nothing else is converted, nothing is resized):
    /// - alpha is dropped, not composited;
    /// - grey -> grey; grey -> RGB by copying the grey value into R, G and B;
    /// - RGB -> RGB; RGB -> grey only when R = G = B at every pixel (a grey image saved as
    ///   colour), otherwise an error naming the first pixel that differs.
    /// - Throws: `ImageFileError` (65) when the image cannot be given `modelChannels` channels.
    public func tensor(channels modelChannels: Int, source: String = "the image") throws -> Tensor {
        let colour = channels >= 3
        let plane = width * height
        switch (colour, modelChannels) {
        case (_, 1) where colour:
            for i in 0..<plane {
                let r = pixels[i * channels], g = pixels[i * channels + 1], b = pixels[i * channels + 2]
                if r != g || g != b {
                    throw ImageFileError.badContent(
                        source,
                        "is a colour (\(layoutName)) image but the model reads grey images, "
                            + "and pixel (x \(i % width), y \(i / width)) has R, G, B = \(r), \(g), \(b); save it as greyscale")
                }
            }
            fallthrough
        case (false, 1), (_, 3):
            return Tensor(shape: [1, modelChannels, height, width]) { out in  // out: [1, C, H, W]
                for channel in 0..<modelChannels {
                    let sourceChannel = colour ? channel : 0
                    for i in 0..<plane { out[channel * plane + i] = Float(pixels[i * channels + sourceChannel]) / 255 }
                }
            }
        default:
            throw ImageFileError.badContent(
                source,
                "is a \(layoutName) image but the model reads images with \(modelChannels) channels; "
                    + "only 1 (grey) and 3 (RGB) channels are converted")
        }
    }
}
