import Tensors

/// Median filter over each channel of `[N, C, H, W]` images, `size x size` window,
/// 'reflect' border; returns the same shape.
///
/// Matches `scipy.ndimage.median_filter(x, size=size, mode='reflect')` per channel,
/// the squeezer of Xu et al.'s Feature Squeezing code:
/// - window: rows `y - size/2 ..< y - size/2 + size` (integer division), likewise for
///   columns. For `size = 2` that is `{y - 1, y} x {x - 1, x}`: an even window has no
///   centre, and scipy anchors it one pixel up-left of the output pixel;
/// - value: the element of rank `size*size / 2` (0-based) of the sorted window. For an
///   odd window this is the median; for `size = 2` it is the UPPER of the two middle
///   values of four (scipy's choice), not their mean;
/// - border: half-sample symmetric reflection, `... b a | a b c ... x y z | z y x ...`
///   (the edge pixel repeats: index -1 reads 0, index H reads H - 1).
public func medianFilter(_ images: Tensor, size: Int = 2) -> Tensor {
    preconditionImages(images, "medianFilter")
    precondition(size >= 1, "median filter size must be at least 1, got \(size)")
    if size == 1 { return images }
    let (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
    let before = size / 2, windowCount = size * size, rank = windowCount / 2
    // sourceRows[y * size + i]: the input row read by window row i of output row y; likewise columns.
    let sourceRows = (0..<h).flatMap { y in (0..<size).map { reflectedIndex(y - before + $0, count: h) } }
    let sourceColumns = (0..<w).flatMap { x in (0..<size).map { reflectedIndex(x - before + $0, count: w) } }
    let plane = h * w
    return Tensor(shape: images.shape) { out in
        images.withUnsafeBufferPointer { input in
            let src = input.baseAddress!
            Parallel.forEachChunk(n * c, minimumPerChunk: max(1, 2048 / max(1, plane))) { planes in
                var window = [Float](repeating: 0, count: windowCount)
                window.withUnsafeMutableBufferPointer { win in
                    for p in planes {
                        let image = src + p * plane, result = out + p * plane  // one [H, W] plane
                        for y in 0..<h {
                            for x in 0..<w {
                                var k = 0
                                for i in 0..<size {
                                    let row = image + sourceRows[y * size + i] * w
                                    for j in 0..<size { win[k] = row[sourceColumns[x * size + j]]; k += 1 }
                                }
                                result[y * w + x] = selectRank(win, rank)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `index` mapped into `0..<count` by half-sample symmetric reflection (scipy's and
/// numpy's 'reflect'/'symmetric': -1 -> 0, -2 -> 1, count -> count - 1), periodic with period `2 count`.
@inlinable
func reflectedIndex(_ index: Int, count: Int) -> Int {
    let period = 2 * count
    var m = index % period
    if m < 0 { m += period }
    return m < count ? m : period - 1 - m
}

/// The element of 0-based `rank` in sorted order (insertion sort: windows are tiny). Reorders `values`.
@inline(__always)
private func selectRank(_ values: UnsafeMutableBufferPointer<Float>, _ rank: Int) -> Float {
    for i in 1..<values.count {
        let v = values[i]
        var j = i - 1
        while j >= 0 && values[j] > v { values[j + 1] = values[j]; j -= 1 }
        values[j + 1] = v
    }
    return values[rank]
}

/// Bit-depth reduction to `bits` bits: `round(x * (2^bits - 1)) / (2^bits - 1)`, element-wise.
///
/// Rounds half to even, as numpy's `rint` in Xu et al.'s code (so with 1 bit, 0.5 -> 0).
/// Inputs are expected in [0, 1] and are not clipped.
public func bitDepthReduction(_ images: Tensor, bits: Int) -> Tensor {
    precondition(bits >= 1 && bits <= 24, "bit depth must be in 1...24, got \(bits)")
    let levels = Float((1 << bits) - 1)
    return images.map { ($0 * levels).rounded(.toNearestOrEven) / levels }
}
