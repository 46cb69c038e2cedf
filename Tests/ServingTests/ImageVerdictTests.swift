import DAFAR
import Foundation
import ImageFiles
import Tensors
import XCTest

/// `ImageVerdict.inspect` runs the loop of `DAFARModel.inspect` once and keeps the logits: its
/// classes, scores and flags must be the library's bit for bit, and its probabilities the softmax
/// of `DAFARModel.logits`.
final class ImageVerdictTests: XCTestCase {
    func testVerdictsAreDAFARModelInspectsBitForBitWithTheSoftmaxOfItsLogits() {
        let model = ServingFixture.makeModel()
        defer { Parallel.setThreadCount(1) }
        // (1 thread: 1 and 7 images; 2 threads: 7 images and a tensor that spans two chunks.)
        for (threads, counts) in [(1, [1, 7]), (2, [7, Tensor.defaultInferenceBatchSize + 13])] {
            Parallel.setThreadCount(threads)
            for count in counts {
                let images = ServingFixture.noise(count, seed: 60 + UInt64(count))
                let library = model.inspect(images)
                let logits = model.logits(images)  // [N, 10]
                let verdicts = ImageVerdict.inspect(model, images)
                let what = "\(count) images, \(threads) threads"
                XCTAssertEqual(verdicts.count, count, what)
                XCTAssertEqual(verdicts.map(\.predictedClass), library.map(\.predictedClass), what)
                XCTAssertEqual(verdicts.map(\.score.bitPattern), library.map(\.score.bitPattern), "\(what): scores bit for bit")
                XCTAssertEqual(verdicts.map(\.adversarial), library.map(\.isAdversarial), what)
                XCTAssertEqual(Set(verdicts.map(\.threshold)), [model.threshold!], what)
                for (i, verdict) in verdicts.enumerated() {
                    let row = logits.storage[(i * 10)..<((i + 1) * 10)]
                    XCTAssertEqual(verdict.probability, softmaxProbability(row, at: verdict.predictedClass), "\(what): image \(i)")
                }
                let flagged = library.filter(\.isAdversarial).count
                XCTAssert(count == 1 || (flagged > 0 && flagged < count), "\(what): \(flagged) flagged, the flags differ")

                // Another threshold: the same strict comparison at it.
                let median = library.map(\.score).sorted()[count / 2]
                let atMedian = ImageVerdict.inspect(model, images, threshold: median)
                XCTAssertEqual(atMedian.map(\.adversarial), library.map { $0.score > median }, what)
                XCTAssertEqual(Set(atMedian.map(\.threshold)), [median], what)
            }
        }
    }
}
