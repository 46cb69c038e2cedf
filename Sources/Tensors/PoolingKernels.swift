import _ConvKernels

/// Max pooling with argmax and nearest-neighbour upsampling, parallel over planes.
public enum PoolingKernels {
    /// Max pooling with a square window of `size` and stride `size` (floor mode, as PyTorch).
    /// Returns the output `[N, C, H/size, W/size]` and, for each output element, the
    /// index within its input plane of the maximum (for the backward pass).
    public static func maxPool(_ input: Tensor, size: Int) -> (output: Tensor, argmax: [Int32]) {
        precondition(input.rank == 4, "max-pool needs a [N, C, H, W] input, got \(input.shape)")
        precondition(
            size > 0 && input.shape[2] >= size && input.shape[3] >= size,
            "max-pool window \(size) does not fit input shape \(input.shape)")
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let oh = h / size, ow = w / size
        var argmax = [Int32](unsafeUninitializedCapacity: n * c * oh * ow) { _, initialized in initialized = n * c * oh * ow }
        let output = Tensor(shape: [n, c, oh, ow]) { out in
            input.withUnsafeBufferPointer { x in
                argmax.withUnsafeMutableBufferPointer { arg in
                    let argBase = arg.baseAddress!
                    Parallel.forEachChunk(n &* c, minimumPerChunk: max(1, 8192 / max(1, h &* w))) { range in
                        for plane in range {
                            let src = x.baseAddress! + plane &* h &* w
                            let dst = out + plane &* oh &* ow, dstArg = argBase + plane &* oh &* ow
                            if size == 2 {
                                max_pool_2x2(dst, dstArg, src, 1, Int32(h), Int32(w), DirectConvolution.poolingInstructionSet)
                                continue
                            }
                            for y in 0..<oh {
                                for xo in 0..<ow {
                                    var best = -Float.infinity, bestIndex = (y &* size) &* w &+ xo &* size
                                    for dy in 0..<size {
                                        let row = (y &* size &+ dy) &* w &+ xo &* size
                                        for dx in 0..<size where src[row &+ dx] > best || src[row &+ dx].isNaN {
                                            best = src[row &+ dx]; bestIndex = row &+ dx
                                        }
                                    }
                                    dst[y &* ow &+ xo] = best
                                    dstArg[y &* ow &+ xo] = Int32(bestIndex)
                                }
                            }
                        }
                    }
                }
            }
        }
        return (output, argmax)
    }

    /// Backward of max pooling: routes each output gradient to its argmax.
    public static func maxPoolBackward(outputGradient: Tensor, argmax: [Int32], inputShape: [Int]) -> Tensor {
        let planes = inputShape[0] * inputShape[1], planeSize = inputShape[2] * inputShape[3]
        let outPlane = outputGradient.count / max(1, planes)
        return Tensor(shape: inputShape) { dx in
            outputGradient.withUnsafeBufferPointer { dy in
                argmax.withUnsafeBufferPointer { arg in
                    // each thread zeroes its planes and adds their windows' gradients (`max_pool_backward`)
                    Parallel.forEachChunk(planes, minimumPerChunk: max(1, 8192 / max(1, planeSize))) { range in
                        max_pool_backward(
                            dx + range.lowerBound &* planeSize, dy.baseAddress! + range.lowerBound &* outPlane,
                            arg.baseAddress! + range.lowerBound &* outPlane, nil, Int32(range.count), planeSize, outPlane)
                    }
                }
            }
        }
    }

    /// Source row/column of nearest-neighbour upsampling from `input` to `output` positions
    /// (`floor(o * input / output)`, PyTorch's 'nearest').
    @inlinable
    static func nearestSource(_ o: Int, input: Int, output: Int) -> Int { min(input - 1, (o * input) / output) }

    /// Nearest-neighbour upsampling of `[N, C, H, W]` to `[N, C, height, width]`.
    public static func upsampleNearest(_ input: Tensor, height: Int, width: Int) -> Tensor {
        precondition(input.rank == 4 && height > 0 && width > 0, "upsample needs a [N, C, H, W] input, got \(input.shape)")
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let columns = (0..<width).map { nearestSource($0, input: w, output: width) }
        if height == 2 * h && width == 2 * w {
            return Tensor(shape: [n, c, height, width]) { out in
                input.withUnsafeBufferPointer { x in
                    // from 2048 outputs a thread: one image's 64 x 8 x 8 (the decoder's first upsampling) takes two
                    Parallel.forEachChunk(n &* c, minimumPerChunk: max(1, 2048 / max(1, height &* width))) { range in
                        // the chunk's planes as the channels of one image
                        upsample2xRows(
                            out + range.lowerBound &* height &* width, x.baseAddress! + range.lowerBound &* h &* w,
                            channels: range.count, height: h, width: w, rows: 0..<height)
                    }
                }
            }
        }
        return Tensor(shape: [n, c, height, width]) { out in
            input.withUnsafeBufferPointer { x in
                columns.withUnsafeBufferPointer { col in
                    Parallel.forEachChunk(n &* c, minimumPerChunk: max(1, 8192 / max(1, height &* width))) { range in
                        for plane in range {
                            let src = x.baseAddress! + plane &* h &* w, dst = out + plane &* height &* width
                            for y in 0..<height {
                                let srcRow = src + nearestSource(y, input: h, output: height) &* w
                                let dstRow = dst + y &* width
                                for xo in 0..<width { dstRow[xo] = srcRow[col[xo]] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Backward of nearest upsampling: sums each output gradient into its source.
    public static func upsampleNearestBackward(outputGradient: Tensor, inputShape: [Int]) -> Tensor {
        let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let height = outputGradient.shape[2], width = outputGradient.shape[3]
        let columns = (0..<width).map { nearestSource($0, input: w, output: width) }
        if height == 2 * h && width == 2 * w {
            return Tensor(shape: inputShape) { dx in
                outputGradient.withUnsafeBufferPointer { dy in
                    Parallel.forEachChunk(n &* c, minimumPerChunk: max(1, 8192 / max(1, height &* width))) { range in
                        for plane in range {
                            upsample2xBackward(dx + plane &* h &* w, dy.baseAddress! + plane &* height &* width, height: h, width: w)
                        }
                    }
                }
            }
        }
        var dInput = Tensor.zeros(inputShape)
        dInput.withUnsafeMutableBufferPointer { dx in
            let base = dx.baseAddress!
            outputGradient.withUnsafeBufferPointer { dy in
                Parallel.forEachChunk(n &* c, minimumPerChunk: max(1, 8192 / max(1, height &* width))) { range in
                    for plane in range {
                        let dst = base + plane &* h &* w, src = dy.baseAddress! + plane &* height &* width
                        for y in 0..<height {
                            let dstRow = dst + nearestSource(y, input: h, output: height) &* w
                            let srcRow = src + y &* width
                            for xo in 0..<width { dstRow[columns[xo]] += srcRow[xo] }
                        }
                    }
                }
            }
        }
        return dInput
    }

    /// Rows `rows` of the 2x nearest upsampling `[channels, 2h, 2w]` of `src` `[channels, h, w]` (every channel), into
    /// `dst`'s rows (`upsample_2x_rows`): the general loop's result for an exact factor of 2, without its table of source
    /// columns; `upsampleNearest`'s 2x case, and a convolution that reads the upsampling it makes in cache.
    public static func upsample2xRows(
        _ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int,
        rows: Range<Int>
    ) {
        guard !rows.isEmpty else { return }
        upsample_2x_rows(dst, src, Int32(channels), Int32(h), Int32(w), Int32(rows.lowerBound), Int32(rows.upperBound))
    }

    /// The backward of the 2x upsampling for one plane: each input gradient is the sum of its 2 x 2
    /// outputs' gradients, added from zero in the general loop's order (the upper row's two, then the
    /// lower row's), so the bits are those of the general loop.
    @inlinable
    static func upsample2xBackward(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, height h: Int, width w: Int) {
        for y in 0..<h {
            let upper = src + (2 &* y) &* (2 &* w), lower = upper + 2 &* w, row = dst + y &* w
            for x in 0..<w {
                var sum: Float = 0
                sum += upper[2 &* x]
                sum += upper[2 &* x &+ 1]
                sum += lower[2 &* x]
                sum += lower[2 &* x &+ 1]
                row[x] = sum
            }
        }
    }
}
