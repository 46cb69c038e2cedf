import Autodiff
import Foundation
import Tensors
import XCTest

/// The Jensen-Shannon divergence of tempered softmax outputs and the element-wise maximum:
/// forward values against a direct Double computation, gradients against finite differences.
final class DivergenceGradientTests: XCTestCase {
    /// JSD of softmax(a / T) and softmax(b / T) per row, straight from the definition, in Double.
    func referenceJSD(_ a: Tensor, _ b: Tensor, temperature: Double) -> [Double] {
        let n = a.shape[0], k = a.shape[1]
        func softmax(_ row: [Double]) -> [Double] {
            let high = row.max()!
            let e = row.map { Foundation.exp(($0 - high) / temperature) }
            let s = e.reduce(0, +)
            return e.map { $0 / s }
        }
        return (0..<n).map { i in
            let p = softmax((0..<k).map { Double(a.storage[i * k + $0]) })
            let q = softmax((0..<k).map { Double(b.storage[i * k + $0]) })
            let m = zip(p, q).map { ($0 + $1) / 2 }
            func kl(_ x: [Double]) -> Double { zip(x, m).reduce(0) { $0 + ($1.0 > 0 ? $1.0 * Foundation.log($1.0 / $1.1) : 0) } }
            return 0.5 * kl(p) + 0.5 * kl(q)
        }
    }

    func testForwardMatchesTheDefinition() {
        let a = randomTensor([4, 10], seed: 11, low: -4, high: 4), b = randomTensor([4, 10], seed: 12, low: -4, high: 4)
        for temperature: Float in [1, 10, 40] {
            let jsd = jensenShannonDivergencePerSample(Variable(a), Variable(b), temperature: temperature).value
            XCTAssertEqual(jsd.shape, [4])
            for (got, want) in zip(jsd.storage, referenceJSD(a, b, temperature: Double(temperature))) {
                XCTAssertEqual(Double(got), want, accuracy: 1e-6, "JSD at T = \(temperature)")
            }
        }
        // identical outputs: 0; disjoint one-hot outputs: ln 2, the maximum
        XCTAssertLessThan(jensenShannonDivergencePerSample(Variable(a), Variable(a), temperature: 1).value.storage.max()!, 1e-12)
        let hot = Tensor(shape: [1, 2], storage: [200, -200]), cold = Tensor(shape: [1, 2], storage: [-200, 200])
        let extreme = jensenShannonDivergencePerSample(Variable(hot), Variable(cold), temperature: 1).value.storage[0]
        XCTAssertEqual(extreme, Float(M_LN2), accuracy: 1e-6, "outputs that underflow to 0 must stay finite")
    }

    func testGradientsMatchFiniteDifferences() {
        let a = randomTensor([3, 5], seed: 21, low: -2, high: 2), b = randomTensor([3, 5], seed: 22, low: -2, high: 2)
        for temperature: Float in [0.5, 1, 4] {
            assertGradientsMatch("JSD at T = \(temperature)", inputs: [a, b]) {
                weightedSum(jensenShannonDivergencePerSample($0[0], $0[1], temperature: temperature)) * 10
            }
        }
    }

    func testMaximumRoutesTheGradientToTheLargerInput() {
        let a = awayFromZero([2, 3], seed: 31), b = a.map { -0.5 * $0 }  // |a - b| >= 0.15: no kink within the step
        assertGradientsMatch("maximum", inputs: [a, b]) { weightedSum(maximum($0[0], $0[1])) }
        XCTAssertEqual(maximum(Variable(a), Variable(b)).value.storage, zip(a.storage, b.storage).map { max($0, $1) })
    }
}
