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

    /// Convolution forward. `input` `[N, C, H, W]`, `weight` `[O, C, KH, KW]`, `bias` `[O]` -> `[N, O, OH, OW]`.
    public static func forward(input: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
        let g = geometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0], outChannels = weight.shape[0], positions = g.outputPositions
        if let bias { precondition(bias.shape == [outChannels], "conv2d bias shape \(bias.shape) does not match [\(outChannels)]") }
        let chunk = Im2Col.chunkSize(images: n, floatsPerImage: (g.patchSize + outChannels) * positions)
        return Tensor(shape: [n, outChannels, g.outputHeight, g.outputWidth]) { out in
            input.withUnsafeBufferPointer { x in
                weight.withUnsafeBufferPointer { w in
                    withOptionalPointer(bias) { b in
                        ScratchPool.shared.withBuffer(chunk * g.patchSize * positions) { columns in
                            ScratchPool.shared.withBuffer(chunk * outChannels * positions) { rows in
                                var start = 0
                                while start < n {
                                    let count = min(chunk, n - start)
                                    Im2Col.im2col(columns, x.baseAddress! + start * g.imageSize, geometry: g, images: count)
                                    BLAS.gemm(rows, w.baseAddress!, columns, m: outChannels, n: count * positions, k: g.patchSize)
                                    Im2Col.rowsToImages(out + start * outChannels * positions, rows,
                                                        count: count, channels: outChannels, positions: positions, bias: b)
                                    start += count
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
    /// `needWeightGradient: false` (attacks, which only need d loss / d input) skips the
    /// im2col of the input, the weight GEMM and the bias sums; weight and bias are then nil.
    public static func backward(input: Tensor, weight: Tensor, outputGradient: Tensor,
                                stride: Int = 1, padding: Int = 0, needInputGradient: Bool = true,
                                needWeightGradient: Bool = true) -> Gradients {
        let g = geometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0], outChannels = weight.shape[0], positions = g.outputPositions
        precondition(outputGradient.shape == [n, outChannels, g.outputHeight, g.outputWidth],
                     "conv2d backward: gradient shape \(outputGradient.shape) does not match output shape \([n, outChannels, g.outputHeight, g.outputWidth])")
        var dWeight = Tensor.zeros(needWeightGradient ? weight.shape : [0])
        var dBias = Tensor.zeros([needWeightGradient ? outChannels : 0])
        var dInput: Tensor? = needInputGradient ? Tensor.zeros(input.shape) : nil
        guard needInputGradient || needWeightGradient else { return Gradients(input: nil, weight: nil, bias: nil) }
        let chunk = Im2Col.chunkSize(images: n, floatsPerImage: (g.patchSize + outChannels) * positions)
        input.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                outputGradient.withUnsafeBufferPointer { dy in
                    dWeight.withUnsafeMutableBufferPointer { dw in
                        dBias.withUnsafeMutableBufferPointer { db in
                            ScratchPool.shared.withBuffer(chunk * g.patchSize * positions) { columns in
                                ScratchPool.shared.withBuffer(chunk * outChannels * positions) { rows in
                                    var start = 0
                                    while start < n {
                                        let count = min(chunk, n - start)
                                        let length = count * positions
                                        Im2Col.imagesToRows(rows, dy.baseAddress! + start * outChannels * positions,
                                                            count: count, channels: outChannels, positions: positions)
                                        if needWeightGradient {
                                            Im2Col.im2col(columns, x.baseAddress! + start * g.imageSize, geometry: g, images: count)
                                            // dW [O, CKK] += dY^T [O, length] * columns^T [length, CKK]
                                            BLAS.gemm(dw.baseAddress!, rows, columns, m: outChannels, n: g.patchSize, k: length,
                                                      transposeB: true, beta: 1)
                                            addRowSums(db.baseAddress!, rows, rowCount: outChannels, rowLength: length)
                                        }
                                        if dInput != nil {
                                            // dcolumns [CKK, length] = W^T [CKK, O] * dY^T [O, length]
                                            BLAS.gemm(columns, w.baseAddress!, rows, m: g.patchSize, n: length, k: outChannels,
                                                      transposeA: true)
                                            dInput!.withUnsafeMutableBufferPointer { dx in
                                                Im2Col.col2im(dx.baseAddress! + start * g.imageSize, columns, geometry: g, images: count)
                                            }
                                        }
                                        start += count
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return Gradients(input: dInput, weight: needWeightGradient ? dWeight : nil, bias: needWeightGradient ? dBias : nil)
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
    public static func transposedForward(input: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
        let g = transposedGeometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0], inChannels = input.shape[1], positions = g.outputPositions
        if let bias { precondition(bias.shape == [g.channels], "conv-transpose2d bias shape \(bias.shape) does not match [\(g.channels)]") }
        let chunk = Im2Col.chunkSize(images: n, floatsPerImage: (g.patchSize + inChannels) * positions)
        var output = Tensor.zeros([n, g.channels, g.height, g.width])
        input.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                output.withUnsafeMutableBufferPointer { out in
                    ScratchPool.shared.withBuffer(chunk * g.patchSize * positions) { columns in
                        ScratchPool.shared.withBuffer(chunk * inChannels * positions) { rows in
                            var start = 0
                            while start < n {
                                let count = min(chunk, n - start)
                                Im2Col.imagesToRows(rows, x.baseAddress! + start * inChannels * positions,
                                                    count: count, channels: inChannels, positions: positions)
                                // columns [O*KK, length] = W^T [O*KK, I] * X^T [I, length]
                                BLAS.gemm(columns, w.baseAddress!, rows, m: g.patchSize, n: count * positions, k: inChannels,
                                          transposeA: true)
                                Im2Col.col2im(out.baseAddress! + start * g.imageSize, columns, geometry: g, images: count)
                                start += count
                            }
                        }
                    }
                    if let bias { addChannelBias(out.baseAddress!, bias, images: n, channels: g.channels, planeSize: g.height * g.width) }
                }
            }
        }
        return output
    }

    /// Transposed convolution backward from `outputGradient` `[N, O, OH, OW]`.
    ///
    /// `needWeightGradient: false` skips the weight GEMM and the bias sums; weight and bias are then nil.
    public static func transposedBackward(input: Tensor, weight: Tensor, outputGradient: Tensor,
                                          stride: Int = 1, padding: Int = 0, needInputGradient: Bool = true,
                                          needWeightGradient: Bool = true) -> Gradients {
        let g = transposedGeometry(input: input.shape, weight: weight.shape, stride: stride, padding: padding)
        let n = input.shape[0], inChannels = input.shape[1], positions = g.outputPositions
        precondition(outputGradient.shape == [n, g.channels, g.height, g.width],
                     "conv-transpose2d backward: gradient shape \(outputGradient.shape) does not match output shape \([n, g.channels, g.height, g.width])")
        var dWeight = Tensor.zeros(needWeightGradient ? weight.shape : [0])
        var dInput: Tensor? = needInputGradient ? Tensor.zeros(input.shape) : nil
        guard needInputGradient || needWeightGradient else { return Gradients(input: nil, weight: nil, bias: nil) }
        let dBias = needWeightGradient ? channelSums(outputGradient) : nil
        let chunk = Im2Col.chunkSize(images: n, floatsPerImage: (g.patchSize + inChannels) * positions)
        input.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                outputGradient.withUnsafeBufferPointer { dy in
                    dWeight.withUnsafeMutableBufferPointer { dw in
                        ScratchPool.shared.withBuffer(chunk * g.patchSize * positions) { columns in
                            ScratchPool.shared.withBuffer(chunk * inChannels * positions) { rows in
                                var start = 0
                                while start < n {
                                    let count = min(chunk, n - start)
                                    let length = count * positions
                                    Im2Col.im2col(columns, dy.baseAddress! + start * g.imageSize, geometry: g, images: count)
                                    if needWeightGradient {
                                        Im2Col.imagesToRows(rows, x.baseAddress! + start * inChannels * positions,
                                                            count: count, channels: inChannels, positions: positions)
                                        // dW [I, O*KK] += X^T [I, length] * columns^T [length, O*KK]
                                        BLAS.gemm(dw.baseAddress!, rows, columns, m: inChannels, n: g.patchSize, k: length,
                                                  transposeB: true, beta: 1)
                                    }
                                    if dInput != nil {
                                        // dX^T [I, length] = W [I, O*KK] * columns [O*KK, length]
                                        BLAS.gemm(rows, w.baseAddress!, columns, m: inChannels, n: length, k: g.patchSize)
                                        dInput!.withUnsafeMutableBufferPointer { dx in
                                            Im2Col.rowsToImages(dx.baseAddress! + start * inChannels * positions, rows,
                                                                count: count, channels: inChannels, positions: positions, bias: nil)
                                        }
                                    }
                                    start += count
                                }
                            }
                        }
                    }
                }
            }
        }
        return Gradients(input: dInput, weight: needWeightGradient ? dWeight : nil, bias: dBias)
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

    static func addChannelBias(_ out: UnsafeMutablePointer<Float>, _ bias: Tensor, images: Int, channels: Int, planeSize: Int) {
        bias.withUnsafeBufferPointer { b in
            Parallel.forEachChunk(images * channels, minimumPerChunk: max(1, 16384 / max(1, planeSize))) { range in
                for task in range {
                    let value = b[task % channels], dst = out + task * planeSize
                    for i in 0..<planeSize { dst[i] += value }
                }
            }
        }
    }

    /// `sums[r] += sum_j rows[r, j]` for a `[rowCount, rowLength]` matrix.
    static func addRowSums(_ sums: UnsafeMutablePointer<Float>, _ rows: UnsafePointer<Float>, rowCount: Int, rowLength: Int) {
        for r in 0..<rowCount {
            let src = rows + r * rowLength
            var s: Float = 0
            for j in 0..<rowLength { s += src[j] }
            sums[r] += s
        }
    }
}

/// Calls `body` with the tensor's base pointer, or nil.
@inlinable
func withOptionalPointer<R>(_ t: Tensor?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.withUnsafeBufferPointer { body($0.baseAddress!) }
}
