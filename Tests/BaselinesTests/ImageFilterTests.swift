import Autodiff
import Tensors
import XCTest
@testable import Baselines

/// Exact checks of the squeezers, the JS divergence, the threshold rule and the filter pipeline on hand-made inputs.
final class ImageFilterTests: XCTestCase {
    func testBitDepthReductionRoundsHalfToEvenLikeNumpyRint() {
        let x = Tensor(shape: [1, 1, 1, 6], storage: [0, 0.2, 0.5, 0.51, 0.84, 1])
        XCTAssertEqual(bitDepthReduction(x, bits: 1).storage, [0, 0, 0, 1, 1, 1], "1 bit: round(x) with 0.5 -> 0")
        let third: Float = 1 / 3
        // 2 bits: levels 3; 0.2*3 = 0.6 -> 1, 0.5*3 = 1.5 -> 2 (even), 0.51*3 -> 2, 0.84*3 = 2.52 -> 3
        let expected: [Float] = [0, 1 * third, 2 * third, 2 * third, 1, 1]
        for (got, want) in zip(bitDepthReduction(x, bits: 2).storage, expected) {
            XCTAssertEqual(got, want, accuracy: 1e-6, "2-bit reduction")
        }
        XCTAssertEqual(bitDepthReduction(x, bits: 5).storage[1], (0.2 * 31).rounded() / 31, "5-bit reduction")
    }

    func testReflectedIndexIsHalfSampleSymmetric() {
        XCTAssertEqual((-4...7).map { reflectedIndex($0, count: 4) }, [3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0])
        XCTAssertEqual((-2...2).map { reflectedIndex($0, count: 1) }, [0, 0, 0, 0, 0])
    }

    /// Expected values printed by `scipy.ndimage.median_filter(y, size=s, mode='reflect')` (scipy 1.17).
    func testMedianFilterMatchesScipyReflectOnEachChannel() {
        let y: [Float] = [
            0, 10, 0, 0,
            10, 0, 0, 3,
            0, 0, 7, 1,
            2, 9, 4, 0
        ]
        let size2: [Float] = [
            0, 10, 10, 0,
            10, 10, 0, 0,
            10, 0, 0, 3,
            2, 2, 7, 4
        ]
        let size3: [Float] = [
            0, 0, 0, 0,
            0, 0, 0, 1,
            2, 2, 1, 1,
            2, 4, 4, 1
        ]
        // Two images, two channels: the second channel is shifted by 100 (a monotone map keeps the rank order).
        let images = Tensor(shape: [2, 2, 4, 4], storage: y + y.map { $0 + 100 } + y.map { $0 + 100 } + y)
        let filtered2 = medianFilter(images, size: 2)
        XCTAssertEqual(filtered2.shape, [2, 2, 4, 4])
        XCTAssertEqual(
            filtered2.storage, size2 + size2.map { $0 + 100 } + size2.map { $0 + 100 } + size2,
            "2x2 median: upper middle of 4, window up-left, reflect border")
        XCTAssertEqual(
            medianFilter(images, size: 3).storage, size3 + size3.map { $0 + 100 } + size3.map { $0 + 100 } + size3,
            "3x3 median with reflect border")
        let ramp = Tensor(shape: [1, 1, 3, 3], storage: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        XCTAssertEqual(medianFilter(ramp, size: 2).storage, [1, 2, 3, 4, 4, 5, 7, 7, 8], "scipy's 2x2 median of a ramp")
        XCTAssertEqual(medianFilter(ramp, size: 1), ramp, "a 1x1 median is the identity")
    }

    func testAveragePoolAveragesEachChannelAndPassesGradients() {
        let pool = AveragePool2D(channels: 2, size: 2)
        let x = Tensor(shape: [1, 2, 2, 4], storage: [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 4, 4, 8, 0, 4, 4])
        XCTAssertEqual(pool(x).shape, [1, 2, 1, 2])
        XCTAssertEqual(pool(x).storage, [3.5, 5.5, 2, 4], "mean of each 2x2 window of each channel")
        var generator = SeededGenerator(seed: 5)
        let input = Tensor.uniform([2, 2, 4, 5], using: &generator)  // odd width: floor mode drops the last column
        let weights = Tensor.uniform([2, 2, 2, 2], using: &generator)
        let error = GradientCheck.maximumError(inputs: [input]) { v in
            (pool(v[0]) * Variable(weights)).sum()
        }
        XCTAssertLessThan(error, 1e-2, "average pool gradient disagrees with finite differences")
    }

    func testJensenShannonIsZeroForIdenticalRowsSymmetricAndBounded() {
        let p = Tensor(shape: [3, 3], storage: [0.2, 0.3, 0.5, 1, 0, 0, 0.1, 0.1, 0.8])
        let q = Tensor(shape: [3, 3], storage: [0.6, 0.3, 0.1, 0, 1, 0, 0.1, 0.1, 0.8])
        XCTAssertEqual(jensenShannonDivergence(p, p), [0, 0, 0], "JSD of identical distributions")
        XCTAssertEqual(jensenShannonDivergence(p, q), jensenShannonDivergence(q, p), "JSD must be symmetric")
        let pq = jensenShannonDivergence(p, q)
        XCTAssertEqual(pq[1], Float(log(2.0)), accuracy: 1e-6, "disjoint distributions reach log 2")
        XCTAssertEqual(pq[2], 0, "identical third rows")
        // Row 0 by hand: M = (0.4, 0.3, 0.3)
        let kl1 = 0.2 * log(0.2 / 0.4) + 0.5 * log(0.5 / 0.3), kl2 = 0.6 * log(0.6 / 0.4) + 0.1 * log(0.1 / 0.3)
        XCTAssertEqual(pq[0], Float(0.5 * (kl1 + kl2)), accuracy: 1e-6, "JSD of row 0")
        XCTAssertEqual(jensenShannonDivergence(p.map { $0 * 3 }, q)[0], pq[0], accuracy: 1e-6, "rows are L1-normalised first")
    }

    func testFittedThresholdFlagsAtMostTheRequestedFractionOfItsFittingScores() {
        var generator = SeededGenerator(seed: 11)
        let scores = (0..<1000).map { _ in generator.nextNormal() }
        for rate in [0.0, 0.001, 0.01, 0.05, 0.1, 0.5] {
            let threshold = FittedThreshold(cleanScores: scores, falsePositiveRate: rate)
            let flagged = scores.filter(threshold.isFlagged).count
            XCTAssertEqual(flagged, Int(rate * 1000), "distinct scores: exactly floor(rate * n) flagged at rate \(rate)")
            XCTAssertTrue(scores.contains(threshold.value), "the threshold is an observed clean score")
            XCTAssertGreaterThan(
                scores.filter { $0 >= threshold.value }.count, flagged,
                "the smallest such score: lowering it to the next observed score would flag more")
        }
        // Ties: k = floor(0.4 * 5) = 2, yet only one score lies above the tied value 1.
        let tied = FittedThreshold(cleanScores: [1, 2, 1, 1, 1], falsePositiveRate: 0.4)
        XCTAssertEqual(tied.value, 1)
        XCTAssertEqual(tied.flaggedFraction([1, 2, 1, 1, 1]), 0.2)
        XCTAssertEqual(FittedThreshold(cleanScores: [3, 1, 2], falsePositiveRate: 1).value, 1, "rate 1: the smallest score")
    }

    func testFilterPipelineCountsRejectionsAndFilteredClassesFromPlainArrays() {
        // 6 inputs: adversarial rejected (right), clean rejected (wrong), clean accepted right / wrong,
        // adversarial accepted and classified right after filtering / wrong.
        let result = FilterPipeline.evaluate(
            flagged: [true, true, false, false, false, false],
            isAdversarial: [true, false, false, false, true, true],
            labels: [3, 1, 2, 2, 0, 0],
            filteredPredictions: [-1, 1, 2, 5, 0, 4])
        XCTAssertEqual(
            result,
            FilterPipeline.Result(
                total: 6, correct: 3, rejectedAdversarial: 1, rejectedClean: 1,
                acceptedCorrect: 2))
        XCTAssertEqual(result.accuracy, 0.5, accuracy: 1e-12)
    }

    func testFilterPipelineFiltersOnlyAcceptedImagesBeforeClassifying() {
        // Class 1 when the image's sum exceeds 0.5. A single bright pixel (an "attack") makes a dark
        // image class 1; the 2x2 median removes it, so the accepted spike is classified 0 again.
        let classifier = ClassifierFunction { images in
            let n = images.batchSize
            return Tensor(
                shape: [n, 2],
                storage: (0..<n).flatMap { i -> [Float] in
                    [0, images.slice(i..<(i + 1)).sum() - 0.5]
                })
        }
        var spike = [Float](repeating: 0, count: 9)
        spike[4] = 1
        let bright = [Float](repeating: 1, count: 9)
        let images = Tensor(shape: [4, 1, 3, 3], storage: spike + spike + bright + [Float](repeating: 0, count: 9))
        XCTAssertEqual(classifier.predictions(images), [1, 1, 1, 0], "unfiltered classes")
        let result = FilterPipeline.evaluate(
            images: images, flagged: [false, true, false, false],
            isAdversarial: [true, true, false, false], labels: [0, 0, 1, 1],
            classifier: classifier, filterSize: 2)
        // spike accepted -> filtered -> 0 == label (right); spike rejected (right); bright -> 1 (right); dark -> 0 != 1.
        XCTAssertEqual(
            result,
            FilterPipeline.Result(
                total: 4, correct: 3, rejectedAdversarial: 1, rejectedClean: 0,
                acceptedCorrect: 2))
    }
}
