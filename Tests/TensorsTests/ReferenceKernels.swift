import Tensors
import XCTest

// Slow, obviously correct reference implementations (plain loops over NCHW
// indices) that the fast kernels are compared with.

/// A tensor of uniform samples in `[low, high)` from a fixed seed.
func randomTensor(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    return Tensor.uniform(shape, low: low, high: high, using: &generator)
}

/// Direct convolution: `x [N, C, H, W]`, `w [O, C, KH, KW]`, `b [O]` -> `[N, O, OH, OW]`,
/// accumulated in Double.
func naiveConvolution(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: Int, padding: Int) -> Tensor {
    let (n, c, h, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
    let oh = (h + 2 * padding - kh) / stride + 1, ow = (width + 2 * padding - kw) / stride + 1
    var out = [Float](repeating: 0, count: n * o * oh * ow)
    for image in 0..<n {
        for oc in 0..<o {
            for y in 0..<oh {
                for xo in 0..<ow {
                    var s = Double(b?.storage[oc] ?? 0)
                    for ic in 0..<c {
                        for ky in 0..<kh {
                            for kx in 0..<kw {
                                let iy = y * stride - padding + ky, ix = xo * stride - padding + kx
                                guard iy >= 0, iy < h, ix >= 0, ix < width else { continue }
                                s +=
                                    Double(x.storage[((image * c + ic) * h + iy) * width + ix])
                                    * Double(w.storage[((oc * c + ic) * kh + ky) * kw + kx])
                            }
                        }
                    }
                    out[((image * o + oc) * oh + y) * ow + xo] = Float(s)
                }
            }
        }
    }
    return Tensor(shape: [n, o, oh, ow], storage: out)
}

/// Transposed convolution as a scatter: every input pixel adds `x * w[i, o, ky, kx]` at
/// output position `(y * stride - padding + ky, x * stride - padding + kx)`.
/// `x [N, I, H, W]`, `w [I, O, KH, KW]`, `b [O]` -> `[N, O, (H-1)*stride - 2*padding + KH, ...]`.
func naiveTransposedConvolution(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: Int, padding: Int) -> Tensor {
    let (n, inChannels, h, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, kh, kw) = (w.shape[1], w.shape[2], w.shape[3])
    let oh = (h - 1) * stride - 2 * padding + kh, ow = (width - 1) * stride - 2 * padding + kw
    var out = [Double](repeating: 0, count: n * o * oh * ow)
    for image in 0..<n {
        for ic in 0..<inChannels {
            for y in 0..<h {
                for xi in 0..<width {
                    let v = Double(x.storage[((image * inChannels + ic) * h + y) * width + xi])
                    for oc in 0..<o {
                        for ky in 0..<kh {
                            for kx in 0..<kw {
                                let oy = y * stride - padding + ky, ox = xi * stride - padding + kx
                                guard oy >= 0, oy < oh, ox >= 0, ox < ow else { continue }
                                out[((image * o + oc) * oh + oy) * ow + ox] += v * Double(w.storage[((ic * o + oc) * kh + ky) * kw + kx])
                            }
                        }
                    }
                }
            }
        }
        if let b {
            for oc in 0..<o { for i in 0..<(oh * ow) { out[(image * o + oc) * oh * ow + i] += Double(b.storage[oc]) } }
        }
    }
    return Tensor(shape: [n, o, oh, ow], storage: out.map { Float($0) })
}

/// Asserts equal shapes and `max |a - b| <= tolerance * max(1, max |b|)`.
func assertClose(
    _ a: Tensor, _ b: Tensor, tolerance: Float, _ what: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(a.shape, b.shape, "\(what): shapes differ", file: file, line: line)
    guard a.shape == b.shape else { return }
    var worst: Float = 0, worstIndex = 0, scale: Float = 1
    for i in 0..<a.count {
        scale = max(scale, abs(b.storage[i]))
        let d = abs(a.storage[i] - b.storage[i])
        if !(d <= worst) { worst = d; worstIndex = i }
    }
    XCTAssertLessThanOrEqual(
        worst, tolerance * scale,
        "\(what): element \(worstIndex) is \(a.storage[worstIndex]), expected \(b.storage[worstIndex]) "
            + "(difference \(worst) above tolerance \(tolerance) x scale \(scale))", file: file, line: line)
}

/// `sum_i a_i * b_i` in Double.
func dot(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    var s: Double = 0
    for i in 0..<a.count { s += Double(a[i]) * Double(b[i]) }
    return s
}
