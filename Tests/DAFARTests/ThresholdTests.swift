import Tensors
import XCTest
@testable import DAFAR

final class ThresholdTests: XCTestCase {
    func testStatisticsOfKnownScores() {
        let s = ScoreStatistics([1, 2, 3, 4])
        XCTAssertEqual(s.mean, 2.5, accuracy: 1e-6)
        XCTAssertEqual(s.standardDeviation, Float(1.25).squareRoot(), accuracy: 1e-6, "population std (ddof 0)")
        XCTAssertEqual(s.threshold(z: 3), 2.5 + 3 * Float(1.25).squareRoot(), accuracy: 1e-5)
        XCTAssertEqual(s.count, 4)
    }

    func testThresholdAtFalsePositiveRate() {
        let scores = (1...100).map(Float.init).shuffled()
        let t5 = Threshold.atFalsePositiveRate(0.05, scores: scores)
        XCTAssertEqual(t5, 95)
        XCTAssertEqual(Threshold.flaggedFraction(scores, threshold: t5), 0.05, accuracy: 1e-12)
        let t1 = Threshold.atFalsePositiveRate(0.01, scores: scores)
        XCTAssertEqual(t1, 99)
        XCTAssertEqual(Threshold.atFalsePositiveRate(0, scores: scores), 100, "rate 0 flags nothing seen")
        // With 30 scores, 5 % allows floor(1.5) = 1 false positive.
        let small = (1...30).map(Float.init)
        XCTAssertEqual(Threshold.atFalsePositiveRate(0.05, scores: small), 29)
    }

    func testThresholdSurvivesRoundingAndServesEveryFloatType() {
        let scores = (1...100).map(Double.init)
        XCTAssertEqual(
            Threshold.atFalsePositiveRate(0.29, scores: scores), 71,
            "0.29 * 100 is 28.999... in Double; 29 scores may still lie above")
        XCTAssertEqual(Threshold.atFalsePositiveRate(1, scores: scores), 1, "rate 1: the smallest score")
        XCTAssertEqual(Threshold.atFalsePositiveRate(0.5, scores: [Float(2), 1, 1, 1]), 1, "ties at the threshold are not flagged")
    }

    func testFlaggedFractionIsStrict() {
        XCTAssertEqual(Threshold.flaggedFraction([1, 2, 2, 3], threshold: 2), 0.25)
        XCTAssertEqual(Threshold.flaggedFraction([], threshold: 2), 0)
    }
}
