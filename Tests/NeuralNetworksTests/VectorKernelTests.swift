import Foundation
import NeuralNetworks
import Tensors
import XCTest
import _VectorKernels

/// The element-wise C kernels of `_VectorKernels` give the bits of their scalar formulas, in their
/// AVX-512 bodies (on a CPU with AVX-512F and DQ), their AVX2 bodies (on a CPU with AVX2) and their
/// portable loops.
final class VectorKernelTests: XCTestCase {
    /// Each body this CPU runs, named, as a `vector_kernels_limit` level: the portable loops, AVX2, AVX-512.
    var bodies: [(name: String, level: Int32)] {
        [("portable", Int32(VECTOR_KERNELS_PORTABLE))] + (vector_kernels_has_avx2() != 0 ? [("AVX2", Int32(VECTOR_KERNELS_AVX2))] : [])
            + (vector_kernels_has_avx512() != 0 ? [("AVX-512", Int32(VECTOR_KERNELS_BEST))] : [])
    }

    /// Runs `body` with the kernels limited to `level`.
    func with<T>(level: Int32, _ body: () -> T) -> T {
        vector_kernels_limit(level)
        defer { vector_kernels_limit(Int32(VECTOR_KERNELS_BEST)) }
        return body()
    }

    /// Values of every sign and many magnitudes (zeros, subnormals, large), `count` of them.
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { i in
            switch i % 7 {
            case 0: return 0
            case 1: return -Float.leastNonzeroMagnitude * Float(i % 5)
            default: return (generator.nextUniform() - 0.5) * Float(sign: .plus, exponent: (i % 40) - 30, significand: 1)
            }
        }
    }

    /// Adam's update as written in Swift, one value at a time: what both bodies must equal.
    func adamByFormula(
        m: inout [Float], v: inout [Float], p: inout [Float], g: [Float], b1: Float, b2: Float, eps: Float, stepSize: Float,
        c2: Float
    ) {
        for i in g.indices {
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            p[i] -= stepSize * m[i] / ((v[i] / c2).squareRoot() + eps)
        }
    }

    func testAdamUpdateHasTheFormulasBitsInBothBodies() {
        for count in [0, 1, 15, 16, 17, 100, 1029] {
            let g = values(count, seed: 1), start = values(count, seed: 2)
            let (b1, b2, eps, stepSize, c2): (Float, Float, Float, Float, Float) = (0.9, 0.999, 1e-8, 1e-3 / 0.19, 1 - 0.999 * 0.999)
            var (m, v, p) = (values(count, seed: 3), values(count, seed: 4).map(abs), start)
            let (m0, v0) = (m, v)
            adamByFormula(m: &m, v: &v, p: &p, g: g, b1: b1, b2: b2, eps: eps, stepSize: stepSize, c2: c2)
            if count > 16 { XCTAssertNotEqual(p, start, "the update moves the parameters") }
            for (body, level) in bodies {
                var (mk, vk, pk) = (m0, v0, start)
                with(level: level) {
                    adam_update(&mk, &vk, &pk, g, count, b1, b2, eps, stepSize, c2)
                }
                XCTAssertEqual(mk.map(\.bitPattern), m.map(\.bitPattern), "\(body), \(count) values: m")
                XCTAssertEqual(vk.map(\.bitPattern), v.map(\.bitPattern), "\(body), \(count) values: v")
                XCTAssertEqual(pk.map(\.bitPattern), p.map(\.bitPattern), "\(body), \(count) values: p")
            }
        }
    }

    func testFixedPointPassesHaveTheScalarBitsInBothBodies() {
        // scales from the test's own to the largest the exact sum uses (values up to 2^9: products up to 2^61), one
        // that shifts every value right (2^-20), one that is not a power of two, and at and past the ends of the
        // powers of two that floats hold (the AVX-512 bodies scale in float there, in double past them; 2^-126
        // makes denormal products), with values shrunk by 2^-80 where the scale would overflow 64 bits
        for (count, factor, shrink) in [
            (0, 0x1p40, 1), (1, 0x1p40, 1), (7, 0x1p40, 1), (8, 0x1p40, 1), (9, 0x1p40, 1), (16, 0x1p40, 1), (33, 0x1p52, 1),
            (1000, 0x1p40, 1), (1000, 0x1p52, 1), (1000, 0x1p53, 1), (99, 0x1p-20, 1), (99, 3.0 * 0x1p30, 1),
            (99, 0x1p-126, 1), (99, 0x1p-127, 1), (99, 0x1p126, 0x1p-80), (99, 0x1p127, 0x1p-80), (99, 0x1p128, 0x1p-80)
        ] as [(Int, Double, Float)] {
            let x = values(count, seed: UInt64(count) + 10).map { $0 * shrink }
            let largest = x.map { $0.bitPattern & 0x7FFF_FFFF }.max() ?? 0
            let unscale = 1 / factor
            let start = (0..<count).map { Int64($0) * 1_000_003 - 7_000_000 }
            let sums = zip(start, x).map { $0 &+ Int64(Double($1) * factor) }
            let back = sums.map { Float(Double(Float($0)) * unscale) }
            for (body, level) in bodies {
                with(level: level) {
                    XCTAssertEqual(fixed_point_largest_bits(x, count), largest, "largest bits, \(count) values, \(body)")
                    var kernelSums = start
                    fixed_point_accumulate(&kernelSums, x, count, factor)
                    XCTAssertEqual(kernelSums, sums, "accumulate, \(count) values, factor \(factor), \(body)")
                    var kernelBack = [Float](repeating: -1, count: count)
                    fixed_point_to_float(&kernelBack, sums, count, unscale)
                    XCTAssertEqual(kernelBack.map(\.bitPattern), back.map(\.bitPattern), "to float, \(count) values, \(body)")
                }
            }
        }
        // a NaN or an infinity lies above every finite magnitude
        for special in [Float.nan, -Float.infinity] {
            var x = values(40, seed: 5)
            x[33] = special
            for (body, level) in bodies {
                with(level: level) {
                    XCTAssertGreaterThanOrEqual(fixed_point_largest_bits(x, 40), Float.infinity.bitPattern, "\(special), \(body)")
                }
            }
        }
    }

    func testGroupSumsEqualAccumulatingEveryGroupOntoZeros() {
        // 0 to 5 groups; 1300 values cross two of the kernels' 512-value blocks
        for (groups, count) in [(0, 10), (1, 1300), (3, 1300), (5, 517), (4, 3)] {
            let rows = (0..<groups).map { values(count, seed: UInt64(20 + $0)) }
            let factor = 0x1p40, unscale = 0x1p-40
            var sums = [Int64](repeating: 0, count: count)
            for row in rows { for i in 0..<count { sums[i] += Int64(Double(row[i]) * factor) } }
            let back = sums.map { Float(Double(Float($0)) * unscale) }
            for (body, level) in bodies {
                with(level: level) {
                    var kernelSums = [Int64](repeating: 99, count: count), kernelBack = [Float](repeating: -1, count: count)
                    withPointers(rows) { pointers in
                        fixed_point_sum(&kernelSums, pointers, groups, count, factor)
                        fixed_point_sum_to_float(&kernelBack, pointers, groups, count, factor, unscale)
                    }
                    XCTAssertEqual(kernelSums, sums, "sum of \(groups) groups of \(count) values, \(body)")
                    XCTAssertEqual(kernelBack.map(\.bitPattern), back.map(\.bitPattern), "sum to float, \(groups) groups, \(body)")
                }
            }
        }
    }

    /// `body` with a pointer to each array's values.
    func withPointers(_ arrays: [[Float]], _ body: ([UnsafePointer<Float>?]) -> Void, _ done: [UnsafePointer<Float>?] = []) {
        guard let first = arrays.first else { return body(done) }
        first.withUnsafeBufferPointer { withPointers(Array(arrays.dropFirst()), body, done + [$0.baseAddress]) }
    }
}
