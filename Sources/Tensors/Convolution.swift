/// The geometry of a 2-D convolution seen from its (larger) image side.
///
/// `channels x height x width` is the image that `im2col` reads and `col2im`
/// writes; the kernel slides over it with `stride` and zero `padding` on every
/// side. The output size formula lives here and nowhere else.
public struct ConvolutionGeometry: Equatable, Sendable {
    public let channels: Int
    public let height: Int
    public let width: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let padding: Int

    public init(channels: Int, height: Int, width: Int, kernelHeight: Int, kernelWidth: Int, stride: Int = 1, padding: Int = 0) {
        precondition(channels > 0 && kernelHeight > 0 && kernelWidth > 0 && stride > 0 && padding >= 0,
                     "invalid convolution geometry: channels \(channels), kernel \(kernelHeight)x\(kernelWidth), stride \(stride), padding \(padding)")
        self.channels = channels
        self.height = height
        self.width = width
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.stride = stride
        self.padding = padding
        precondition(outputHeight > 0 && outputWidth > 0,
                     "a \(kernelHeight)x\(kernelWidth) kernel with stride \(stride) and padding \(padding) does not fit a \(height)x\(width) image")
    }

    /// `floor((input + 2 * padding - kernel) / stride) + 1`: the one output-size formula.
    @inlinable
    public static func outputSize(input: Int, kernel: Int, stride: Int, padding: Int) -> Int {
        let span = input + 2 * padding - kernel
        return span < 0 ? 0 : span / stride + 1
    }

    public var outputHeight: Int { Self.outputSize(input: height, kernel: kernelHeight, stride: stride, padding: padding) }
    public var outputWidth: Int { Self.outputSize(input: width, kernel: kernelWidth, stride: stride, padding: padding) }
    /// Rows of the column matrix: `channels * kernelHeight * kernelWidth`.
    public var patchSize: Int { channels * kernelHeight * kernelWidth }
    /// Output positions per image: `outputHeight * outputWidth`.
    public var outputPositions: Int { outputHeight * outputWidth }
    /// Elements of one image: `channels * height * width`.
    public var imageSize: Int { channels * height * width }
}

/// Batched im2col / col2im (Caffe's scheme, batched along the column axis).
///
/// The column matrix of `images` images is `[patchSize, images * outputPositions]`:
/// row `(c, kh, kw)`, column `n * outputPositions + oh * outputWidth + ow`.
public enum Im2Col {
    /// Fills `columns` (`[patchSize, images * outputPositions]`) from `input` (`[images, C, H, W]`).
    public static func im2col(_ columns: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                              geometry g: ConvolutionGeometry, images: Int) {
        let oh = g.outputHeight, ow = g.outputWidth, positions = oh &* ow
        let rowLength = images &* positions
        let tasks = g.patchSize &* images
        Parallel.forEachChunk(tasks, minimumPerChunk: max(1, 16384 / max(1, positions))) { range in
            for task in range {
                let row = task / images, n = task &- row &* images           // row = (c, kh, kw)
                let kw = row % g.kernelWidth
                let kh = (row / g.kernelWidth) % g.kernelHeight
                let c = row / (g.kernelWidth &* g.kernelHeight)
                let plane = input + (n &* g.channels &+ c) &* g.height &* g.width // [H, W]
                let out = columns + (row &* rowLength &+ n &* positions)           // [oh, ow]
                for y in 0..<oh {
                    let iy = y &* g.stride &- g.padding &+ kh
                    let dst = out + y &* ow
                    if iy < 0 || iy >= g.height {
                        dst.update(repeating: 0, count: ow)
                        continue
                    }
                    let src = plane + iy &* g.width
                    if g.stride == 1 {
                        // Contiguous span: x in [x0, x1) reads src[x - padding + kw].
                        let offset = kw &- g.padding
                        let x0 = max(0, -offset), x1 = min(ow, g.width &- offset)
                        if x0 > 0 { dst.update(repeating: 0, count: min(x0, ow)) }
                        if x1 > x0 { (dst + x0).update(from: src + (x0 &+ offset), count: x1 &- x0) }
                        if x1 < ow { (dst + max(x1, x0)).update(repeating: 0, count: ow &- max(x1, x0)) }
                    } else {
                        for x in 0..<ow {
                            let ix = x &* g.stride &- g.padding &+ kw
                            dst[x] = (ix >= 0 && ix < g.width) ? src[ix] : 0
                        }
                    }
                }
            }
        }
    }

    /// Adds `columns` (`[patchSize, images * outputPositions]`) back into `image` (`[images, C, H, W]`).
    /// Accumulates: `image` must hold the values to add to (zero for a fresh gradient).
    public static func col2im(_ image: UnsafeMutablePointer<Float>, _ columns: UnsafePointer<Float>,
                              geometry g: ConvolutionGeometry, images: Int) {
        let oh = g.outputHeight, ow = g.outputWidth, positions = oh &* ow
        let rowLength = images &* positions
        let kernelArea = g.kernelHeight &* g.kernelWidth
        Parallel.forEachChunk(images &* g.channels, minimumPerChunk: max(1, 16384 / max(1, g.height &* g.width &* kernelArea))) { range in
            for task in range {
                let n = task / g.channels, c = task &- n &* g.channels
                let plane = image + task &* g.height &* g.width
                for kh in 0..<g.kernelHeight {
                    for kw in 0..<g.kernelWidth {
                        let row = (c &* g.kernelHeight &+ kh) &* g.kernelWidth &+ kw
                        let src = columns + (row &* rowLength &+ n &* positions)
                        for y in 0..<oh {
                            let iy = y &* g.stride &- g.padding &+ kh
                            if iy < 0 || iy >= g.height { continue }
                            let dst = plane + iy &* g.width
                            let line = src + y &* ow
                            if g.stride == 1 {
                                let offset = kw &- g.padding
                                let x0 = max(0, -offset), x1 = min(ow, g.width &- offset)
                                if x1 > x0 {
                                    let d = dst + (x0 &+ offset), s = line + x0
                                    for x in 0..<(x1 &- x0) { d[x] += s[x] }
                                }
                            } else {
                                for x in 0..<ow {
                                    let ix = x &* g.stride &- g.padding &+ kw
                                    if ix >= 0 && ix < g.width { dst[ix] += line[x] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `[images, channels, positions]` -> `[channels, images * positions]`.
    public static func imagesToRows(_ rows: UnsafeMutablePointer<Float>, _ images: UnsafePointer<Float>,
                                    count: Int, channels: Int, positions: Int) {
        Parallel.forEachChunk(count &* channels, minimumPerChunk: max(1, 32768 / max(1, positions))) { range in
            for task in range {
                let n = task / channels, c = task &- n &* channels
                (rows + (c &* count &+ n) &* positions).update(from: images + task &* positions, count: positions)
            }
        }
    }

    /// `[channels, images * positions]` -> `[images, channels, positions]`, adding `bias[c]` when given.
    public static func rowsToImages(_ images: UnsafeMutablePointer<Float>, _ rows: UnsafePointer<Float>,
                                    count: Int, channels: Int, positions: Int, bias: UnsafePointer<Float>?) {
        Parallel.forEachChunk(count &* channels, minimumPerChunk: max(1, 32768 / max(1, positions))) { range in
            for task in range {
                let n = task / channels, c = task &- n &* channels
                let dst = images + task &* positions, src = rows + (c &* count &+ n) &* positions
                if let bias {
                    let b = bias[c]
                    for i in 0..<positions { dst[i] = src[i] + b }
                } else {
                    dst.update(from: src, count: positions)
                }
            }
        }
    }

    /// How many images to process per GEMM so that the column matrix stays near `budget` floats.
    @inlinable
    public static func chunkSize(images: Int, floatsPerImage: Int, budget: Int = 1 << 22) -> Int {
        max(1, min(images, budget / max(1, floatsPerImage)))
    }
}
