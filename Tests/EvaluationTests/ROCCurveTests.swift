import Reporting
import XCTest
@testable import Evaluation

final class ROCCurveTests: XCTestCase {
    func testPerfectSeparationGivesOne() throws {
        let curve = try XCTUnwrap(ROCCurve(cleanScores: [0.1, 0.2, 0.3], adversarialScores: [0.5, 0.9]))
        XCTAssertEqual(curve.auc, 1)
    }

    func testReversedScoresGiveZero() throws {
        let curve = try XCTUnwrap(ROCCurve(cleanScores: [0.5, 0.9], adversarialScores: [0.1, 0.2, 0.3]))
        XCTAssertEqual(curve.auc, 0)
    }

    func testIdenticalScoresGiveOneHalf() throws {
        let curve = try XCTUnwrap(
            ROCCurve(
                cleanScores: [Float](repeating: 2, count: 5),
                adversarialScores: [Float](repeating: 2, count: 3)))
        XCTAssertEqual(curve.auc, 0.5)
        XCTAssertEqual(curve.points.map(\.falsePositiveRate), [0, 1], "one threshold: straight diagonal")
        XCTAssertEqual(curve.points.map(\.truePositiveRate), [0, 1])
    }

    func testHandComputedCaseWithTies() throws {
        // Pairs (adv, clean): 2 beats 1 and ties 2; 3 beats 1, 2 and ties 3; 4 beats all: 7/9.
        let curve = try XCTUnwrap(ROCCurve(cleanScores: [1.0, 2, 3], adversarialScores: [2.0, 3, 4]))
        XCTAssertEqual(curve.auc, 7.0 / 9.0, accuracy: 1e-15)
        XCTAssertEqual(curve.trapezoidArea, 7.0 / 9.0, accuracy: 1e-12)
        let expected: [(Double, Double)] = [(0, 0), (0, 1.0 / 3), (1.0 / 3, 2.0 / 3), (2.0 / 3, 1), (1, 1)]
        XCTAssertEqual(curve.points.count, expected.count)
        for (point, (fpr, tpr)) in zip(curve.points, expected) {
            XCTAssertEqual(point.falsePositiveRate, fpr, accuracy: 1e-12)
            XCTAssertEqual(point.truePositiveRate, tpr, accuracy: 1e-12)
        }
    }

    func testPointThresholdsReproduceTheirRates() throws {
        let clean = [0.3, 1.2, 1.2, 0.7, 2.0, 0.1]
        let adversarial = [1.2, 2.5, 0.7, 3.0]
        let curve = try XCTUnwrap(ROCCurve(cleanScores: clean, adversarialScores: adversarial))
        for point in curve.points {
            XCTAssertEqual(
                Metrics.falsePositiveRate(cleanScores: clean, threshold: point.threshold).value,
                point.falsePositiveRate, accuracy: 1e-12, "threshold \(point.threshold)")
            XCTAssertEqual(
                DetectionCounts(scores: adversarial, threshold: point.threshold).rate.value,
                point.truePositiveRate, accuracy: 1e-12, "threshold \(point.threshold)")
        }
        XCTAssertEqual(curve.truePositiveRate(atFalsePositiveRate: 0.2), 0.5, "1 of 6 clean above 2.0 flags 2 of 4")
    }

    func testAUCEqualsMannWhitneyOnRandomScores() throws {
        var generator = SplitMix(seed: 42)
        for trial in 0..<100 {
            let clean = (0..<(1 + Int(generator.next() % 40))).map { _ in Double(generator.next() % 20) }
            let adversarial = (0..<(1 + Int(generator.next() % 40))).map { _ in Double(generator.next() % 25) }
            var wins = 0.0
            for a in adversarial { for c in clean { wins += a > c ? 1 : (a == c ? 0.5 : 0) } }
            let mannWhitney = wins / Double(clean.count * adversarial.count)
            let curve = try XCTUnwrap(ROCCurve(cleanScores: clean, adversarialScores: adversarial))
            XCTAssertEqual(curve.auc, mannWhitney, accuracy: 1e-12, "trial \(trial)")
            XCTAssertEqual(curve.trapezoidArea, mannWhitney, accuracy: 1e-9, "trial \(trial)")
            XCTAssertEqual(curve.points.first.map { [$0.falsePositiveRate, $0.truePositiveRate] }, [0, 0])
            XCTAssertEqual(curve.points.last.map { [$0.falsePositiveRate, $0.truePositiveRate] }, [1, 1])
            for (a, b) in zip(curve.points, curve.points.dropFirst()) {
                XCTAssertLessThanOrEqual(a.falsePositiveRate, b.falsePositiveRate)
                XCTAssertLessThanOrEqual(a.truePositiveRate, b.truePositiveRate)
                XCTAssertGreaterThan(a.threshold, b.threshold, "one point per distinct threshold")
            }
        }
    }

    func testEmptySideHasNoCurve() {
        XCTAssertNil(ROCCurve(cleanScores: [Double](), adversarialScores: [1.0]))
        XCTAssertNil(ROCCurve(cleanScores: [1.0], adversarialScores: [Double]()))
    }
}
