/// The three passes of a convolution over a batch, with the chunk, group and tile loops written once
/// (Caffe's `base_conv_layer`: `forward_cpu_gemm`, `backward_cpu_gemm`, `weight_cpu_gemm`).
///
/// Seen from the convolution `output [N, O, OH, OW] = W [O, CKK] * im2col(input [N, C, H, W])`:
/// - forward: `forwardResult = start + W * im2col(input)` (`start` is a bias `[O]` or zero);
/// - backward: `backwardResult = start + col2im(W^T * output)` (`start`: a bias `[C]` or zero);
/// - weight gradient: `dW [O, CKK] += output * im2col(input)^T` into per-chunk partial sums, and the
///   bias gradient from the channel sums of `output` (convolution) or of `input` (transposed).
///
/// A convolution runs forward, or weight gradient + backward with `output` = dY. A transposed
/// convolution is the same geometry with the roles swapped (Caffe's deconvolution layer): its forward
/// is the backward pass with `output` = its input and `start` = its bias; its backward is the weight
/// gradient and the forward pass with `input` = its dY (sharing one im2col) and `output` = its input.
///
/// Work is split into `chunkCount` chunks of images; each chunk handles either one image at a time, in
/// tiles of output rows whose columns stay in cache, or a group of small images gathered into one GEMM.
@usableFromInline
struct ConvolutionPasses {
    /// Where the bias gradient's sums come from.
    enum BiasSums { case ofOutput, ofInput }

    let geometry: ConvolutionGeometry
    /// N.
    let images: Int
    /// O: channels of the output side.
    let outputChannels: Int
    /// `[O, C, KH, KW]`.
    let weight: UnsafePointer<Float>
    /// `[N, C, H, W]`: what im2col reads (forward and weight gradient).
    var input: UnsafePointer<Float>? = nil
    /// `[N, O, OH, OW]`: what the weight gradient and the backward pass read.
    var output: UnsafePointer<Float>? = nil
    /// `[N, O, OH, OW]`, written by the forward pass; with `forwardStart` (`[O]`) as its starting value.
    var forwardResult: UnsafeMutablePointer<Float>? = nil
    var forwardStart: UnsafePointer<Float>? = nil
    /// `[N, C, H, W]`, written by the backward pass; with `backwardStart` (`[C]`) as its starting value.
    var backwardResult: UnsafeMutablePointer<Float>? = nil
    var backwardStart: UnsafePointer<Float>? = nil
    /// Per-chunk partial sums `[chunks, O*CKK + biasCount]` of the weight and bias gradients (nil: no weight gradient).
    var weightGradients: UnsafeMutablePointer<Float>? = nil
    var partialStride = 0
    var biasSums = BiasSums.ofOutput
    /// A ReLU fused into the forward (backward) pass: applied to each image's result while it is in cache.
    var forwardReLU = false, backwardReLU = false
    /// The output of a fused ReLU on the output (input) side: `output` (`input`) is read as
    /// `value * (mask > 0 ? 1 : 0)`, the ReLU's backward, image by image into a scratch buffer in cache.
    var outputMask: UnsafePointer<Float>? = nil, inputMask: UnsafePointer<Float>? = nil

    init(geometry: ConvolutionGeometry, images: Int, outputChannels: Int, weight: UnsafePointer<Float>) {
        (self.geometry, self.images, self.outputChannels, self.weight) = (geometry, images, outputChannels, weight)
    }

    /// Runs the passes that have a result, chunk by chunk.
    func run() {
        precondition(forwardResult == nil || backwardResult == nil, "forward and backward passes share a scratch buffer")
        let g = geometry, positions = g.outputPositions, patch = g.patchSize
        let pointwise = g.kernelHeight == 1 && g.kernelWidth == 1 && g.stride == 1 && g.padding == 0
        let gathersOutput = weightGradients != nil || backwardResult != nil
        Parallel.forEach(chunks: ConvolutionKernels.chunkCount(images: images), of: images) { chunk, range in
            let group = ConvolutionKernels.groupSize(positions: positions, limit: range.count)
            let tileRows = ConvolutionKernels.tiles(patch: patch, geometry: g).rows
            let columnsSize = group > 1 ? group * patch * positions : (pointwise ? 0 : patch * tileRows * g.outputWidth)
            let rowsSize = group > 1 || outputMask != nil ? group * outputChannels * positions : 0
            ScratchPool.shared.withBuffer(columnsSize) { columns in
                ScratchPool.shared.withBuffer(rowsSize) { rows in
                    ScratchPool.shared.withBuffer(inputMask != nil ? group * g.imageSize : 0) { maskedInput in
                        let partial = weightGradients.map { $0 + chunk * partialStride }
                        var first = range.lowerBound
                        while first < range.upperBound {
                            let count = min(group, range.upperBound - first)
                            var x = input.map { $0 + first * g.imageSize }  // [count, C, H, W]
                            if let mask = inputMask, let source = x {
                                ConvolutionKernels.maskedCopy(
                                    maskedInput, source, mask: mask + first * g.imageSize,
                                    count: count * g.imageSize)
                                x = UnsafePointer(maskedInput)
                            }
                            if count == 1 && !pointwise {
                                runTiled(image: first, input: x, rows: tileRows, columns: columns, scratch: rows, partial: partial)
                            } else {
                                runGroup(
                                    first: first, count: count, input: x, pointwise: pointwise, gathersOutput: gathersOutput,
                                    columns: columns, rows: rows, partial: partial)
                            }
                            first += count
                        }
                    }
                }
            }
        }
    }

    /// One image in tiles of `rows` output rows: im2col of a tile, then every pass on it.
    /// `x` is the image's input (masked when `inputMask` is set); `scratch` holds `[O, P]` floats when `outputMask` is set.
    func runTiled(
        image n: Int, input x: UnsafePointer<Float>?, rows tileRows: Int, columns: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>, partial: UnsafeMutablePointer<Float>?
    ) {
        let g = geometry, positions = g.outputPositions, patch = g.patchSize, ow = g.outputWidth, o = outputChannels
        var dy = output.map { $0 + n * o * positions }  // [O, P]
        if let mask = outputMask, let source = dy, partial != nil || backwardResult != nil {
            ConvolutionKernels.maskedCopy(scratch, source, mask: mask + n * o * positions, count: o * positions)
            dy = UnsafePointer(scratch)
        }
        let y = forwardResult.map { $0 + n * o * positions }  // [O, P]
        let dx = backwardResult.map { $0 + n * g.imageSize }  // [C, H, W]
        if let y { ConvolutionKernels.startAtBias(y, forwardStart, images: 1, channels: o, planeSize: positions) }
        if let dx { ConvolutionKernels.startAtBias(dx, backwardStart, images: 1, channels: g.channels, planeSize: g.height * g.width) }
        var t = 0
        while t < g.outputHeight {
            let outputRows = t..<min(g.outputHeight, t + tileRows), length = outputRows.count * ow, offset = t * ow
            if y != nil || partial != nil {
                Im2Col.im2colSerial(columns, x!, geometry: g, images: 1, outputRows: outputRows)  // [CKK, length]
            }
            if let partial {
                // dW [O, CKK] += dY [O, length] * columns^T
                BLAS.gemmSerial(
                    partial, dy! + offset, columns, m: o, n: patch, k: length, transposeB: true, beta: 1,
                    lda: positions)
            }
            if let y {
                // Y [O, length] += W [O, CKK] * columns
                BLAS.gemmSerial(y + offset, weight, columns, m: o, n: length, k: patch, beta: 1, ldc: positions)
            }
            if let dx {
                // columns [CKK, length] = W^T * dY [O, length], folded into dX
                BLAS.gemmSerial(columns, weight, dy! + offset, m: patch, n: length, k: o, transposeA: true, ldb: positions)
                Im2Col.col2imSerial(dx, columns, geometry: g, images: 1, outputRows: outputRows)
            }
            t += tileRows
        }
        if let y, forwardReLU { ConvolutionKernels.reluInPlace(y, count: o * positions) }
        if let dx, backwardReLU { ConvolutionKernels.reluInPlace(dx, count: g.imageSize) }
        if let partial { addBiasSums(partial, input: x, output: dy, images: 1, rowLength: positions) }
    }

    /// `count` images in one GEMM per pass (gathered into `[O, count * P]` rows when `count > 1`);
    /// also a single image of a pointwise (1x1) convolution, whose column matrix is the image itself.
    func runGroup(
        first: Int, count: Int, input x: UnsafePointer<Float>?, pointwise: Bool, gathersOutput: Bool,
        columns: UnsafeMutablePointer<Float>, rows: UnsafeMutablePointer<Float>, partial: UnsafeMutablePointer<Float>?
    ) {
        let g = geometry, positions = g.outputPositions, patch = g.patchSize, o = outputChannels, length = count * positions
        var dy = output.map { $0 + first * o * positions }  // [count, O, P], then [O, length]
        let mask = outputMask.map { $0 + first * o * positions }
        if count > 1, gathersOutput, let source = dy {
            Im2Col.imagesToRows(rows, source, count: count, channels: o, positions: positions, planes: 0..<(count * o), mask: mask)
            dy = UnsafePointer(rows)
        } else if let mask, gathersOutput, let source = dy {
            ConvolutionKernels.maskedCopy(rows, source, mask: mask, count: o * positions)
            dy = UnsafePointer(rows)
        }
        var cols: UnsafePointer<Float>? = nil  // [CKK, length]
        if forwardResult != nil || partial != nil {
            if pointwise && count == 1 {
                cols = x
            } else {
                Im2Col.im2colSerial(columns, x!, geometry: g, images: count)
                cols = UnsafePointer(columns)
            }
        }
        if let partial {
            // dW [O, CKK] += dY [O, length] * columns^T [length, CKK]
            BLAS.gemmSerial(partial, dy!, cols!, m: o, n: patch, k: length, transposeB: true, beta: 1)
            addBiasSums(partial, input: x, output: dy, images: count, rowLength: length)
        }
        if let y = forwardResult.map({ $0 + first * o * positions }) {
            if count == 1 {
                ConvolutionKernels.startAtBias(y, forwardStart, images: 1, channels: o, planeSize: positions)
                BLAS.gemmSerial(y, weight, cols!, m: o, n: positions, k: patch, beta: 1)
            } else {
                BLAS.gemmSerial(rows, weight, cols!, m: o, n: length, k: patch)
                Im2Col.rowsToImages(
                    y, rows, count: count, channels: o, positions: positions, bias: forwardStart,
                    planes: 0..<(count * o))
            }
            if forwardReLU { ConvolutionKernels.reluInPlace(y, count: count * o * positions) }
        }
        if let dx = backwardResult.map({ $0 + first * g.imageSize }) {
            if pointwise {
                // dX [C, length] = W^T [C, O] * dY [O, length]; col2im of a 1x1 kernel is the identity.
                if count == 1 {
                    if backwardStart != nil {
                        ConvolutionKernels.startAtBias(dx, backwardStart, images: 1, channels: g.channels, planeSize: positions)
                    }
                    BLAS.gemmSerial(dx, weight, dy!, m: patch, n: length, k: o, transposeA: true, beta: backwardStart == nil ? 0 : 1)
                } else {
                    BLAS.gemmSerial(columns, weight, dy!, m: patch, n: length, k: o, transposeA: true)
                    Im2Col.rowsToImages(
                        dx, columns, count: count, channels: g.channels, positions: positions, bias: backwardStart,
                        planes: 0..<(count * g.channels))
                }
            } else {
                // dcolumns [CKK, length] = W^T [CKK, O] * dY [O, length], folded into dX
                BLAS.gemmSerial(columns, weight, dy!, m: patch, n: length, k: o, transposeA: true)
                ConvolutionKernels.startAtBias(dx, backwardStart, images: count, channels: g.channels, planeSize: g.height * g.width)
                Im2Col.col2imSerial(dx, columns, geometry: g, images: count)
            }
            if backwardReLU { ConvolutionKernels.reluInPlace(dx, count: count * g.imageSize) }
        }
    }

    /// Adds the bias gradient's sums to the chunk's partial bias (after its `O * CKK` weight entries):
    /// row sums of `output` (`[O, rowLength]`) or channel sums of `input` (`[images, C, H, W]`).
    func addBiasSums(
        _ partial: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>?, output dy: UnsafePointer<Float>?,
        images count: Int, rowLength: Int
    ) {
        let g = geometry, bias = partial + outputChannels * g.patchSize
        switch biasSums {
        case .ofOutput:
            ConvolutionKernels.addRowSums(bias, dy!, rowCount: outputChannels, rowLength: rowLength)
        case .ofInput:
            ConvolutionKernels.addPlaneSums(
                bias, x!, planes: count * g.channels, channels: g.channels,
                planeSize: g.height * g.width)
        }
    }
}
