import Foundation
import _ConvKernels

/// 3x3, stride-1 convolutions computed directly from the (zero-padded) images, without im2col: the
/// AVX-512 or AVX2 + FMA3 kernel of `_ConvKernels` (`conv3x3.h`, the best the CPU has, chosen at run
/// time), image by image, split across threads.
///
/// One kernel serves four passes, each a "valid" convolution of a padded input (`p` the layer's padding):
/// - convolution forward: `x [N, C, H, W]` with `W [O, C, 3, 3]`, padding `p`;
/// - convolution input gradient: `dY [N, O, OH, OW]` with `W` read as `[C, O]` and rotated, padding `2 - p`;
/// - transposed convolution forward: `x [N, I, H, W]` with `W [I, O, 3, 3]` rotated, padding `2 - p`;
/// - transposed convolution input gradient: `dY [N, O, OH, OW]` with `W [I, O, 3, 3]` as is, padding `p`.
///
/// A second kernel with the same register tile (16 output channels x 6 columns `(c, ky, kx)`) gives the
/// weight gradients (`accumulateWeightGradients`): a convolution's
/// `dW[o, c, ky, kx] = sum_{n, y, x} dY[n, o, y, x] * x[n, c, y + ky - padding, x + kx - padding]`, and a
/// transposed convolution's the same with the roles of x and dY swapped.
///
/// Layers with ONE channel on one side (the first layer of an image network, 1 -> O, and the last layer of a
/// decoder, C -> 1) take the kernels of `conv3x3_one_channel.h` instead, which put neighbouring output
/// positions rather than output channels in a vector: `1 -> O` keeps the nine shifted input rows in
/// registers and broadcasts each weight; `C -> 1` sums a tile of output rows over the channels; the weight
/// gradient with one input channel sums 16 lanes of positions per weight and adds the lanes pairwise.
///
/// The forward and input-gradient passes of layers with at least 8 channels in and 16 out, whose outputs are at
/// least 6 x 6, go through Winograd's F(2x2, 3x3) instead (`conv3x3_winograd.h`, `usesWinograd`): 2.25 times
/// fewer multiplications, the same register tiles for its 16 matrix products, and outputs within about 1e-7
/// (relative to the largest) of the direct kernel's; so do their weight gradients in batches of at least 4
/// images per chunk (`usesWinogradWeightGradient`); `DAFAR_CONV3X3_WINOGRAD=off` keeps the direct kernel.
///
/// Every output value is summed in the same order whatever the thread count and the batch, so results
/// are bit-for-bit reproducible and a batch gives the same values as its images one by one (weight
/// gradients: summed per chunk of images, chunks in order, as `ConvolutionPasses` does). Other
/// geometries, layers with 2 to 7 channels in or 2 to 15 out (and none of them 1), and CPUs without AVX2
/// or FMA3 take the im2col path. The AVX-512 and AVX2 kernels perform the same FMAs in the same order, so
/// they give the same bits.
enum DirectConvolution {
    /// The kernels' instruction sets (`CONV3X3_ISA_...` of `conv3x3.h`), in increasing order.
    enum InstructionSet: Int32, Comparable, CaseIterable, CustomStringConvertible {
        /// AVX2 + FMA3: tiles of 16 output channels x 6 positions in 12 ymm registers.
        case avx2 = 1
        /// AVX-512F: tiles of 32 output channels x 12 positions in 24 zmm registers.
        case avx512 = 2

        static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

        var description: String { self == .avx2 ? "AVX2" : "AVX-512" }
    }

    /// The best instruction set of this CPU; nil without AVX2 and FMA3.
    static let bestInstructionSet = InstructionSet(rawValue: conv3x3_best_isa())

    /// The CPU runs the kernel (AVX2 and FMA3).
    static var isSupported: Bool { bestInstructionSet != nil }

    /// The instruction sets this CPU runs, for tests that exercise each.
    static var supportedInstructionSets: [InstructionSet] {
        InstructionSet.allCases.filter { isa in bestInstructionSet.map { isa <= $0 } ?? false }
    }

    /// The instruction set the kernels use: `bestInstructionSet`, or `.avx2` when the environment sets
    /// `DAFAR_CONV3X3_ISA=avx2` (to measure the two in one binary); tests set it to compare the two.
    nonisolated(unsafe) static var instructionSet = defaultInstructionSet()

    /// `bestInstructionSet` (AVX2 without one), or AVX2 when `environment` sets `DAFAR_CONV3X3_ISA=avx2`.
    static func defaultInstructionSet(environment: [String: String] = ProcessInfo.processInfo.environment) -> InstructionSet {
        let best = bestInstructionSet ?? .avx2
        return environment["DAFAR_CONV3X3_ISA"] == "avx2" ? min(best, .avx2) : best
    }

    /// Off: every convolution takes the im2col path (for tests that compare the two).
    nonisolated(unsafe) static var isEnabled = true

    /// Off: layers with one channel on a side take the im2col path (the kernels of `conv3x3.h` still run);
    /// off when the environment sets `DAFAR_CONV3X3_ONE_CHANNEL=off`, to measure the two in one binary.
    nonisolated(unsafe) static var isOneChannelEnabled = defaultOneChannelEnabled()

    /// Whether `environment` leaves the one-channel kernels on (`DAFAR_CONV3X3_ONE_CHANNEL` is not `off`).
    static func defaultOneChannelEnabled(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment["DAFAR_CONV3X3_ONE_CHANNEL"] != "off"
    }

    /// On: the passes that `usesWinograd` names, and the weight gradients that `usesWinogradWeightGradient`
    /// names, go through Winograd's F(2x2, 3x3) (`conv3x3_winograd.h`) instead of the direct kernel. Off when
    /// the environment sets `DAFAR_CONV3X3_WINOGRAD=off`: the direct kernel's bits (those of builds before
    /// Winograd; the two differ in the last bits, about 1e-7 of the largest output), and to measure the two in
    /// one binary.
    nonisolated(unsafe) static var isWinogradEnabled = defaultWinogradEnabled()

    /// Whether `environment` leaves Winograd on (`DAFAR_CONV3X3_WINOGRAD` is not `off`).
    static func defaultWinogradEnabled(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment["DAFAR_CONV3X3_WINOGRAD"] != "off"
    }

    /// Whether a pass of the multi-channel kernel (`applies`, not one channel on a side) with an output of
    /// `outputHeight x outputWidth` goes through Winograd's F(2x2, 3x3) (`conv3x3_winograd.h`): 2.25 times
    /// fewer multiplications for the cost of transforming inputs and outputs, which pays from about 6 x 6
    /// outputs on (below, the transforms cost more than the products save). The choice depends on the
    /// layer's shape only, never on the batch, so an image has the same bits alone and in any batch.
    static func usesWinograd(outputHeight: Int, outputWidth: Int) -> Bool {
        isWinogradEnabled && min(outputHeight, outputWidth) >= minimumWinogradSide
    }

    /// The smallest output side for which `usesWinograd` chooses Winograd.
    static let minimumWinogradSide = 6

    /// Whether the unmasked passes of the largest layers go through Winograd's F(4x4, 3x3) (`conv3x3_winograd4.h`,
    /// see `usesWinograd4`). Off when the environment sets `DAFAR_CONV3X3_WINOGRAD4=off`: F(2x2, 3x3) for every
    /// Winograd layer (the bits of builds before F(4x4, 3x3)), and to measure the two in one binary.
    nonisolated(unsafe) static var isWinograd4Enabled = defaultWinograd4Enabled()

    /// Whether `environment` leaves F(4x4, 3x3) on (`DAFAR_CONV3X3_WINOGRAD4` is not `off`).
    static func defaultWinograd4Enabled(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        environment["DAFAR_CONV3X3_WINOGRAD4"] != "off"
    }

    /// Whether a Winograd pass (`usesWinograd`) without a mask on its input (a forward pass, or the input gradient
    /// of a layer whose input has no ReLU) goes through F(4x4, 3x3) rather than F(2x2, 3x3): 36 multiplications per
    /// 16 outputs instead of 64, for larger transforms and transformed weights 2.25 times as large. It pays for
    /// outputs of at least `minimumWinograd4Side` on each side (one image at a time on one thread, a Zen 4: the
    /// MNIST network's E.2, 26 x 26 -> 24 x 24 with 32 x 32 channels, 1.34x faster with AVX-512 and 1.27x with AVX2;
    /// D.6, 24 x 24 -> 26 x 26, 1.31x and 1.22x). Below, at most 1.0-1.4x on one thread, and as the 64-channel
    /// layers' transformed weights (590 KB) are read for a few tiles each, slower in the whole network: E.7 and D.3
    /// (8 x 8 and 12 x 12 outputs) through it too made batch-1 inference on two threads 2.4 % slower (alternating
    /// in one process) for 2-3 % at batch 128; E.5 and D.1 (10 x 10, three quarters of whose 12 x 12 tiles are
    /// outputs) 0.86-1.0x alone.
    /// The choice depends on the layer's shape only, never on the batch or the instruction set, so an image has
    /// the same bits alone and in any batch, on AVX2 and on AVX-512.
    static func usesWinograd4(outputHeight: Int, outputWidth: Int) -> Bool {
        isWinograd4Enabled && usesWinograd(outputHeight: outputHeight, outputWidth: outputWidth)
            && min(outputHeight, outputWidth) >= minimumWinograd4Side
    }

    /// The smallest output side for which `usesWinograd4` chooses F(4x4, 3x3) (tests lower it to run their small
    /// images through it).
    nonisolated(unsafe) static var minimumWinograd4Side = defaultMinimumWinograd4Side

    /// `minimumWinograd4Side` as built.
    static let defaultMinimumWinograd4Side = 20

    /// Whether the weight gradient of a multi-channel pass (`usesWinograd` for its output) over `images` images
    /// split into `chunks` (`accumulateWeightGradients`) goes through F(2x2, 3x3)'s transpose
    /// (`conv3x3_winograd_weight_gradient`): with at least `minimumWinogradImagesPerChunk` images per chunk on
    /// average, as each chunk's sums are transformed once (below, the transform costs more than the products
    /// save). The choice depends on the batch's size and the layer's shape only (not the thread count).
    static func usesWinogradWeightGradient(outputHeight: Int, outputWidth: Int, images: Int, chunks: Int) -> Bool {
        usesWinograd(outputHeight: outputHeight, outputWidth: outputWidth) && images >= minimumWinogradImagesPerChunk * chunks
    }

    /// The fewest images per chunk (on average) for which `usesWinogradWeightGradient` chooses Winograd (tests
    /// lower it to run their small batches through it).
    nonisolated(unsafe) static var minimumWinogradImagesPerChunk = defaultMinimumWinogradImagesPerChunk

    /// `minimumWinogradImagesPerChunk` as built.
    static let defaultMinimumWinogradImagesPerChunk = 4

    /// Whether a direct kernel computes a pass of `g` that reads `inputs` channels and writes `outputs`
    /// (3x3, stride 1, padding at most 2 as the input-gradient passes pad with `2 - padding`): at least 8
    /// channels in and 16 out (`conv3x3.h`, below which its vector lanes go unused and im2col + GEMM is
    /// faster), or one channel in or out (`conv3x3_one_channel.h`).
    static func applies(_ g: ConvolutionGeometry, inputs: Int, outputs: Int) -> Bool {
        fits(g) && (inputs >= minimumInputs && outputs >= minimumOutputs || isOneChannel(inputs: inputs, outputs: outputs))
    }

    /// Whether a direct kernel computes the weight gradient of the convolution `g` (input side) with
    /// `outputs` output channels: as `applies`, but with one channel only on the input side (a weight
    /// gradient with one output channel and 2 to 7 input channels takes im2col + GEMM).
    static func appliesToWeightGradient(_ g: ConvolutionGeometry, outputs: Int) -> Bool {
        fits(g) && (g.channels >= minimumInputs && outputs >= minimumOutputs || g.channels == 1 && isOneChannelEnabled)
    }

    /// The geometry the direct kernels take (and the kernels' switch and CPU).
    private static func fits(_ g: ConvolutionGeometry) -> Bool {
        isEnabled && isSupported && g.kernelHeight == 3 && g.kernelWidth == 3 && g.stride == 1 && g.padding <= 2
    }

    /// One channel on one side: the kernels of `conv3x3_one_channel.h` (positions in the vector lanes).
    static func isOneChannel(inputs: Int, outputs: Int) -> Bool { isOneChannelEnabled && (inputs == 1 || outputs == 1) }

    /// The fewest input and output channels for which `applies` chooses the direct kernel.
    static let minimumInputs = 8, minimumOutputs = 16

    /// `output [N, O, H + 2p - 2, W + 2p - 2]` = `relu?(bias + W * pad(input * (mask > 0)))`.
    ///
    /// `input`, `mask`: `[N, C, H, W]`; `weight`: `[O, C, 3, 3]`, or `[C, O, 3, 3]` read rotated by
    /// 180 degrees when `rotated`; `bias`: `[O]`. `pool` (nil: none): the output's 2 x 2 max pooling
    /// (`max_pool_2x2`, `[N, O, OH / 2, OW / 2]` and the argmax within each plane), image by image while its
    /// output is in cache. `unpool` (nil: none): `input` is not read; each image's input is instead the
    /// backward of a 2 x 2 max pooling (`max_pool_backward`) of `unpool.gradient` `[N, C, H / 2, W / 2]` with
    /// `unpool.argmax`, made in cache just before the image is convolved (a pooled layer's input gradient).
    /// `upsample` (no mask): `input` is `[N, C, H / 2, W / 2]` (`H`, `W` even), and the convolution reads its 2x
    /// nearest upsampling `[N, C, H, W]`, made in cache by the thread that reads it (each thread only the rows its
    /// share of the output reads when one image is split across threads) instead of by a pass of its own.
    /// `sigmoid` (no pooling): the output is `sigmoid(...)` of the above (`Tensor.sigmoid`, after the ReLU if any), each
    /// thread's outputs as soon as it has made them.
    static func run(
        output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, mask: UnsafePointer<Float>?,
        weight: UnsafePointer<Float>, rotated: Bool, bias: UnsafePointer<Float>?, reLU: Bool,
        images: Int, channels: Int, height: Int, width: Int, outputChannels: Int, padding: Int,
        pool: (output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>)? = nil,
        unpool: (gradient: UnsafePointer<Float>, argmax: UnsafePointer<Int32>)? = nil, upsample: Bool = false,
        sigmoid: Bool = false, weightTensor: Tensor? = nil
    ) {
        precondition(!upsample || (mask == nil && unpool == nil && height % 2 == 0 && width % 2 == 0), "DirectConvolution: upsample")
        precondition(!sigmoid || pool == nil, "DirectConvolution: sigmoid and pooling")
        let isa = checkedInstructionSet()
        let (c, h, w, o, p) = (Int32(channels), Int32(height), Int32(width), Int32(outputChannels), Int32(padding))
        let (outputHeight, outputWidth) = (height + 2 * padding - 2, width + 2 * padding - 2)
        let outputPlane = outputHeight * outputWidth, pooledSize = outputChannels * (outputHeight / 2) * (outputWidth / 2)
        /// `sigmoid`: output positions `positions` (row-major in a plane) of every channel of image `n`.
        func sigmoidPositions(_ n: Int, _ positions: Range<Int>) {
            guard sigmoid else { return }
            let image = output + n * outputChannels * outputPlane
            for channel in 0..<outputChannels {
                let plane = image + channel * outputPlane
                for i in positions { plane[i] = Tensor.sigmoid(plane[i]) }
            }
        }
        /// `sigmoid`: the outputs of image `n`'s Winograd tiles `tiles` (numbered row by row, `tilesX` a row, `side` x
        /// `side` outputs each): per tile row, its tiles' columns in each of the row's output rows.
        func sigmoidTiles(_ n: Int, _ tiles: Range<Int>, side: Int, tilesX: Int) {
            var tile = tiles.lowerBound
            while sigmoid && tile < tiles.upperBound {
                let row = tile / tilesX, end = min(tiles.upperBound, (row + 1) * tilesX)
                let columns = side * (tile - row * tilesX)..<min(outputWidth, side * (end - row * tilesX))
                for y in side * row..<min(outputHeight, side * row + side) {
                    sigmoidPositions(n, y * outputWidth + columns.lowerBound..<y * outputWidth + columns.upperBound)
                }
                tile = end
            }
        }
        /// What follows image `n`'s convolution: its pooling, or its sigmoid.
        func finishImage(_ n: Int) {
            sigmoidPositions(n, 0..<outputPlane)
            guard let pool else { return }
            max_pool_2x2(
                pool.output + n * pooledSize, pool.argmax + n * pooledSize, output + n * outputChannels * outputPlane, o,
                Int32(outputHeight), Int32(outputWidth), poolingInstructionSet)
        }
        // Image n's input: in `input`, or unpooled into `buffer` (a chunk's, `channels * height * width` floats) with
        // the mask applied on the positions the pooling chose (the kernels then read it in place, not masked again).
        let imageSize = channels * height * width, pooledInput = channels * (height / 2) * (width / 2)
        func imageInput(_ n: Int, _ buffer: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
            if upsample {
                upsampleRows(n, buffer, 0..<height)
                return UnsafePointer(buffer)
            }
            guard let unpool else { return input + n * imageSize }
            max_pool_backward(
                buffer, unpool.gradient + n * pooledInput, unpool.argmax + n * pooledInput, mask.map { $0 + n * imageSize },
                c, height * width, (height / 2) * (width / 2))
            return UnsafePointer(buffer)
        }
        /// Rows `rows` of image `n`'s upsampled input (`upsample`) into `buffer`.
        func upsampleRows(_ n: Int, _ buffer: UnsafeMutablePointer<Float>, _ rows: Range<Int>) {
            PoolingKernels.upsample2xRows(
                buffer, input + n * (imageSize / 4), channels: channels, height: height / 2, width: width / 2, rows: rows)
        }
        /// The input rows that output rows `rows` read (the padding's excepted).
        func inputRows(_ rows: Range<Int>) -> Range<Int> {
            let first = max(0, rows.lowerBound - padding)
            return first..<max(first, min(height, rows.upperBound + 2 - padding))
        }
        let kernelMask = unpool == nil ? mask : nil  // what the kernels apply
        let bufferCount = unpool == nil && !upsample ? 0 : imageSize
        let threads = Parallel.threadCount
        let winograd =
            !isOneChannel(inputs: channels, outputs: outputChannels)
            && usesWinograd(outputHeight: outputHeight, outputWidth: outputWidth)
        // F(4x4, 3x3) for the largest layers' passes whose kernels apply no mask (`usesWinograd4`)
        let winograd4 = winograd && kernelMask == nil && usesWinograd4(outputHeight: outputHeight, outputWidth: outputWidth)
        let tilesX = (outputWidth + 3) / 4, tileRows = (outputHeight + 3) / 4  // F(4x4, 3x3)'s tiles
        // with pooling (or Winograd's 2 x 2 tiles), the rows are split in pairs, and each thread pools its own band
        let rowsPerUnit = pool == nil && !winograd ? 1 : 2, units = outputHeight / rowsPerUnit
        /// Fewer images than threads (batch-1 inference): each image's output rows split across the threads.
        /// No thread reads what another wrote but its band's edge rows: each pools the rows it made, and the
        /// packed weights come from `PackedWeightCache` (written once, then only read) or each thread packs its
        /// own (on a host that places the two cores on different dies, a line from the other core's cache costs
        /// a 400 ns round trip: weights packed by one thread for both, up to 150 KB a layer, took longer to read
        /// than to pack again). `band(n, source, rows)` convolves the output rows `rows` of image `n` from `source`.
        func splitRows(_ band: (_ n: Int, _ source: UnsafePointer<Float>, _ rows: Range<Int>) -> Void) {
            /// a part's output rows: an odd last row (which pooling leaves out) goes with the last band
            func rows(_ part: Range<Int>) -> Range<Int> {
                part.lowerBound * rowsPerUnit..<(part.upperBound == units ? outputHeight : part.upperBound * rowsPerUnit)
            }
            splitImages(units: units, outputRows: rows) { n, source, part in
                band(n, source, rows(part))
                sigmoidPositions(n, rows(part).lowerBound * outputWidth..<rows(part).upperBound * outputWidth)
                if let pool {
                    max_pool_2x2_rows(
                        pool.output + n * pooledSize, pool.argmax + n * pooledSize, output + n * outputChannels * outputPlane,
                        o, Int32(outputHeight), Int32(outputWidth), Int32(part.lowerBound), Int32(part.upperBound),
                        poolingInstructionSet)
                }
            }
        }
        /// `body(n, source, part)` on each thread for each image `n`, `part` the thread's share of `units`, whose
        /// output rows are `outputRows(part)` (with `upsample`, each thread upsamples the input rows they read).
        func splitImages(
            units: Int, outputRows: (Range<Int>) -> Range<Int>,
            _ body: (_ n: Int, _ source: UnsafePointer<Float>, _ part: Range<Int>) -> Void
        ) {
            ScratchPool.shared.withBuffer(upsample ? 0 : bufferCount) { buffer in
                for n in 0..<images {
                    let source = upsample ? input : imageInput(n, buffer)
                    // thread k's units from ceil(k * units / threads) on: the first the larger share when the units do not
                    // divide evenly, as the calling thread takes chunk 0 at once and a worker starts a hand-over later
                    Parallel.forEach(chunks: threads, of: threads) { chunk, _ in
                        let part = (chunk * units + threads - 1) / threads..<((chunk + 1) * units + threads - 1) / threads
                        guard upsample else { return body(n, source, part) }
                        ScratchPool.shared.withBuffer(imageSize) { rows in
                            upsampleRows(n, rows, inputRows(outputRows(part)))
                            body(n, UnsafePointer(rows), part)
                        }
                    }
                }
            }
        }
        let splitsRows = images < threads && units >= 2 * threads
        if splitsRows && isOneChannel(inputs: channels, outputs: outputChannels) {
            // one channel on a side: each image's output rows split across the threads, so that each thread reads
            // mostly the input rows its thread wrote in the layer before
            let scratchCount = conv3x3_one_channel_scratch_count(c, h, w, o, p)
            splitRows { n, source, rows in
                ScratchPool.shared.withBuffer(scratchCount) { scratch in
                    let (out, imageMask) = (output + n * outputChannels * outputPlane, kernelMask.map { $0 + n * imageSize })
                    let (y0, y1) = (Int32(rows.lowerBound), Int32(rows.upperBound))
                    if channels == 1 {
                        conv3x3_one_input_image_rows(
                            out, source, imageMask, weight, rotated ? 1 : 0, bias, reLU ? 1 : 0, h, w, o, p, y0, y1, scratch, isa)
                    } else {
                        conv3x3_one_output_image_rows(
                            out, source, imageMask, weight, rotated ? 1 : 0, bias, reLU ? 1 : 0, c, h, w, p, y0, y1, scratch, isa)
                    }
                }
            }
            return
        }
        if isOneChannel(inputs: channels, outputs: outputChannels) {
            // one image per task (see `forEachImageChunk`); the kernel packs its few weights itself
            forEachImageChunk(images) { range in
                ScratchPool.shared.withBuffer(conv3x3_one_channel_scratch_count(c, h, w, o, p) + bufferCount) { scratch in
                    let buffer = scratch + conv3x3_one_channel_scratch_count(c, h, w, o, p)
                    for n in range {
                        let image = n * channels * height * width
                        conv3x3_one_channel_image(
                            output + n * outputChannels * outputPlane, imageInput(n, buffer), kernelMask.map { $0 + image }, weight,
                            rotated ? 1 : 0, bias, reLU ? 1 : 0, c, h, w, o, p, scratch, isa)
                        finishImage(n)
                    }
                }
            }
            return
        }
        let layout = winograd4 ? PackedWeightCache.Layout.winograd4 : winograd ? .winograd : .direct
        let scratchCount =
            winograd4
            ? conv3x3_winograd4_scratch_count(c, h, w, o, p)
            : winograd ? conv3x3_winograd_scratch_count(c, h, w, o, p) : conv3x3_scratch_count(c, h, w, o, p)
        /// Output rows `rows` of image `n` from `source` with the weights `packed` (`layout`).
        func convolve(
            _ n: Int, _ source: UnsafePointer<Float>, _ rows: Range<Int>, _ packed: UnsafePointer<Float>,
            _ scratch: UnsafeMutablePointer<Float>, prefetch: Bool
        ) {
            let (out, imageMask) = (output + n * outputChannels * outputPlane, kernelMask.map { $0 + n * imageSize })
            let (y0, y1) = (Int32(rows.lowerBound), Int32(rows.upperBound))
            if winograd4 {
                // the tiles of the rows (whole tile rows: `rows` starts at a multiple of 4)
                conv3x3_winograd4_image_tiles(
                    out, source, packed, bias, reLU ? 1 : 0, c, h, w, o, p, Int32(rows.lowerBound / 4 * tilesX),
                    Int32((rows.upperBound + 3) / 4 * tilesX), scratch, isa)
            } else if winograd {
                conv3x3_winograd_image_rows(
                    out, source, imageMask, packed, bias, reLU ? 1 : 0, c, h, w, o, p, y0, y1, scratch, isa, prefetch ? 1 : 0)
            } else {
                conv3x3_image_rows(
                    out, source, imageMask, packed, bias, reLU ? 1 : 0, c, h, w, o, p, y0, y1, scratch, isa, prefetch ? 1 : 0)
            }
        }
        // The packed weights: `weightTensor`'s from the cache for one image split across threads (else each thread
        // packs its own, see `splitRows`) and for Winograd (whose transform of a 64 x 64 layer takes about as
        // long as convolving a few images: an attack's slices of 16 images would repeat it on every step).
        let cached =
            splitsRows || winograd
            ? weightTensor.map {
                PackedWeightCache.entry(for: $0, rotated: rotated, layout: layout, outputChannels: outputChannels, channels: channels)
            } : nil
        if splitsRows {
            let packedCount = cached == nil ? layout.packedCount(outputChannels: o, channels: c) : 0
            /// `body(packed, scratch)` with the weights packed (cached, or by this thread) and this thread's scratch memory.
            func withPacked(_ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
                ScratchPool.shared.withBuffer(scratchCount + packedCount) { scratch in
                    var packed = UnsafePointer(scratch + scratchCount)
                    if let cached {
                        packed = UnsafePointer(cached.packed)
                    } else {
                        layout.pack(scratch + scratchCount, weight, outputChannels: o, channels: c, rotated: rotated)
                    }
                    body(packed, scratch)
                }
            }
            if winograd4 {
                // F(4x4, 3x3): without pooling, the tiles split evenly (D.6 of the MNIST network: 7 x 7 tiles as 25 + 24);
                // with it, whole tile rows, each thread pooling the rows it made (E.2: 6 tile rows as 3 + 3)
                let units = pool == nil ? tileRows * tilesX : tileRows
                let tilesPerUnit = pool == nil ? 1 : tilesX
                /// the output rows of a part's tiles (whole tile rows, from the first tile's row to the last's)
                func rows(_ part: Range<Int>) -> Range<Int> {
                    let (first, end) = (part.lowerBound * tilesPerUnit, part.upperBound * tilesPerUnit)
                    return part.isEmpty ? 0..<0 : 4 * (first / tilesX)..<min(outputHeight, 4 * ((end - 1) / tilesX + 1))
                }
                splitImages(units: units, outputRows: rows) { n, source, part in
                    withPacked { packed, scratch in
                        conv3x3_winograd4_image_tiles(
                            output + n * outputChannels * outputPlane, source, packed, bias, reLU ? 1 : 0, c, h, w, o, p,
                            Int32(part.lowerBound * tilesPerUnit), Int32(part.upperBound * tilesPerUnit), scratch, isa)
                    }
                    sigmoidTiles(n, part.lowerBound * tilesPerUnit..<part.upperBound * tilesPerUnit, side: 4, tilesX: tilesX)
                    if let pool, !part.isEmpty {
                        // the part's pairs of output rows (an odd last row, which pooling leaves out, is clamped away)
                        max_pool_2x2_rows(
                            pool.output + n * pooledSize, pool.argmax + n * pooledSize, output + n * outputChannels * outputPlane,
                            o, Int32(outputHeight), Int32(outputWidth), Int32(rows(part).lowerBound / 2),
                            Int32((rows(part).upperBound + 1) / 2), poolingInstructionSet)
                    }
                }
            } else if winograd && pool == nil {
                // Winograd's tiles split evenly rather than its tile rows: a 10 x 10 output's 5 x 5 tiles as 13 + 12 tiles
                // instead of 3 + 2 rows (E.5, D.1 of the MNIST network; D.6's 13 x 13 as 85 + 84 instead of 91 + 78)
                let tilesX = (outputWidth + 1) / 2, tiles = (outputHeight + 1) / 2 * tilesX
                /// the output rows of a part's tiles (whole tile rows, from the first tile's row to the last's)
                func rows(_ part: Range<Int>) -> Range<Int> {
                    part.isEmpty ? 0..<0 : 2 * (part.lowerBound / tilesX)..<min(outputHeight, 2 * ((part.upperBound - 1) / tilesX + 1))
                }
                splitImages(units: tiles, outputRows: rows) { n, source, part in
                    withPacked { packed, scratch in
                        conv3x3_winograd_image_tiles(
                            output + n * outputChannels * outputPlane, source, kernelMask.map { $0 + n * imageSize }, packed, bias,
                            reLU ? 1 : 0, c, h, w, o, p, Int32(part.lowerBound), Int32(part.upperBound), scratch, isa)
                    }
                    sigmoidTiles(n, part, side: 2, tilesX: tilesX)
                }
            } else {
                splitRows { n, source, rows in
                    withPacked { packed, scratch in convolve(n, source, rows, packed, scratch, prefetch: false) }
                }
            }
            withExtendedLifetime(cached) {}
            return
        }
        ScratchPool.shared.withBuffer(cached == nil ? layout.packedCount(outputChannels: o, channels: c) : 0) { buffer in
            var packed = UnsafePointer(buffer)
            if let cached {
                packed = UnsafePointer(cached.packed)
            } else {
                layout.pack(buffer, weight, outputChannels: o, channels: c, rotated: rotated)
            }
            forEachImageChunk(images) { range in
                ScratchPool.shared.withBuffer(scratchCount + bufferCount) { scratch in
                    let buffer = scratch + scratchCount
                    for n in range {
                        // the next image's input is asked for in cache only when it is read from `input`
                        let prefetch = unpool == nil && !upsample && n + 1 < range.upperBound
                        convolve(n, imageInput(n, buffer), 0..<outputHeight, packed, scratch, prefetch: prefetch)
                        finishImage(n)
                    }
                }
            }
        }
        withExtendedLifetime(cached) {}
    }

    /// `body` over contiguous chunks of `images`, a few per thread: the pool hands them to whichever thread
    /// is free, so a thread that the machine's other work slows down does not hold the others up (the split
    /// does not change results). With fewer images than threads, `run` splits each image's rows instead.
    private static func forEachImageChunk(_ images: Int, _ body: (Range<Int>) -> Void) {
        let threads = Parallel.threadCount
        Parallel.forEach(chunks: min(images, threads == 1 ? 1 : 4 * threads), of: images) { _, range in body(range) }
    }

    /// The weight and bias gradients of a batch as per-chunk partial sums: chunk `k` of `chunks` (contiguous
    /// images, the split of `Parallel.forEach`; at most one chunk per image) writes `partials + k * partialStride`,
    /// its weight gradient `[O, C, 3, 3]` then its bias gradient (`[O]`, the sums of the output gradient, or
    /// `[C]`, of the input when `biasOfInput`), the bits of adding them to zeros: the caller need not zero the
    /// memory. Each chunk zeroes what its kernel adds to, on its own thread, or (Winograd) has the kernel write
    /// the weights. `input`, `inputMask`: `[N, C, H, W]`; `outputGradient`, `outputMask`: `[N, O, H + 2p - 2,
    /// W + 2p - 2]`. Each chunk sums its images in order.
    static func accumulateWeightGradients(
        _ partials: UnsafeMutablePointer<Float>, partialStride: Int, chunks: Int, biasOfInput: Bool,
        input: UnsafePointer<Float>, inputMask: UnsafePointer<Float>?, outputGradient: UnsafePointer<Float>,
        outputMask: UnsafePointer<Float>?, images: Int, channels: Int, height: Int, width: Int, outputChannels: Int,
        padding: Int
    ) {
        precondition(chunks <= images, "weight gradient: \(chunks) chunks of \(images) images leave some unwritten")
        let isa = checkedInstructionSet()
        let (c, h, w, o, p) = (Int32(channels), Int32(height), Int32(width), Int32(outputChannels), Int32(padding))
        let imageSize = channels * height * width
        let outputSize = outputChannels * (height + 2 * padding - 2) * (width + 2 * padding - 2)
        if channels == 1 {
            // one call per chunk: the kernel's lane sums run over the chunk's images, then add into the partial
            Parallel.forEach(chunks: chunks, of: images) { chunk, range in
                let weights = partials + chunk * partialStride, bias = weights + outputChannels * 9
                weights.update(repeating: 0, count: partialStride)
                ScratchPool.shared.withBuffer(conv3x3_one_channel_weight_scratch_count(h, w, o, p)) { scratch in
                    conv3x3_one_channel_weight_gradient(
                        weights, bias, biasOfInput ? 1 : 0, input + range.lowerBound * imageSize,
                        inputMask.map { $0 + range.lowerBound * imageSize }, outputGradient + range.lowerBound * outputSize,
                        outputMask.map { $0 + range.lowerBound * outputSize }, Int32(range.count), h, w, o, p, scratch, isa)
                }
            }
            return
        }
        precondition(channels >= minimumInputs, "the direct weight gradient takes 1 or at least \(minimumInputs) input channels")
        if usesWinogradWeightGradient(
            outputHeight: height + 2 * padding - 2, outputWidth: width + 2 * padding - 2, images: images, chunks: chunks)
        {
            // one call per chunk: the 16 points' sums run over the chunk's images, then are transformed and added
            Parallel.forEach(chunks: chunks, of: images) { chunk, range in
                let weights = partials + chunk * partialStride, bias = weights + outputChannels * channels * 9
                // the kernel writes the weights' partial (no zeroing: a chunk's 147 KB for a 64 x 64 layer); the bias sums add
                bias.update(repeating: 0, count: partialStride - outputChannels * channels * 9)
                ScratchPool.shared.withBuffer(conv3x3_winograd_weight_scratch_count(c, h, w, o, p)) { scratch in
                    conv3x3_winograd_weight_gradient(
                        weights, bias, biasOfInput ? 1 : 0, input + range.lowerBound * imageSize,
                        inputMask.map { $0 + range.lowerBound * imageSize }, outputGradient + range.lowerBound * outputSize,
                        outputMask.map { $0 + range.lowerBound * outputSize }, Int32(range.count), c, h, w, o, p, scratch, isa, 1)
                }
            }
            return
        }
        Parallel.forEach(chunks: chunks, of: images) { chunk, range in
            let weights = partials + chunk * partialStride, bias = weights + outputChannels * channels * 9
            weights.update(repeating: 0, count: partialStride)
            ScratchPool.shared.withBuffer(conv3x3_scratch_count(c, h, w, o, p)) { scratch in
                for n in range {
                    conv3x3_weight_gradient_image(
                        weights, bias, biasOfInput ? 1 : 0, input + n * imageSize, inputMask.map { $0 + n * imageSize },
                        outputGradient + n * outputSize, outputMask.map { $0 + n * outputSize }, c, h, w, o, p, scratch, isa,
                        n + 1 < range.upperBound ? 1 : 0)
                }
            }
        }
    }

    /// The `isa` of `max_pool_2x2`: the convolutions' (AVX-512 or AVX2), or the portable loop on CPUs without them.
    static var poolingInstructionSet: Int32 {
        isSupported ? instructionSet.rawValue : Int32(CONV3X3_ISA_NONE)
    }

    /// `instructionSet` as the C kernels' `isa`, after checking that the CPU runs it.
    private static func checkedInstructionSet() -> Int32 {
        let isa = instructionSet
        precondition(bestInstructionSet.map { isa <= $0 } ?? false, "the direct 3x3 convolution needs \(isa) on this CPU")
        return isa.rawValue
    }
}

extension ConvolutionKernels {
    /// The data gradient of `gradients` through `DirectConvolution` (3x3, stride 1): `.backward`, the
    /// convolution's input gradient `[N, C, H, W]` from `output` (`[N, O, OH, OW]`, masked by `mask`) with the
    /// rotated weight; `.forward`, the convolution of `input` (`[N, C, H, W]`, masked by `mask`) -> `[N, O, OH, OW]`.
    static func directDataGradient(
        _ result: UnsafeMutablePointer<Float>, geometry g: ConvolutionGeometry, input: UnsafePointer<Float>,
        output: UnsafePointer<Float>, weight: UnsafePointer<Float>, images n: Int, outputChannels: Int,
        dataGradient: DataGradient, mask: UnsafePointer<Float>?, weightTensor: Tensor? = nil
    ) {
        switch dataGradient {
        case .backward:
            DirectConvolution.run(
                output: result, input: output, mask: mask, weight: weight, rotated: true, bias: nil, reLU: false,
                images: n, channels: outputChannels, height: g.outputHeight, width: g.outputWidth,
                outputChannels: g.channels, padding: 2 - g.padding, weightTensor: weightTensor)
        case .forward:
            DirectConvolution.run(
                output: result, input: input, mask: mask, weight: weight, rotated: false, bias: nil, reLU: false,
                images: n, channels: g.channels, height: g.height, width: g.width,
                outputChannels: outputChannels, padding: g.padding, weightTensor: weightTensor)
        }
    }
}
