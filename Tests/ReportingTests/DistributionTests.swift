import Tensors
import XCTest
@testable import Reporting

final class DistributionTests: XCTestCase {
    /// Trapezoid integral of a density over a grid.
    private func integral(_ estimate: KernelDensity, from lower: Double, to upper: Double) -> Double {
        let grid = KernelDensity.grid(from: lower, to: upper, count: 4001)
        let values = estimate.evaluate(on: grid)
        var area = 0.0
        for index in 1..<grid.count {
            area += (grid[index] - grid[index - 1]) * (values[index] + values[index - 1]) / 2
        }
        return area
    }

    func testKernelDensityIntegratesToOne() {
        var generator = SeededGenerator(seed: 3)
        let samples = (0..<500).map { _ in Double(generator.next() % 1000) / 100 + (Double(generator.next() % 2) * 20) }
        let estimate = KernelDensity(samples: samples)
        XCTAssertGreaterThan(estimate.bandwidth, 0)
        XCTAssertEqual(integral(estimate, from: -10, to: 45), 1, accuracy: 1e-3, "a density integrates to 1")
        let grid = KernelDensity.grid(covering: [estimate], count: 256)
        XCTAssertLessThanOrEqual(grid.first!, samples.min()! - 2.9 * estimate.bandwidth)
        XCTAssertGreaterThanOrEqual(grid.last!, samples.max()! + 2.9 * estimate.bandwidth)
    }

    func testIdenticalSamplesStillGiveAProperDensity() {
        let estimate = KernelDensity(samples: [Float](repeating: 5, count: 20))
        XCTAssertEqual(estimate.bandwidth, 0.05, accuracy: 1e-12, "fallback bandwidth 1 % of |x|")
        XCTAssertEqual(integral(estimate, from: 4, to: 6), 1, accuracy: 1e-3)
        XCTAssertTrue(estimate.evaluate(on: [4.9, 5, 5.1]).allSatisfy(\.isFinite))
    }

    func testSilvermanBandwidthOnKnownSamples() {
        // 1...5: sd = 1.5811, IQR = 2 -> IQR/1.34 = 1.49254; h = 0.9 * 1.49254 * 5^-0.2 = 0.97358.
        XCTAssertEqual(KernelDensity.silvermanBandwidth([1, 2, 3, 4, 5]), 0.9 * (2 / 1.34) * pow(5, -0.2), accuracy: 1e-12)
        XCTAssertEqual(KernelDensity.silvermanBandwidth([1, 2, 3, 4, 5]), 0.97358, accuracy: 1e-5)
    }

    func testEmptySamplesGiveZeroDensity() {
        let estimate = KernelDensity(samples: [Double]())
        XCTAssertEqual(estimate.evaluate(on: [0, 1]), [0, 0])
        XCTAssertEqual(KernelDensity.grid(covering: [estimate], count: 3), [0, 0.5, 1])
    }

    func testHistogramCountsAndDensities() {
        let histogram = Histogram(samples: [0.0, 0.1, 0.5, 0.99, 1.0, 2.0], bins: 2, range: 0...1)
        XCTAssertEqual(histogram.edges, [0, 0.5, 1])
        XCTAssertEqual(histogram.counts, [2, 3], "0.5 opens the second bin, 1.0 closes it, 2.0 is outside")
        XCTAssertEqual(histogram.densities, [0.8, 1.2])
        let equal = Histogram(samples: [3.0, 3.0], bins: 4)
        XCTAssertEqual(equal.edges.first, 2.5)
        XCTAssertEqual(equal.total, 2)
        XCTAssertEqual(Histogram(samples: [Double](), bins: 3).densities, [0, 0, 0])
    }
}
