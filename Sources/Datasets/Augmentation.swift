import Tensors

/// Label-preserving random changes of training images: a translation by up to
/// `maxShift` pixels in each direction (vacated pixels become 0, the background of
/// MNIST-like data) and, optionally, a horizontal flip with probability 1/2
/// (natural images such as CIFAR-10; never digits).
public struct Augmentation: Sendable, Equatable {
    /// Largest translation in pixels along each axis (0: none).
    public var maxShift: Int
    /// Flip images horizontally with probability 1/2.
    public var horizontalFlip: Bool

    public init(maxShift: Int = 0, horizontalFlip: Bool = false) {
        precondition(maxShift >= 0, "maxShift must be >= 0, got \(maxShift)")
        self.maxShift = maxShift
        self.horizontalFlip = horizontalFlip
    }

    /// No change.
    public static let none = Augmentation()

    /// True when `apply` returns its input unchanged.
    public var isIdentity: Bool { maxShift == 0 && !horizontalFlip }

    /// A short description for metadata and logs, such as `shift 2, flip`.
    public var summary: String {
        isIdentity
            ? "none"
            : [maxShift > 0 ? "shift \(maxShift)" : nil, horizontalFlip ? "flip" : nil]
                .compactMap { $0 }.joined(separator: ", ")
    }

    /// The defaults for images of shape `[C, H, W]`: shift 2 for every image, plus flips for colour images.
    public static func defaults(forImageShape shape: [Int]) -> Augmentation {
        Augmentation(maxShift: 2, horizontalFlip: shape.first == 3)
    }

    /// `images` (`[N, C, H, W]`) with each image shifted and flipped by its own draw from `generator`.
    public func apply(to images: Tensor, using generator: inout SeededGenerator) -> Tensor {
        guard !isIdentity else { return images }
        precondition(images.rank == 4, "augmentation needs [N, C, H, W] images, got \(images.shape)")
        let (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
        let draws: [(dy: Int, dx: Int, flip: Bool)] = (0..<n).map { _ in
            let dy = maxShift > 0 ? Int.random(in: -maxShift...maxShift, using: &generator) : 0
            let dx = maxShift > 0 ? Int.random(in: -maxShift...maxShift, using: &generator) : 0
            let flip = horizontalFlip ? Bool.random(using: &generator) : false
            return (dy, dx, flip)
        }
        var out = Tensor.zeros(images.shape)
        images.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (i, d) in draws.enumerated() {
                    for channel in 0..<c {
                        let plane = (i * c + channel) * h * w
                        // Output row y reads source row y - dy; output column x reads source column x - dx
                        // of the (optionally flipped) image.
                        for y in max(0, d.dy)..<min(h, h + d.dy) {
                            let sy = y - d.dy
                            for x in max(0, d.dx)..<min(w, w + d.dx) {
                                let sx = d.flip ? w - 1 - (x - d.dx) : x - d.dx
                                dst[plane + y * w + x] = src[plane + sy * w + sx]
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
