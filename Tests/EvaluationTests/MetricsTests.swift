import Reporting
import XCTest
@testable import Evaluation

final class MetricsTests: XCTestCase {
    func testWilsonIntervalMatchesKnownValues() {
        // Reference values: Wilson score interval without continuity correction, z = 1.959964.
        let eight = Rate(8, of: 10).wilson95
        XCTAssertEqual(eight.lowerBound, 0.4901625, accuracy: 1e-6, "Wilson lower bound of 8/10")
        XCTAssertEqual(eight.upperBound, 0.9433178, accuracy: 1e-6, "Wilson upper bound of 8/10")
        let zero = Rate.wilsonInterval(successes: 0, trials: 10)
        XCTAssertEqual(zero.lowerBound, 0, "0/10 has lower bound 0")
        XCTAssertEqual(zero.upperBound, 0.2775328, accuracy: 1e-6, "Wilson upper bound of 0/10")
        let large = Rate(973, of: 1000).wilson95
        XCTAssertEqual(large.lowerBound, 0.9610013, accuracy: 1e-6)
        XCTAssertEqual(large.upperBound, 0.9813786, accuracy: 1e-6)
        XCTAssertEqual(Rate(10, of: 10).wilson95.upperBound, 1, "all successes reach 1")
    }

    func testRateFormattingCarriesCounts() {
        XCTAssertEqual(Rate(973, of: 1000).formatted(), "97.3 % (973/1000)")
        XCTAssertEqual(Rate(1, of: 3).formatted(decimals: 2), "33.33 % (1/3)")
        XCTAssertEqual(Rate(0, of: 0).formatted(), "n/a (0/0)")
        XCTAssertTrue(Rate(0, of: 0).value.isNaN, "an empty rate is undefined, not 0")
        XCTAssertEqual(Rate(0, of: 0).wilson95, 0...1)
        XCTAssertEqual(Rate(0, of: 0), Rate(0, of: 0), "empty rates compare equal by counts")
    }

    func testRateJSONHasCountsAndNullForEmpty() throws {
        let json = Rate(3, of: 4).json
        XCTAssertEqual(json["numerator"], .int(3))
        XCTAssertEqual(json["denominator"], .int(4))
        XCTAssertEqual(json["value"], .number(0.75))
        let data = try Rate(0, of: 0).json.serialized()
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertTrue(object["value"] is NSNull, "NaN must be written as null, got \(String(describing: object["value"]))")
    }

    func testAccuracyCountsMatches() {
        let accuracy = Metrics.accuracy(predictions: [1, 2, 3, 4], labels: [1, 2, 0, 4])
        XCTAssertEqual(accuracy.numerator, 3)
        XCTAssertEqual(accuracy.denominator, 4)
        XCTAssertEqual(accuracy.value, 0.75)
    }

    func testFlaggingIsStrictlyAboveThreshold() {
        let counts = DetectionCounts(scores: [Float(1), 2, 2, 3], threshold: 2)
        XCTAssertEqual(counts, DetectionCounts(flagged: 1, total: 4), "a score equal to the threshold is not flagged")
        XCTAssertEqual(Metrics.falsePositiveRate(cleanScores: [0.5, 1.5, 2.5, 3.5], threshold: 1.0), Rate(3, of: 4))
    }

    func testDetectionIsSplitBySuccessfulAndFailedAttacks() {
        let detection = AdversarialDetection(
            scores: [5.0, 0.1, 7.0, 6.0, 0.2],
            attackSucceeded: [true, true, false, true, false], threshold: 1)
        XCTAssertEqual(detection.successful, DetectionCounts(flagged: 2, total: 3))
        XCTAssertEqual(detection.failed, DetectionCounts(flagged: 1, total: 2))
        XCTAssertEqual(detection.all, DetectionCounts(flagged: 3, total: 5))
        XCTAssertEqual(detection.attackSuccess, Rate(3, of: 5))
        let none = AdversarialDetection(scores: [1.0, 2.0], attackSucceeded: [false, false], threshold: 0)
        XCTAssertTrue(none.successful.rate.isEmpty, "no successful attack: the detection rate is undefined")
    }

    func testThresholdAtFixedFalsePositiveRateOnKnownLists() {
        let clean = (1...100).map(Double.init)
        let adversarial = [50.5, 95, 95.5, 96, 99, 100, 101]
        let at5 = Metrics.truePositiveRate(atFalsePositiveRate: 0.05, cleanScores: clean, adversarialScores: adversarial)
        XCTAssertEqual(at5.threshold, 95)
        XCTAssertEqual(at5.falsePositives, Rate(5, of: 100))
        XCTAssertEqual(at5.truePositives, Rate(5, of: 7), "95.5, 96, 99, 100, 101 are above 95")
        let at1 = Metrics.truePositiveRate(atFalsePositiveRate: 0.01, cleanScores: clean, adversarialScores: adversarial)
        XCTAssertEqual(at1.threshold, 99)
        XCTAssertEqual(at1.falsePositives, Rate(1, of: 100))
        XCTAssertEqual(at1.truePositives, Rate(2, of: 7))
    }

    func testThresholdNeverExceedsTargetRateWithTies() {
        let clean = [1.0, 1, 1, 1, 2, 2, 2, 2, 2, 2]
        XCTAssertEqual(
            Metrics.threshold(forFalsePositiveRate: 0.5, cleanScores: clean), 2,
            "threshold 1 would flag 6 of 10 > 50 %")
        XCTAssertEqual(Metrics.falsePositiveRate(cleanScores: clean, threshold: 2), Rate(0, of: 10))
        XCTAssertEqual(Metrics.threshold(forFalsePositiveRate: 0.6, cleanScores: clean), 1)
    }

    func testThresholdIsTheLowestValidOneOnRandomLists() {
        var generator = SplitMix(seed: 7)
        for trial in 0..<200 {
            let count = 1 + Int(generator.next() % 60)
            // Few distinct values, so that ties are common.
            let clean = (0..<count).map { _ in Double(generator.next() % 12) }
            for rate in [0.0, 0.01, 0.05, 0.2, 0.5, 0.9] {
                let threshold = Metrics.threshold(forFalsePositiveRate: rate, cleanScores: clean)
                let flagged = clean.filter { $0 > threshold }.count
                XCTAssertLessThanOrEqual(Double(flagged), rate * Double(count) + 1e-9, "trial \(trial) rate \(rate)")
                if let lower = clean.filter({ $0 < threshold }).max() {
                    let flaggedLower = clean.filter { $0 > lower }.count
                    XCTAssertGreaterThan(
                        Double(flaggedLower), rate * Double(count),
                        "trial \(trial) rate \(rate): threshold \(lower) was also valid")
                }
            }
        }
    }

    func testOperatingPointCalibratesOnHeldOutScores() {
        let point = OperatingPoint(
            targetFalsePositiveRate: 0.1, calibrationScores: (1...10).map(Double.init),
            cleanScores: [0.0, 9.5, 9.6], adversarialScores: [8.0, 10.0])
        XCTAssertEqual(point.threshold, 9)
        XCTAssertEqual(point.falsePositives, Rate(2, of: 3), "FPR is measured on the evaluation clean scores")
        XCTAssertEqual(point.truePositives, Rate(1, of: 2))
    }
}

/// A small deterministic generator for randomized tests (SplitMix64).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
