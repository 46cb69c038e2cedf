/// Convolution and transposed convolution on whole batches: batched im2col plus
/// one `cblas_sgemm` per chunk of images (backward: GEMM for the weight gradient,
/// GEMM + col2im for the input gradient, a row sum for the bias).
///
/// Layouts are PyTorch's: convolution weight `[out, in, kh, kw]`, transposed
/// convolution weight `[in, out, kh, kw]`. Backward results are fresh tensors.
public enum ConvolutionKernels {
    /// Gradients of a convolution.
    public struct Gradients {
        /// d loss / d input, `[N, C, H, W]` (nil when not asked for).
        public var input: Tensor?
        /// d loss / d weight, same shape as the weight (nil when not asked for).
        public var weight: Tensor?
        /// d loss / d bias, `[out channels]` (nil when the weight gradient is not asked for).
        public var bias: Tensor?
    }

    static func geometry(input: [Int], weight: [Int], stride: Int, padding: Int) -> ConvolutionGeometry {
        precondition(input.count == 4 && weight.count == 4,
                     "conv2d needs a [N, C, H, W] input and a [out, in, kh, kw] weight, got \(input) and \(weight)")
        precondition(input[1] == weight[1],
                     "conv2d: input shape \(input) has \(input[1]) channels but weight shape \(weight) expects \(weight[1])")
        return ConvolutionGeometry(channels: input[1], height: input[2], width: input[3],
                                   kernelHeight: weight[2], kernelWidth: weight[3], stride: stride, padding: padding)
    }

    /// Number of chunks a batch of `images` is split into: the unit of parallel work and of
    /// partial weight gradients (summed in chunk order). It does not depend on the thread
    /// count up to 8 threads, so gradients are the same with 1 or 8 threads.
    @inlinable
    static func chunkCount(images: Int) -> Int { min(images, max(8, Parallel.threadCount)) }

    /// Images per GEMM inside a chunk. One image when its output positions make a wide enough
    /// product (the GEMM then reads and writes the NCHW tensors in place, with no transposes);
    /// else enough images for about 768 columns, gathered through `imagesToRows`/`rowsToImages`.
    @inlinable
    static func groupSize(positions: Int, limit: Int) -> Int {
        positions >= groupColumns / 3 ? 1 : max(1, min(limit, (groupColumns + positions - 1) / positions))
    }

    /// Columns a GEMM over a group of small images aims for (see `groupSize`).
    @usableFromInline static let groupColumns = 768

    /// Output-row tiles of one image for the single-image path: each tile's column matrix
    /// (`patch x rows x outputWidth` floats) stays near `tileBudget` floats, so that im2col
    /// writes it, and the GEMM packs it, in the core's cache rather than in memory.
    @inlinable
    static func tiles(patch: Int, geometry g: ConvolutionGeometry) -> (rows: Int, count: Int) {
        let rows = max(1, min(g.outputHeight, tileBudget / max(1, patch * g.outputWidth)))
        return (rows, (g.outputHeight + rows - 1) / rows)
    }

    /// Floats of one tile's column matrix (see `tiles`): 96K floats, 384 KiB, fits a 512 KiB L2
    /// (measured on conv2 of the MNIST network: 0.80-0.85 of raw sgemm with 48K floats, 0.85-0.89 with 96K).
    @usableFromInline static let tileBudget = 98_304

    /// Convolution forward. `input` `[N, C, H, W]`, `weight` `[O, C, KH, KW]`, `bias` `[O]` -> `[N, O, OH, OW]`.
    ///
    /// Each chunk of images: im2col of a group of images into `[CKK, group * P]` (P = OH * OW),
    /// then one GEMM `W [O, CKK] * columns` straight into the output (one image) or into
    /// `[O, group * P]` rows scattered to NCHW (several images); the bias is added in the same pass.
    public static func forward(input: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
        let g = geometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0], outChannels = weight.shape[0], positions = g.outputPositions, patch = g.patchSize
        if let bias { precondition(bias.shape == [outChannels], "conv2d bias shape \(bias.shape) does not match [\(outChannels)]") }
        let pointwise = g.kernelHeight == 1 && g.kernelWidth == 1 && g.stride == 1 && g.padding == 0
        return Tensor(shape: [n, outChannels, g.outputHeight, g.outputWidth]) { out in
            input.withUnsafeBufferPointer { x in
                weight.withUnsafeBufferPointer { w in
                    withOptionalPointer(bias) { b in
                        let (xb, wb) = (x.baseAddress!, w.baseAddress!)
                        Parallel.forEach(chunks: chunkCount(images: n), of: n) { _, images in
                            let group = groupSize(positions: positions, limit: images.count)
                            let tile = tiles(patch: patch, geometry: g), ow = g.outputWidth
                            let columnsSize = group > 1 ? group * patch * positions : (pointwise ? 0 : patch * tile.rows * ow)
                            ScratchPool.shared.withBuffer(columnsSize) { columns in
                                ScratchPool.shared.withBuffer(group > 1 ? group * outChannels * positions : 0) { rows in
                                    var first = images.lowerBound
                                    while first < images.upperBound {
                                        let count = min(group, images.upperBound - first)
                                        let source = xb + first * g.imageSize, dst = out + first * outChannels * positions
                                        if count == 1 {
                                            // The GEMM accumulates onto the bias (beta 1): no separate pass adds it.
                                            startAtBias(dst, b, images: 1, channels: outChannels, planeSize: positions)
                                            if pointwise {
                                                BLAS.gemmSerial(dst, wb, source, m: outChannels, n: positions, k: patch, beta: 1)
                                            } else {
                                                for t in 0..<tile.count {
                                                    let outputRows = (t * tile.rows)..<min(g.outputHeight, (t + 1) * tile.rows)
                                                    Im2Col.im2colSerial(columns, source, geometry: g, images: 1, outputRows: outputRows)
                                                    BLAS.gemmSerial(dst + outputRows.lowerBound * ow, wb, columns, m: outChannels,
                                                                    n: outputRows.count * ow, k: patch, beta: 1, ldc: positions)
                                                }
                                            }
                                        } else {
                                            Im2Col.im2colSerial(columns, source, geometry: g, images: count)
                                            BLAS.gemmSerial(rows, wb, columns, m: outChannels, n: count * positions, k: patch)
                                            Im2Col.rowsToImages(dst, rows, count: count, channels: outChannels, positions: positions, bias: b,
                                                                planes: 0..<(count * outChannels))
                                        }
                                        first += count
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Convolution backward from `outputGradient` `[N, O, OH, OW]`.
    ///
    /// Per group of images (see `forward`): `dW [O, CKK] += dY [O, group * P] * columns^T`
    /// into the chunk's partial sums, `db += row sums of dY`, and `dcolumns = W^T * dY`
    /// folded into dX by col2im. Partial sums are added in chunk order at the end.
    ///
    /// `needWeightGradient: false` (attacks, which only need d loss / d input) skips the
    /// im2col of the input, the weight GEMM and the bias sums; weight and bias are then nil.
    public static func backward(input: Tensor, weight: Tensor, outputGradient: Tensor,
                                stride: Int = 1, padding: Int = 0, needInputGradient: Bool = true,
                                needWeightGradient: Bool = true) -> Gradients {
        let g = geometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0], outChannels = weight.shape[0], positions = g.outputPositions, patch = g.patchSize
        precondition(outputGradient.shape == [n, outChannels, g.outputHeight, g.outputWidth],
                     "conv2d backward: gradient shape \(outputGradient.shape) does not match output shape \([n, outChannels, g.outputHeight, g.outputWidth])")
        guard needInputGradient || needWeightGradient else { return Gradients(input: nil, weight: nil, bias: nil) }
        let pointwise = g.kernelHeight == 1 && g.kernelWidth == 1 && g.stride == 1 && g.padding == 0
        let chunks = chunkCount(images: n)
        var partials = WeightGradientPartials(chunks: needWeightGradient ? chunks : 0, weightCount: weight.count, biasCount: outChannels)
        let partialStride = partials.stridePerChunk
        var dInput = needInputGradient ? [Float](uninitializedCount: input.count) : []
        input.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                outputGradient.withUnsafeBufferPointer { dy in
                    dInput.withUnsafeMutableBufferPointer { dx in
                        partials.storage.withUnsafeMutableBufferPointer { sums in
                            let (xb, wb, dyb) = (x.baseAddress!, w.baseAddress!, dy.baseAddress!)
                            let dxb = needInputGradient ? dx.baseAddress : nil
                            let sumsBase = needWeightGradient ? sums.baseAddress : nil
                            let (stridePerChunk, weightCount) = (partialStride, weight.count)
                            Parallel.forEach(chunks: chunks, of: n) { chunk, images in
                                let dW = sumsBase.map { $0 + chunk * stridePerChunk }, dB = dW.map { $0 + weightCount }
                                let group = groupSize(positions: positions, limit: images.count)
                                let tile = tiles(patch: patch, geometry: g), ow = g.outputWidth
                                let columnsSize = group > 1 || pointwise ? group * patch * positions : patch * tile.rows * ow
                                ScratchPool.shared.withBuffer(columnsSize) { columns in
                                    ScratchPool.shared.withBuffer(group > 1 ? group * outChannels * positions : 0) { rows in
                                        var first = images.lowerBound
                                        while first < images.upperBound {
                                            let count = min(group, images.upperBound - first), length = count * positions
                                            var dyRows = dyb + first * outChannels * positions   // [O, length]
                                            if count > 1 {
                                                Im2Col.imagesToRows(rows, dyRows, count: count, channels: outChannels, positions: positions,
                                                                    planes: 0..<(count * outChannels))
                                                dyRows = UnsafePointer(rows)
                                            }
                                            let source = xb + first * g.imageSize
                                            if count == 1 && !pointwise {
                                                // One image, in tiles of output rows whose columns stay in cache.
                                                let target = dxb.map { $0 + first * g.imageSize }
                                                target?.update(repeating: 0, count: g.imageSize)
                                                for t in 0..<tile.count {
                                                    let outputRows = (t * tile.rows)..<min(g.outputHeight, (t + 1) * tile.rows)
                                                    let tileLength = outputRows.count * ow, dyTile = dyRows + outputRows.lowerBound * ow
                                                    if let dW {
                                                        Im2Col.im2colSerial(columns, source, geometry: g, images: 1, outputRows: outputRows)
                                                        BLAS.gemmSerial(dW, dyTile, columns, m: outChannels, n: patch, k: tileLength,
                                                                        transposeB: true, beta: 1, lda: positions)
                                                    }
                                                    if let target {
                                                        BLAS.gemmSerial(columns, wb, dyTile, m: patch, n: tileLength, k: outChannels,
                                                                        transposeA: true, ldb: positions)
                                                        Im2Col.col2imSerial(target, columns, geometry: g, images: 1, outputRows: outputRows)
                                                    }
                                                }
                                                if let dB { addRowSums(dB, dyRows, rowCount: outChannels, rowLength: positions) }
                                                first += 1
                                                continue
                                            }
                                            if let dW, let dB {
                                                var cols = UnsafePointer(columns)
                                                if pointwise && count == 1 { cols = source } else {
                                                    Im2Col.im2colSerial(columns, source, geometry: g, images: count)
                                                }
                                                // dW [O, CKK] += dY [O, length] * columns^T [length, CKK]
                                                BLAS.gemmSerial(dW, dyRows, cols, m: outChannels, n: patch, k: length,
                                                                transposeB: true, beta: 1)
                                                addRowSums(dB, dyRows, rowCount: outChannels, rowLength: length)
                                            }
                                            if let dxb {
                                                let target = dxb + first * g.imageSize
                                                if pointwise {
                                                    // dX [C, length] = W^T [C, O] * dY [O, length]; col2im of a 1x1 kernel is the identity.
                                                    if count == 1 {
                                                        BLAS.gemmSerial(target, wb, dyRows, m: patch, n: length, k: outChannels, transposeA: true)
                                                    } else {
                                                        BLAS.gemmSerial(columns, wb, dyRows, m: patch, n: length, k: outChannels, transposeA: true)
                                                        Im2Col.rowsToImages(target, columns, count: count, channels: g.channels, positions: positions, bias: nil,
                                                                            planes: 0..<(count * g.channels))
                                                    }
                                                } else {
                                                    // dcolumns [CKK, length] = W^T [CKK, O] * dY [O, length]
                                                    BLAS.gemmSerial(columns, wb, dyRows, m: patch, n: length, k: outChannels, transposeA: true)
                                                    target.update(repeating: 0, count: count * g.imageSize)
                                                    Im2Col.col2imSerial(target, columns, geometry: g, images: count)
                                                }
                                            }
                                            first += count
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let (dWeight, dBias) = needWeightGradient ? partials.sum(weightShape: weight.shape) : (nil, nil)
        return Gradients(input: needInputGradient ? Tensor(shape: input.shape, storage: dInput) : nil, weight: dWeight, bias: dBias)
    }

    /// The output geometry of a transposed convolution, seen as the convolution it inverts.
    static func transposedGeometry(input: [Int], weight: [Int], stride: Int, padding: Int) -> ConvolutionGeometry {
        precondition(input.count == 4 && weight.count == 4,
                     "conv-transpose2d needs a [N, C, H, W] input and an [in, out, kh, kw] weight, got \(input) and \(weight)")
        precondition(input[1] == weight[0],
                     "conv-transpose2d: input shape \(input) has \(input[1]) channels but weight shape \(weight) expects \(weight[0])")
        let height = (input[2] - 1) * stride - 2 * padding + weight[2]
        let width = (input[3] - 1) * stride - 2 * padding + weight[3]
        precondition(height > 0 && width > 0,
                     "conv-transpose2d: padding \(padding) is too large for input shape \(input) and weight shape \(weight) (output would be \(height)x\(width))")
        let g = ConvolutionGeometry(channels: weight[1], height: height, width: width,
                                    kernelHeight: weight[2], kernelWidth: weight[3], stride: stride, padding: padding)
        precondition(g.outputHeight == input[2] && g.outputWidth == input[3], "conv-transpose2d geometry mismatch")
        return g
    }

    /// Transposed convolution forward. `input` `[N, I, H, W]`, `weight` `[I, O, KH, KW]`, `bias` `[O]`
    /// -> `[N, O, (H-1)*stride - 2*padding + KH, ...]`.
    ///
    /// Per group of images: `columns [O*KK, group * P] = W^T [O*KK, I] * X [I, group * P]`
    /// (X read in place for one image), folded into the output by col2im, plus the bias.
    public static func transposedForward(input: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
        let g = transposedGeometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0], inChannels = input.shape[1], positions = g.outputPositions, patch = g.patchSize
        if let bias { precondition(bias.shape == [g.channels], "conv-transpose2d bias shape \(bias.shape) does not match [\(g.channels)]") }
        let planeSize = g.height * g.width
        return Tensor(shape: [n, g.channels, g.height, g.width]) { out in
            input.withUnsafeBufferPointer { x in
                weight.withUnsafeBufferPointer { w in
                    withOptionalPointer(bias) { b in
                        let (xb, wb) = (x.baseAddress!, w.baseAddress!)
                        Parallel.forEach(chunks: chunkCount(images: n), of: n) { _, images in
                            let group = groupSize(positions: positions, limit: images.count)
                            let tile = tiles(patch: patch, geometry: g), ow = g.outputWidth
                            ScratchPool.shared.withBuffer(group > 1 ? group * patch * positions : patch * tile.rows * ow) { columns in
                                ScratchPool.shared.withBuffer(group > 1 ? group * inChannels * positions : 0) { rows in
                                    var first = images.lowerBound
                                    while first < images.upperBound {
                                        let count = min(group, images.upperBound - first)
                                        var xRows = xb + first * inChannels * positions   // [I, count * P]
                                        if count == 1 {
                                            // One image, in tiles of input positions whose columns stay in cache.
                                            let target = out + first * g.imageSize
                                            startAtBias(target, b, images: 1, channels: g.channels, planeSize: planeSize)
                                            for t in 0..<tile.count {
                                                let outputRows = (t * tile.rows)..<min(g.outputHeight, (t + 1) * tile.rows)
                                                BLAS.gemmSerial(columns, wb, xRows + outputRows.lowerBound * ow, m: patch,
                                                                n: outputRows.count * ow, k: inChannels, transposeA: true, ldb: positions)
                                                Im2Col.col2imSerial(target, columns, geometry: g, images: 1, outputRows: outputRows)
                                            }
                                            first += 1
                                            continue
                                        }
                                        if count > 1 {
                                            Im2Col.imagesToRows(rows, xRows, count: count, channels: inChannels, positions: positions,
                                                                planes: 0..<(count * inChannels))
                                            xRows = UnsafePointer(rows)
                                        }
                                        // columns [O*KK, length] = W^T [O*KK, I] * X [I, length]
                                        BLAS.gemmSerial(columns, wb, xRows, m: patch, n: count * positions, k: inChannels, transposeA: true)
                                        let target = out + first * g.imageSize
                                        startAtBias(target, b, images: count, channels: g.channels, planeSize: planeSize)
                                        Im2Col.col2imSerial(target, columns, geometry: g, images: count)
                                        first += count
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Transposed convolution backward from `outputGradient` `[N, O, OH, OW]`.
    ///
    /// Per group of images: `columns = im2col(dY)` `[O*KK, group * P]`;
    /// `dW [I, O*KK] += X [I, group * P] * columns^T`; `dX [I, group * P] = W [I, O*KK] * columns`
    /// (written in place for one image); `db` = channel sums of dY.
    ///
    /// `needWeightGradient: false` skips the weight GEMM and the bias sums; weight and bias are then nil.
    public static func transposedBackward(input: Tensor, weight: Tensor, outputGradient: Tensor,
                                          stride: Int = 1, padding: Int = 0, needInputGradient: Bool = true,
                                          needWeightGradient: Bool = true) -> Gradients {
        let g = transposedGeometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0], inChannels = input.shape[1], positions = g.outputPositions, patch = g.patchSize
        precondition(outputGradient.shape == [n, g.channels, g.height, g.width],
                     "conv-transpose2d backward: gradient shape \(outputGradient.shape) does not match output shape \([n, g.channels, g.height, g.width])")
        guard needInputGradient || needWeightGradient else { return Gradients(input: nil, weight: nil, bias: nil) }
        let chunks = chunkCount(images: n), planeSize = g.height * g.width
        var partials = WeightGradientPartials(chunks: needWeightGradient ? chunks : 0, weightCount: weight.count, biasCount: g.channels)
        let partialStride = partials.stridePerChunk
        var dInput = needInputGradient ? [Float](uninitializedCount: input.count) : []
        input.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                outputGradient.withUnsafeBufferPointer { dy in
                    dInput.withUnsafeMutableBufferPointer { dx in
                        partials.storage.withUnsafeMutableBufferPointer { sums in
                            let (xb, wb, dyb) = (x.baseAddress!, w.baseAddress!, dy.baseAddress!)
                            let dxb = needInputGradient ? dx.baseAddress : nil
                            let sumsBase = needWeightGradient ? sums.baseAddress : nil
                            let (stridePerChunk, weightCount) = (partialStride, weight.count)
                            Parallel.forEach(chunks: chunks, of: n) { chunk, images in
                                let dW = sumsBase.map { $0 + chunk * stridePerChunk }, dB = dW.map { $0 + weightCount }
                                let group = groupSize(positions: positions, limit: images.count)
                                let tile = tiles(patch: patch, geometry: g), ow = g.outputWidth
                                ScratchPool.shared.withBuffer(group > 1 ? group * patch * positions : patch * tile.rows * ow) { columns in
                                    ScratchPool.shared.withBuffer(group > 1 ? group * inChannels * positions : 0) { rows in
                                        var first = images.lowerBound
                                        while first < images.upperBound {
                                            let count = min(group, images.upperBound - first), length = count * positions
                                            let dySource = dyb + first * g.imageSize
                                            if count == 1 {
                                                // One image, in tiles of input positions whose columns stay in cache.
                                                let xImage = xb + first * inChannels * positions
                                                let target = dxb.map { $0 + first * inChannels * positions }
                                                for t in 0..<tile.count {
                                                    let outputRows = (t * tile.rows)..<min(g.outputHeight, (t + 1) * tile.rows)
                                                    let tileLength = outputRows.count * ow, offset = outputRows.lowerBound * ow
                                                    Im2Col.im2colSerial(columns, dySource, geometry: g, images: 1, outputRows: outputRows)
                                                    if let dW {
                                                        BLAS.gemmSerial(dW, xImage + offset, columns, m: inChannels, n: patch, k: tileLength,
                                                                        transposeB: true, beta: 1, lda: positions)
                                                    }
                                                    if let target {
                                                        BLAS.gemmSerial(target + offset, wb, columns, m: inChannels, n: tileLength, k: patch,
                                                                        ldc: positions)
                                                    }
                                                }
                                                if let dB { addPlaneSums(dB, dySource, planes: g.channels, channels: g.channels, planeSize: planeSize) }
                                                first += 1
                                                continue
                                            }
                                            Im2Col.im2colSerial(columns, dySource, geometry: g, images: count)
                                            if let dW, let dB {
                                                var xRows = xb + first * inChannels * positions
                                                if count > 1 {
                                                    Im2Col.imagesToRows(rows, xRows, count: count, channels: inChannels, positions: positions,
                                                                        planes: 0..<(count * inChannels))
                                                    xRows = UnsafePointer(rows)
                                                }
                                                // dW [I, O*KK] += X [I, length] * columns^T [length, O*KK]
                                                BLAS.gemmSerial(dW, xRows, columns, m: inChannels, n: patch, k: length, transposeB: true, beta: 1)
                                                addPlaneSums(dB, dySource, planes: count * g.channels, channels: g.channels, planeSize: planeSize)
                                            }
                                            if let dxb {
                                                // dX [I, length] = W [I, O*KK] * columns [O*KK, length]
                                                let target = dxb + first * inChannels * positions
                                                if count == 1 {
                                                    BLAS.gemmSerial(target, wb, columns, m: inChannels, n: length, k: patch)
                                                } else {
                                                    BLAS.gemmSerial(rows, wb, columns, m: inChannels, n: length, k: patch)
                                                    Im2Col.rowsToImages(target, rows, count: count, channels: inChannels, positions: positions, bias: nil,
                                                                        planes: 0..<(count * inChannels))
                                                }
                                            }
                                            first += count
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let (dWeight, dBias) = needWeightGradient ? partials.sum(weightShape: weight.shape) : (nil, nil)
        return Gradients(input: needInputGradient ? Tensor(shape: input.shape, storage: dInput) : nil, weight: dWeight, bias: dBias)
    }

    /// Per-channel sums of a `[N, C, ...]` tensor -> `[C]` (the bias gradient).
    public static func channelSums(_ t: Tensor) -> Tensor {
        precondition(t.rank >= 2, "channelSums needs a [N, C, ...] tensor, got \(t.shape)")
        let n = t.shape[0], channels = t.shape[1], plane = t.count / max(1, n * channels)
        var sums = [Double](repeating: 0, count: channels)
        t.withUnsafeBufferPointer { p in
            for i in 0..<n {
                for c in 0..<channels {
                    let src = p.baseAddress! + (i * channels + c) * plane
                    var s: Float = 0
                    for j in 0..<plane { s += src[j] }
                    sums[c] += Double(s)
                }
            }
        }
        return Tensor(shape: [channels], storage: sums.map { Float($0) })
    }

    /// Sets the `images * channels` planes of `planeSize` elements at `out` to `bias[c]` (zero without a bias):
    /// the starting value that a GEMM (beta 1) or col2im then accumulates onto, so that no later pass adds the bias.
    @inlinable
    static func startAtBias(_ out: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>?, images: Int, channels: Int,
                            planeSize: Int) {
        guard let bias else { out.update(repeating: 0, count: images &* channels &* planeSize); return }
        for plane in 0..<(images &* channels) {
            (out + plane &* planeSize).update(repeating: bias[plane % channels], count: planeSize)
        }
    }

    /// `sums[r] += sum_j rows[r, j]` for a `[rowCount, rowLength]` matrix.
    @inlinable
    static func addRowSums(_ sums: UnsafeMutablePointer<Float>, _ rows: UnsafePointer<Float>, rowCount: Int, rowLength: Int) {
        for r in 0..<rowCount {
            let src = rows + r &* rowLength
            var s: Float = 0
            for j in 0..<rowLength { s += src[j] }
            sums[r] += s
        }
    }

    /// `sums[p % channels] += sum of plane p` for `planes` planes of `planeSize` elements.
    @inlinable
    static func addPlaneSums(_ sums: UnsafeMutablePointer<Float>, _ planesStart: UnsafePointer<Float>, planes: Int,
                             channels: Int, planeSize: Int) {
        for p in 0..<planes {
            let src = planesStart + p &* planeSize
            var s: Float = 0
            for j in 0..<planeSize { s += src[j] }
            sums[p % channels] += s
        }
    }

    /// Per-chunk partial weight and bias gradients, summed in chunk order (reproducible).
    struct WeightGradientPartials {
        var storage: [Float]
        let chunks: Int, weightCount: Int, biasCount: Int
        var stridePerChunk: Int { weightCount + biasCount }

        init(chunks: Int, weightCount: Int, biasCount: Int) {
            (self.chunks, self.weightCount, self.biasCount) = (chunks, weightCount, biasCount)
            storage = [Float](repeating: 0, count: chunks * (weightCount + biasCount))
        }

        /// The weight gradient (shaped `weightShape`) and the bias gradient.
        func sum(weightShape: [Int]) -> (Tensor, Tensor) {
            var total = [Float](storage[0..<stridePerChunk])
            total.withUnsafeMutableBufferPointer { t in
                storage.withUnsafeBufferPointer { s in
                    for chunk in 1..<max(1, chunks) {
                        let src = s.baseAddress! + chunk * stridePerChunk
                        for i in 0..<stridePerChunk { t[i] += src[i] }
                    }
                }
            }
            return (Tensor(shape: weightShape, storage: Array(total[0..<weightCount])),
                    Tensor(shape: [biasCount], storage: Array(total[weightCount...])))
        }
    }
}

extension Array where Element == Float {
    /// An array of `count` floats whose contents the caller must overwrite before reading.
    @inlinable
    init(uninitializedCount count: Int) {
        self.init(unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }
}

/// Calls `body` with the tensor's base pointer, or nil.
@inlinable
func withOptionalPointer<R>(_ t: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.withUnsafeBufferPointer { body($0.baseAddress!) }
}
