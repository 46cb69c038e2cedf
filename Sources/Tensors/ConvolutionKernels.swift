/// Convolution and transposed convolution on whole batches: batched im2col plus
/// one `cblas_sgemm` per chunk of images (backward: GEMM for the weight gradient,
/// GEMM + col2im for the input gradient, a row sum for the bias).
///
/// Passes that `DirectConvolution.applies` to (3x3, stride 1, padding <= 2, >= 8 channels in and
/// >= 16 out or one channel in or out, an AVX2 + FMA3 CPU) run on the direct kernels instead, pass by
/// pass: a backward may take its input gradient from one path and its weight gradient from the other.
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
        precondition(
            input.count == 4 && weight.count == 4,
            "conv2d needs a [N, C, H, W] input and a [out, in, kh, kw] weight, got \(input) and \(weight)")
        precondition(
            input[1] == weight[1],
            "conv2d: input shape \(input) has \(input[1]) channels but weight shape \(weight) expects \(weight[1])")
        return ConvolutionGeometry(
            channels: input[1], height: input[2], width: input[3],
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
    /// Each chunk of images: im2col of a tile of output rows (one image) or of a group of small images,
    /// then one GEMM `W [O, CKK] * columns` onto the bias (see `ConvolutionPasses`).
    ///
    /// `reLU: true` applies `max(0, .)` to each image's output while it is in cache (a fused ReLU; its
    /// backward is `backward(..., reLUOutput:)`).
    public static func forward(
        input: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0,
        reLU: Bool = false
    ) -> Tensor {
        let g = geometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0], outChannels = weight.shape[0]
        if let bias { precondition(bias.shape == [outChannels], "conv2d bias shape \(bias.shape) does not match [\(outChannels)]") }
        return Tensor(shape: [n, outChannels, g.outputHeight, g.outputWidth]) { out in
            input.withUnsafeBufferPointer { x in
                weight.withUnsafeBufferPointer { w in
                    withOptionalPointer(bias) { b in
                        if DirectConvolution.applies(g, inputs: g.channels, outputs: outChannels) {
                            DirectConvolution.run(
                                output: out, input: x.baseAddress!, mask: nil, weight: w.baseAddress!, rotated: false, bias: b,
                                reLU: reLU, images: n, channels: g.channels, height: g.height, width: g.width,
                                outputChannels: outChannels, padding: g.padding, weightTensor: weight)
                            return
                        }
                        var passes = ConvolutionPasses(geometry: g, images: n, outputChannels: outChannels, weight: w.baseAddress!)
                        (passes.input, passes.forwardResult, passes.forwardStart) = (x.baseAddress, out, b)
                        passes.forwardReLU = reLU
                        passes.run()
                    }
                }
            }
        }
    }

    /// `forward` followed by a 2 x 2 max pooling of its output (`PoolingKernels.maxPool(_, size: 2)`): the
    /// output, the pooled output and the pooling's argmax, the same values. Through the direct kernels each
    /// image is pooled while its output is in cache; the im2col path pools the batch after.
    public static func forwardPooled(
        input: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0, reLU: Bool = false
    ) -> (output: Tensor, pooled: Tensor, argmax: [Int32]) {
        let g = geometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0], outChannels = weight.shape[0]
        guard DirectConvolution.applies(g, inputs: g.channels, outputs: outChannels), g.outputHeight >= 2, g.outputWidth >= 2
        else {
            let output = forward(input: input, weight: weight, bias: bias, stride: stride, padding: padding, reLU: reLU)
            let (pooled, argmax) = PoolingKernels.maxPool(output, size: 2)
            return (output, pooled, argmax)
        }
        if let bias { precondition(bias.shape == [outChannels], "conv2d bias shape \(bias.shape) does not match [\(outChannels)]") }
        let pooledShape = [n, outChannels, g.outputHeight / 2, g.outputWidth / 2]
        var argmax = [Int32](unsafeUninitializedCapacity: pooledShape.elementCount) { _, initialized in
            initialized = pooledShape.elementCount
        }
        // every value of both tensors is written by the kernels: neither is zeroed first
        var output = Tensor(shape: [])
        let pooled = Tensor(shape: pooledShape) { pooled in
            output = Tensor(shape: [n, outChannels, g.outputHeight, g.outputWidth]) { out in
                input.withUnsafeBufferPointer { x in
                    weight.withUnsafeBufferPointer { w in
                        withOptionalPointer(bias) { b in
                            argmax.withUnsafeMutableBufferPointer { argmax in
                                DirectConvolution.run(
                                    output: out, input: x.baseAddress!, mask: nil, weight: w.baseAddress!, rotated: false, bias: b,
                                    reLU: reLU, images: n, channels: g.channels, height: g.height, width: g.width,
                                    outputChannels: outChannels, padding: g.padding, pool: (pooled, argmax.baseAddress!),
                                    weightTensor: weight)
                            }
                        }
                    }
                }
            }
        }
        return (output, pooled, argmax)
    }

    /// `backward` of `forwardPooled` from the gradient of the pooled output `[N, O, OH / 2, OW / 2]` and the
    /// pooling's `argmax`. For the input gradient alone (attacks) through the direct kernels, each image's output
    /// gradient is unpooled in cache just before the input-gradient pass reads it (no `[N, O, OH, OW]` tensor);
    /// else `PoolingKernels.maxPoolBackward`, then `backward` (training: the weight gradient's pass would unpool
    /// each image a second time, which measured no faster). The same values either way.
    public static func backwardThroughPool(
        input: Tensor, weight: Tensor, pooledGradient: Tensor, argmax: [Int32], stride: Int = 1, padding: Int = 0,
        needInputGradient: Bool = true, needWeightGradient: Bool = true, reLUOutput: Tensor? = nil
    ) -> Gradients {
        let g = geometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0], outChannels = weight.shape[0]
        let outputShape = [n, outChannels, g.outputHeight, g.outputWidth]
        precondition(
            pooledGradient.shape == [n, outChannels, g.outputHeight / 2, g.outputWidth / 2] && argmax.count == pooledGradient.count,
            "conv2d backward through a 2 x 2 pooling: gradient shape \(pooledGradient.shape) does not match output shape \(outputShape)")
        if let reLUOutput {
            precondition(
                reLUOutput.shape == outputShape, "conv2d backward: ReLU output shape \(reLUOutput.shape) does not match \(outputShape)")
        }
        guard needInputGradient, !needWeightGradient, DirectConvolution.applies(g, inputs: outChannels, outputs: g.channels) else {
            let outputGradient = PoolingKernels.maxPoolBackward(outputGradient: pooledGradient, argmax: argmax, inputShape: outputShape)
            return backward(
                input: input, weight: weight, outputGradient: outputGradient, stride: stride, padding: padding,
                needInputGradient: needInputGradient, needWeightGradient: needWeightGradient, reLUOutput: reLUOutput)
        }
        let data = Tensor(shape: input.shape) { result in
            pooledGradient.withUnsafeBufferPointer { pooled in
                argmax.withUnsafeBufferPointer { argmax in
                    weight.withUnsafeBufferPointer { w in
                        withOptionalPointer(reLUOutput) { mask in
                            DirectConvolution.run(
                                output: result, input: pooled.baseAddress!, mask: mask, weight: w.baseAddress!, rotated: true,
                                bias: nil, reLU: false, images: n, channels: outChannels, height: g.outputHeight,
                                width: g.outputWidth, outputChannels: g.channels, padding: 2 - g.padding,
                                unpool: (pooled.baseAddress!, argmax.baseAddress!), weightTensor: weight)
                        }
                    }
                }
            }
        }
        return Gradients(input: data, weight: nil, bias: nil)
    }

    /// Convolution backward from `outputGradient` `[N, O, OH, OW]`.
    ///
    /// Per image or group of images (see `ConvolutionPasses`): `dW [O, CKK] += dY [O, P] * columns^T`
    /// into the chunk's partial sums, `db +=` row sums of dY, and `dcolumns = W^T * dY` folded into dX
    /// by col2im. Partial sums are added in chunk order at the end.
    ///
    /// `needWeightGradient: false` (attacks, which only need d loss / d input) skips the
    /// im2col of the input, the weight GEMM and the bias sums; weight and bias are then nil.
    ///
    /// `reLUOutput` (the output of `forward(..., reLU: true)`): `outputGradient` is the gradient of the fused
    /// ReLU's output, taken where `reLUOutput > 0` only (the ReLU's backward, image by image in cache).
    public static func backward(
        input: Tensor, weight: Tensor, outputGradient: Tensor,
        stride: Int = 1, padding: Int = 0, needInputGradient: Bool = true,
        needWeightGradient: Bool = true, reLUOutput: Tensor? = nil
    ) -> Gradients {
        let g = geometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0], outChannels = weight.shape[0]
        precondition(
            outputGradient.shape == [n, outChannels, g.outputHeight, g.outputWidth],
            "conv2d backward: gradient shape \(outputGradient.shape) does not match output shape \([n, outChannels, g.outputHeight, g.outputWidth])"
        )
        if let reLUOutput {
            precondition(
                reLUOutput.shape == outputGradient.shape,
                "conv2d backward: ReLU output shape \(reLUOutput.shape) does not match \(outputGradient.shape)")
        }
        return gradients(
            geometry: g, input: input, output: outputGradient, weight: weight, dataGradient: .backward,
            biasSums: .ofOutput, needDataGradient: needInputGradient, needWeightGradient: needWeightGradient,
            mask: reLUOutput)
    }

    /// The output geometry of a transposed convolution, seen as the convolution it inverts.
    static func transposedGeometry(input: [Int], weight: [Int], stride: Int, padding: Int) -> ConvolutionGeometry {
        precondition(
            input.count == 4 && weight.count == 4,
            "conv-transpose2d needs a [N, C, H, W] input and an [in, out, kh, kw] weight, got \(input) and \(weight)")
        precondition(
            input[1] == weight[0],
            "conv-transpose2d: input shape \(input) has \(input[1]) channels but weight shape \(weight) expects \(weight[0])")
        let height = (input[2] - 1) * stride - 2 * padding + weight[2]
        let width = (input[3] - 1) * stride - 2 * padding + weight[3]
        precondition(
            height > 0 && width > 0,
            "conv-transpose2d: padding \(padding) is too large for input shape \(input) and weight shape \(weight) (output would be \(height)x\(width))"
        )
        let g = ConvolutionGeometry(
            channels: weight[1], height: height, width: width,
            kernelHeight: weight[2], kernelWidth: weight[3], stride: stride, padding: padding)
        precondition(g.outputHeight == input[2] && g.outputWidth == input[3], "conv-transpose2d geometry mismatch")
        return g
    }
    /// Transposed convolution forward. `input` `[N, I, H, W]`, `weight` `[I, O, KH, KW]`, `bias` `[O]`
    /// -> `[N, O, (H-1)*stride - 2*padding + KH, ...]`.
    ///
    /// The input gradient of the convolution it inverts, started at the bias (Caffe's deconvolution):
    /// `columns [O*KK, P] = W^T [O*KK, I] * X [I, P]`, folded into the output by col2im.
    ///
    /// `reLU: true` applies `max(0, .)` to each image's output while it is in cache (see `forward`).
    ///
    /// `upsampling: true`: the layer's input is the 2x nearest upsampling `[N, I, 2H, 2W]` of `input` `[N, I, H, W]`
    /// (`upsampleNearest(input, height: 2H, width: 2W)`, the same values), which the direct kernels make in cache as
    /// they read it (`DirectConvolution.run`'s `upsample`), with no pass and no tensor of its own.
    ///
    /// `sigmoid: true`: the output goes through `Tensor.sigmoid` (after the ReLU if any), on the direct kernels by each
    /// thread as soon as it has made its outputs (a `Sigmoid` layer after this one, without its pass).
    public static func transposedForward(
        input: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0,
        reLU: Bool = false, upsampling: Bool = false, sigmoid: Bool = false
    ) -> Tensor {
        var layerShape = input.shape
        if upsampling {
            precondition(input.rank == 4, "upsample needs a [N, C, H, W] input, got \(input.shape)")
            layerShape[2] *= 2
            layerShape[3] *= 2
        }
        let g = transposedGeometry(input: layerShape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0], inChannels = input.shape[1]
        if upsampling && !DirectConvolution.applies(g, inputs: inChannels, outputs: g.channels) {
            let upsampled = PoolingKernels.upsampleNearest(input, height: layerShape[2], width: layerShape[3])
            return transposedForward(
                input: upsampled, weight: weight, bias: bias, stride: stride, padding: padding, reLU: reLU, sigmoid: sigmoid)
        }
        if let bias { precondition(bias.shape == [g.channels], "conv-transpose2d bias shape \(bias.shape) does not match [\(g.channels)]") }
        return Tensor(shape: [n, g.channels, g.height, g.width]) { out in
            input.withUnsafeBufferPointer { x in
                weight.withUnsafeBufferPointer { w in
                    withOptionalPointer(bias) { b in
                        if DirectConvolution.applies(g, inputs: inChannels, outputs: g.channels) {
                            // the input gradient of the convolution it inverts: the rotated weight, padding 2 - p
                            DirectConvolution.run(
                                output: out, input: x.baseAddress!, mask: nil, weight: w.baseAddress!, rotated: true, bias: b,
                                reLU: reLU, images: n, channels: inChannels, height: g.outputHeight, width: g.outputWidth,
                                outputChannels: g.channels, padding: 2 - g.padding, upsample: upsampling, sigmoid: sigmoid,
                                weightTensor: weight)
                            return
                        }
                        var passes = ConvolutionPasses(geometry: g, images: n, outputChannels: inChannels, weight: w.baseAddress!)
                        (passes.output, passes.backwardResult, passes.backwardStart) = (x.baseAddress, out, b)
                        passes.backwardReLU = reLU
                        passes.run()
                        if sigmoid {
                            Parallel.forEachChunk(n * g.channels * g.height * g.width, minimumPerChunk: 256) { range in
                                for i in range { out[i] = Tensor.sigmoid(out[i]) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Transposed convolution backward from `outputGradient` `[N, O, OH, OW]`.
    ///
    /// The convolution it inverts with the roles swapped (Caffe's deconvolution): `columns = im2col(dY)`;
    /// `dW [I, O*KK] += X [I, P] * columns^T` (the convolution's weight gradient); `dX [I, P] = W * columns`
    /// (the convolution's forward, sharing the im2col); `db` = channel sums of dY.
    ///
    /// `needWeightGradient: false` skips the weight GEMM and the bias sums; weight and bias are then nil.
    ///
    /// `reLUOutput`: the output of `transposedForward(..., reLU: true)` (see `backward`).
    public static func transposedBackward(
        input: Tensor, weight: Tensor, outputGradient: Tensor,
        stride: Int = 1, padding: Int = 0, needInputGradient: Bool = true,
        needWeightGradient: Bool = true, reLUOutput: Tensor? = nil
    ) -> Gradients {
        let g = transposedGeometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0]
        precondition(
            outputGradient.shape == [n, g.channels, g.height, g.width],
            "conv-transpose2d backward: gradient shape \(outputGradient.shape) does not match output shape \([n, g.channels, g.height, g.width])"
        )
        if let reLUOutput {
            precondition(
                reLUOutput.shape == outputGradient.shape,
                "conv-transpose2d backward: ReLU output shape \(reLUOutput.shape) does not match \(outputGradient.shape)")
        }
        if let reLUOutput, g.padding == 0, needInputGradient, needWeightGradient,
            DirectConvolution.applies(g, inputs: g.channels, outputs: weight.shape[0]),
            DirectConvolution.appliesToWeightGradient(g, outputs: weight.shape[0])
        {
            // Both passes read the masked gradient without padding: masked once here (the kernels' expression, so
            // the same values), each pass reads it in place instead of making its own masked copy of each image.
            let masked = outputGradient.zipMap(reLUOutput) { $0 * ($1 > 0 ? 1 : 0) }
            return gradients(
                geometry: g, input: masked, output: input, weight: weight, dataGradient: .forward, biasSums: .ofInput,
                needDataGradient: true, needWeightGradient: true, mask: nil)
        }
        return gradients(
            geometry: g, input: outputGradient, output: input, weight: weight, dataGradient: .forward,
            biasSums: .ofInput, needDataGradient: needInputGradient, needWeightGradient: needWeightGradient,
            mask: reLUOutput)
    }

    /// Which pass of `ConvolutionPasses` gives the data gradient of a backward.
    enum DataGradient { case forward, backward }

    /// The weight and bias gradients (`weight` `[O, C, KH, KW]`, bias sums as `biasSums` says) and the data
    /// gradient of `dataGradient`'s pass, seen from the convolution `output [N, O, P] = W * im2col(input)`.
    /// `mask`: a fused ReLU's output, shaped like the gradient it masks (`output` for the convolution,
    /// `input` for the transposed convolution).
    static func gradients(
        geometry g: ConvolutionGeometry, input: Tensor, output: Tensor, weight: Tensor,
        dataGradient: DataGradient, biasSums: ConvolutionPasses.BiasSums,
        needDataGradient: Bool, needWeightGradient: Bool, mask: Tensor?
    ) -> Gradients {
        guard needDataGradient || needWeightGradient else { return Gradients(input: nil, weight: nil, bias: nil) }
        let n = input.shape[0], outChannels = weight.shape[0]
        let biasCount = biasSums == .ofOutput ? outChannels : g.channels
        let dataShape = dataGradient == .backward ? input.shape : output.shape
        var data = needDataGradient ? [Float](uninitializedCount: dataShape.elementCount) : []
        // The data and weight gradients through the direct 3x3 kernels where they apply; the passes do the rest.
        let directData =
            needDataGradient
            && (dataGradient == .backward
                ? DirectConvolution.applies(g, inputs: outChannels, outputs: g.channels)
                : DirectConvolution.applies(g, inputs: g.channels, outputs: outChannels))
        let directWeights = needWeightGradient && DirectConvolution.appliesToWeightGradient(g, outputs: outChannels)
        // the direct kernels write their partials (`accumulateWeightGradients`); the passes add to zeros
        var partials = WeightGradientPartials(
            chunks: needWeightGradient ? chunkCount(images: n) : 0, weightCount: weight.count,
            biasCount: biasCount, zeroed: !directWeights)
        let partialStride = partials.stridePerChunk
        input.withUnsafeBufferPointer { x in
            output.withUnsafeBufferPointer { dy in
                weight.withUnsafeBufferPointer { w in
                    data.withUnsafeMutableBufferPointer { d in
                        partials.storage.withUnsafeMutableBufferPointer { sums in
                            withOptionalPointer(mask) { m in
                                if directData {
                                    directDataGradient(
                                        d.baseAddress!, geometry: g, input: x.baseAddress!, output: dy.baseAddress!,
                                        weight: w.baseAddress!, images: n, outputChannels: outChannels,
                                        dataGradient: dataGradient, mask: m, weightTensor: weight)
                                }
                                if directWeights {
                                    DirectConvolution.accumulateWeightGradients(
                                        sums.baseAddress!, partialStride: partialStride, chunks: partials.chunks,
                                        biasOfInput: biasSums == .ofInput, input: x.baseAddress!,
                                        inputMask: dataGradient == .forward ? m : nil, outputGradient: dy.baseAddress!,
                                        outputMask: dataGradient == .backward ? m : nil, images: n, channels: g.channels,
                                        height: g.height, width: g.width, outputChannels: outChannels, padding: g.padding)
                                }
                                let passData = needDataGradient && !directData, passWeights = needWeightGradient && !directWeights
                                guard passData || passWeights else { return }
                                var passes = ConvolutionPasses(geometry: g, images: n, outputChannels: outChannels, weight: w.baseAddress!)
                                (passes.input, passes.output) = (x.baseAddress, dy.baseAddress)
                                if passData {
                                    if dataGradient == .backward {
                                        passes.backwardResult = d.baseAddress
                                    } else {
                                        passes.forwardResult = d.baseAddress
                                    }
                                }
                                if passWeights {
                                    (passes.weightGradients, passes.partialStride) = (sums.baseAddress, partialStride)
                                    passes.biasSums = biasSums
                                }
                                if dataGradient == .backward { passes.outputMask = m } else { passes.inputMask = m }
                                passes.run()
                            }
                        }
                    }
                }
            }
        }
        let (dWeight, dBias) = needWeightGradient ? partials.sum(weightShape: weight.shape) : (nil, nil)
        return Gradients(input: needDataGradient ? Tensor(shape: dataShape, storage: data) : nil, weight: dWeight, bias: dBias)
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
    static func startAtBias(
        _ out: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>?, images: Int, channels: Int,
        planeSize: Int
    ) {
        guard let bias else { out.update(repeating: 0, count: images &* channels &* planeSize); return }
        for plane in 0..<(images &* channels) {
            (out + plane &* planeSize).update(repeating: bias[plane % channels], count: planeSize)
        }
    }

    /// `dst[i] = src[i] * (mask[i] > 0 ? 1 : 0)`: a ReLU's backward with its output as `mask` (the same
    /// expression as the element-wise ReLU's backward, so the results are the same bit for bit).
    @inlinable
    static func maskedCopy(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, mask: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] = src[i] * (mask[i] > 0 ? 1 : 0) }
    }

    /// `p[i] = max(0, p[i])` as the element-wise ReLU computes it (`x > 0 ? x : 0`).
    @inlinable
    static func reluInPlace(_ p: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { p[i] = p[i] > 0 ? p[i] : 0 }
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
    static func addPlaneSums(
        _ sums: UnsafeMutablePointer<Float>, _ planesStart: UnsafePointer<Float>, planes: Int,
        channels: Int, planeSize: Int
    ) {
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

        /// Zeros when `zeroed`, else memory that the kernels must write before `sum` reads it.
        init(chunks: Int, weightCount: Int, biasCount: Int, zeroed: Bool = true) {
            (self.chunks, self.weightCount, self.biasCount) = (chunks, weightCount, biasCount)
            let count = chunks * (weightCount + biasCount)
            storage = zeroed ? [Float](repeating: 0, count: count) : [Float](uninitializedCount: count)
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
            return (
                Tensor(shape: weightShape, storage: Array(total[0..<weightCount])),
                Tensor(shape: [biasCount], storage: Array(total[weightCount...]))
            )
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
