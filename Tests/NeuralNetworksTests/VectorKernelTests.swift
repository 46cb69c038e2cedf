import Foundation
import NeuralNetworks
import Tensors
import XCTest
import _VectorKernels

/// The element-wise C kernels of `_VectorKernels` give the bits of their scalar formulas, in their
/// AVX-512 bodies (on a CPU with AVX-512F and DQ) and in their portable loops.
final class VectorKernelTests: XCTestCase {
    /// Runs `body` with the portable loops forced (`true`) or the CPU's best (`false`).
    func with<T>(portable: Bool, _ body: () -> T) -> T {
        vector_kernels_use_portable(portable ? 1 : 0)
        defer { vector_kernels_use_portable(0) }
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
            for portable in [false, true] {
                var (mk, vk, pk) = (m0, v0, start)
                with(portable: portable) {
                    adam_update(&mk, &vk, &pk, g, count, b1, b2, eps, stepSize, c2)
                }
                let body = portable ? "portable" : (vector_kernels_has_avx512() != 0 ? "AVX-512" : "portable (no AVX-512)")
                XCTAssertEqual(mk.map(\.bitPattern), m.map(\.bitPattern), "\(body), \(count) values: m")
                XCTAssertEqual(vk.map(\.bitPattern), v.map(\.bitPattern), "\(body), \(count) values: v")
                XCTAssertEqual(pk.map(\.bitPattern), p.map(\.bitPattern), "\(body), \(count) values: p")
            }
        }
    }

    func testFixedPointPassesHaveTheScalarBitsInBothBodies() {
        for count in [0, 1, 7, 8, 9, 16, 33, 1000] {
            let x = values(count, seed: UInt64(count) + 10)
            let largest = x.map { $0.bitPattern & 0x7FFF_FFFF }.max() ?? 0
            let factor = Double(sign: .plus, exponent: 40, significand: 1), unscale = 1 / factor
            let start = (0..<count).map { Int64($0) * 1_000_003 - 7_000_000 }
            let sums = zip(start, x).map { $0 &+ Int64(Double($1) * factor) }
            let back = sums.map { Float(Double(Float($0)) * unscale) }
            for portable in [false, true] {
                with(portable: portable) {
                    XCTAssertEqual(fixed_point_largest_bits(x, count), largest, "largest bits, \(count) values")
                    var kernelSums = start
                    fixed_point_accumulate(&kernelSums, x, count, factor)
                    XCTAssertEqual(kernelSums, sums, "accumulate, \(count) values, portable \(portable)")
                    var kernelBack = [Float](repeating: -1, count: count)
                    fixed_point_to_float(&kernelBack, sums, count, unscale)
                    XCTAssertEqual(kernelBack.map(\.bitPattern), back.map(\.bitPattern), "to float, \(count) values, portable \(portable)")
                }
            }
        }
        // a NaN or an infinity lies above every finite magnitude
        for special in [Float.nan, -Float.infinity] {
            var x = values(40, seed: 5)
            x[33] = special
            for portable in [false, true] {
                with(portable: portable) { XCTAssertGreaterThanOrEqual(fixed_point_largest_bits(x, 40), Float.infinity.bitPattern) }
            }
        }
    }
}
