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
        precondition(
            channels > 0 && kernelHeight > 0 && kernelWidth > 0 && stride > 0 && padding >= 0,
            "invalid convolution geometry: channels \(channels), kernel \(kernelHeight)x\(kernelWidth), stride \(stride), padding \(padding)"
        )
        self.channels = channels
        self.height = height
        self.width = width
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.stride = stride
        self.padding = padding
        precondition(
            outputHeight > 0 && outputWidth > 0,
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
///
/// The public functions split their work across `Parallel.threadCount` threads; the
/// `...Serial` cores do the same on the calling thread (the convolution kernels call
/// them from inside their own per-thread chunks of images).
public enum Im2Col {
    /// Fills `columns` (`[patchSize, images * outputPositions]`) from `input` (`[images, C, H, W]`).
    public static func im2col(
        _ columns: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
        geometry g: ConvolutionGeometry, images: Int
    ) {
        let tasks = g.patchSize &* images
        Parallel.forEachChunk(tasks, minimumPerChunk: max(1, 16384 / max(1, g.outputPositions))) { range in
            im2colRows(columns, input, geometry: g, images: images, tasks: range)
        }
    }

    /// `im2col` on the calling thread. With `outputRows`, only those output rows: `columns` is then
    /// `[patchSize, images * outputRows.count * outputWidth]` (a tile that stays in cache).
    @inlinable
    public static func im2colSerial(
        _ columns: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
        geometry g: ConvolutionGeometry, images: Int, outputRows: Range<Int>? = nil
    ) {
        im2colRows(
            columns, input, geometry: g, images: images, tasks: 0..<(g.patchSize &* images),
            outputRows: outputRows ?? 0..<g.outputHeight)
    }

    /// The rows `(c, kh, kw)` x images `tasks` (task = row * images + image) of `im2col`, for the
    /// output rows `outputRows`.
    @usableFromInline
    static func im2colRows(
        _ columns: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
        geometry g: ConvolutionGeometry, images: Int, tasks: Range<Int>,
        outputRows: Range<Int>? = nil
    ) {
        let ow = g.outputWidth, rows = outputRows ?? 0..<g.outputHeight, positions = rows.count &* ow
        let rowLength = images &* positions
        let (height, width, stride, padding) = (g.height, g.width, g.stride, g.padding)
        for task in tasks {
            let row = task / images, n = task &- row &* images  // row = (c, kh, kw)
            let kw = row % g.kernelWidth
            let kh = (row / g.kernelWidth) % g.kernelHeight
            let c = row / (g.kernelWidth &* g.kernelHeight)
            let plane = input + (n &* g.channels &+ c) &* height &* width  // [H, W]
            let out = columns + (row &* rowLength &+ n &* positions)  // [oh, ow]
            // Output columns x in [x0, x1) read inside the image; the rest is padding.
            let offset = kw &- padding
            let x0 = min(ow, max(0, (-offset + stride - 1) / stride))
            let x1 = max(x0, min(ow, (width &- offset + stride - 1) / stride))
            let firstRow = rows.lowerBound &- padding &+ kh, lastRow = rows.upperBound &- 1 &- padding &+ kh
            if stride == 1 && x0 == 0 && x1 == ow && firstRow >= 0 && lastRow < height {
                // No padding on this tile: every output row is one contiguous span of the plane.
                var src = plane + (firstRow &* width &+ offset), dst = out
                for _ in rows {
                    copySpan(dst, src, count: ow)
                    src += width
                    dst += ow
                }
                continue
            }
            for y in rows {
                let iy = y &* stride &- padding &+ kh
                let dst = out + (y &- rows.lowerBound) &* ow
                if iy < 0 || iy >= height {
                    for x in 0..<ow { dst[x] = 0 }
                    continue
                }
                let src = plane + (iy &* width &+ offset)
                for x in 0..<x0 { dst[x] = 0 }
                if stride == 1 {
                    copySpan(dst + x0, src + x0, count: x1 &- x0)  // a contiguous span
                } else {
                    for x in x0..<x1 { dst[x] = src[x &* stride] }
                }
                for x in x1..<ow { dst[x] = 0 }
            }
        }
    }

    /// Copies `count` floats; eight at a time through unaligned vector loads (im2col copies many
    /// short rows, 8 to 26 floats on MNIST, where a general copy loop spends most of its time
    /// deciding how to copy).
    @inlinable
    static func copySpan(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
        var i = 0
        let (from, to) = (UnsafeRawPointer(src), UnsafeMutableRawPointer(dst))
        while i &+ 8 <= count {
            to.storeBytes(
                of: from.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self), toByteOffset: i &* 4,
                as: SIMD8<Float>.self)
            i &+= 8
        }
        while i < count { dst[i] = src[i]; i &+= 1 }
    }

    /// `dst[i] += src[i]` for `count` floats, eight at a time (see `copySpan`).
    @inlinable
    static func addSpan(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
        var i = 0
        let (from, to) = (UnsafeRawPointer(src), UnsafeMutableRawPointer(dst))
        while i &+ 8 <= count {
            let sum =
                to.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
                + from.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
            to.storeBytes(of: sum, toByteOffset: i &* 4, as: SIMD8<Float>.self)
            i &+= 8
        }
        while i < count { dst[i] += src[i]; i &+= 1 }
    }

    /// Adds `columns` (`[patchSize, images * outputPositions]`) back into `image` (`[images, C, H, W]`).
    /// Accumulates: `image` must hold the values to add to (zero for a fresh gradient).
    public static func col2im(
        _ image: UnsafeMutablePointer<Float>, _ columns: UnsafePointer<Float>,
        geometry g: ConvolutionGeometry, images: Int
    ) {
        let kernelArea = g.kernelHeight &* g.kernelWidth
        Parallel.forEachChunk(images &* g.channels, minimumPerChunk: max(1, 16384 / max(1, g.height &* g.width &* kernelArea))) { range in
            col2imPlanes(image, columns, geometry: g, images: images, planes: range)
        }
    }

    /// `col2im` on the calling thread. With `outputRows`, `columns` holds only those output rows
    /// (`[patchSize, images * outputRows.count * outputWidth]`, as `im2colSerial` writes them).
    @inlinable
    public static func col2imSerial(
        _ image: UnsafeMutablePointer<Float>, _ columns: UnsafePointer<Float>,
        geometry g: ConvolutionGeometry, images: Int, outputRows: Range<Int>? = nil
    ) {
        col2imPlanes(
            image, columns, geometry: g, images: images, planes: 0..<(images &* g.channels),
            outputRows: outputRows ?? 0..<g.outputHeight)
    }

    /// The image planes `planes` (plane = n * channels + c) of `col2im`, for the output rows `outputRows`.
    @usableFromInline
    static func col2imPlanes(
        _ image: UnsafeMutablePointer<Float>, _ columns: UnsafePointer<Float>,
        geometry g: ConvolutionGeometry, images: Int, planes: Range<Int>,
        outputRows: Range<Int>? = nil
    ) {
        let ow = g.outputWidth, rows = outputRows ?? 0..<g.outputHeight, positions = rows.count &* ow
        let rowLength = images &* positions
        let (height, width, stride, padding) = (g.height, g.width, g.stride, g.padding)
        for task in planes {
            let n = task / g.channels, c = task &- n &* g.channels
            let plane = image + task &* height &* width
            for kh in 0..<g.kernelHeight {
                for kw in 0..<g.kernelWidth {
                    let row = (c &* g.kernelHeight &+ kh) &* g.kernelWidth &+ kw
                    let src = columns + (row &* rowLength &+ n &* positions)
                    let offset = kw &- padding
                    let x0 = min(ow, max(0, (-offset + stride - 1) / stride))
                    let x1 = max(x0, min(ow, (width &- offset + stride - 1) / stride))
                    for y in rows {
                        let iy = y &* stride &- padding &+ kh
                        if iy < 0 || iy >= height { continue }
                        let dst = plane + (iy &* width &+ offset), line = src + (y &- rows.lowerBound) &* ow
                        if stride == 1 {
                            addSpan(dst + x0, line + x0, count: x1 &- x0)
                        } else {
                            for x in x0..<x1 { dst[x &* stride] += line[x] }
                        }
                    }
                }
            }
        }
    }

    /// `[images, channels, positions]` -> `[channels, images * positions]`.
    public static func imagesToRows(
        _ rows: UnsafeMutablePointer<Float>, _ images: UnsafePointer<Float>,
        count: Int, channels: Int, positions: Int
    ) {
        Parallel.forEachChunk(count &* channels, minimumPerChunk: max(1, 32768 / max(1, positions))) { range in
            imagesToRows(rows, images, count: count, channels: channels, positions: positions, planes: range)
        }
    }

    /// Planes `planes` (plane = n * channels + c) of `imagesToRows`, on the calling thread. With `mask`
    /// (`[images, channels, positions]`, a ReLU's output), each value is taken as `value * (mask > 0 ? 1 : 0)`.
    @inlinable
    public static func imagesToRows(
        _ rows: UnsafeMutablePointer<Float>, _ images: UnsafePointer<Float>,
        count: Int, channels: Int, positions: Int, planes: Range<Int>,
        mask: UnsafePointer<Float>? = nil
    ) {
        for task in planes {
            let n = task / channels, c = task &- n &* channels
            let dst = rows + (c &* count &+ n) &* positions, src = images + task &* positions
            if let mask {
                ConvolutionKernels.maskedCopy(dst, src, mask: mask + task &* positions, count: positions)
            } else {
                for i in 0..<positions { dst[i] = src[i] }
            }
        }
    }

    /// `[channels, images * positions]` -> `[images, channels, positions]`, adding `bias[c]` when given.
    public static func rowsToImages(
        _ images: UnsafeMutablePointer<Float>, _ rows: UnsafePointer<Float>,
        count: Int, channels: Int, positions: Int, bias: UnsafePointer<Float>?
    ) {
        Parallel.forEachChunk(count &* channels, minimumPerChunk: max(1, 32768 / max(1, positions))) { range in
            rowsToImages(images, rows, count: count, channels: channels, positions: positions, bias: bias, planes: range)
        }
    }

    /// Planes `planes` (plane = n * channels + c) of `rowsToImages`, on the calling thread.
    @inlinable
    public static func rowsToImages(
        _ images: UnsafeMutablePointer<Float>, _ rows: UnsafePointer<Float>,
        count: Int, channels: Int, positions: Int, bias: UnsafePointer<Float>?, planes: Range<Int>
    ) {
        for task in planes {
            let n = task / channels, c = task &- n &* channels
            let dst = images + task &* positions, src = rows + (c &* count &+ n) &* positions
            let b = bias?[c] ?? 0
            for i in 0..<positions { dst[i] = src[i] + b }
        }
    }

    /// How many images to process per GEMM so that the column matrix stays near `budget` floats.
    @inlinable
    public static func chunkSize(images: Int, floatsPerImage: Int, budget: Int = 1 << 22) -> Int {
        max(1, min(images, budget / max(1, floatsPerImage)))
    }
}
