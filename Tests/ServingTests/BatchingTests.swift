import DAFAR
import Foundation
import ImageFiles
import Serving
import Tensors
import XCTest

/// The batcher: concurrent requests share batches, and an image's verdict does not depend on
/// the batch it was served in.
final class BatchingTests: XCTestCase {
    /// Sends each image of `images` as its own request, all at once, and returns the verdicts in order.
    func serveConcurrently(_ images: Tensor, through batcher: InspectionBatcher) async throws -> [ImageVerdict] {
        try await withThrowingTaskGroup(of: (Int, [ImageVerdict]).self) { group in
            for i in 0..<images.batchSize {
                let image = images.slice(i..<(i + 1))
                group.addTask { (i, try await batcher.inspect(image)) }
            }
            var verdicts = [ImageVerdict?](repeating: nil, count: images.batchSize)
            for try await (i, answer) in group {
                XCTAssertEqual(answer.count, 1)
                verdicts[i] = answer[0]
            }
            return verdicts.map { $0! }
        }
    }

    func samples(_ metrics: ServiceMetrics, _ name: String) -> Double? {
        for line in metrics.text().split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ")[1])
        }
        return nil
    }

    /// per-request: bit for bit what the image gets alone. combined: one forward pass for the
    /// batch, where a GEMM over more images may sum in another order: the score within a relative
    /// 1e-5 (measured on 64 MNIST-5k images and a trained model: 42 of 64 differed, by at most
    /// 2.9e-7 relative, no verdict changed), and the class the same.
    func testAnImageGetsTheSameScoreAloneAndInsideABatchOfOthers() async throws {
        let reference = ServingFixture.makeModel()
        let images = ServingFixture.noise(12, seed: 31)
        defer { Parallel.setThreadCount(1) }
        for (mode, threads) in [(BatchMode.perRequest, 1), (.perRequest, 2), (.combined, 1), (.combined, 2)] {
            let metrics = ServiceMetrics()
            // 12 images close the batch at once; the 2 s wait only has to outlast the task start-up.
            let batcher = InspectionBatcher(
                model: ServingFixture.makeModel(),
                settings: .init(maxBatch: 12, maxWait: .seconds(2), mode: mode), metrics: metrics)
            Parallel.setThreadCount(threads)  // after makeModel, which sets 1
            let alone = (0..<12).map { ImageVerdict.inspect(reference, images.slice($0..<($0 + 1)))[0] }
            let served = try await serveConcurrently(images, through: batcher)
            batcher.shutDown()
            let what = "\(mode), \(threads) threads"
            if mode == .combined {  // per-request batches do not wait for company
                XCTAssertEqual(samples(metrics, "dafar_batch_size_count"), 1, "\(what): the twelve requests shared one batch")
            }
            XCTAssertEqual(samples(metrics, "dafar_batch_size_sum"), 12, what)
            for i in 0..<12 {
                XCTAssertEqual(served[i].predictedClass, alone[i].predictedClass, "\(what): image \(i)")
                if mode == .perRequest {
                    XCTAssertEqual(
                        served[i].score.bitPattern, alone[i].score.bitPattern,
                        "\(what): image \(i) scored \(served[i].score) in a batch of 12 and \(alone[i].score) alone")
                    XCTAssertEqual(served[i], alone[i], "\(what): image \(i)")
                } else {
                    XCTAssertEqual(
                        served[i].score, alone[i].score, accuracy: 1e-5 * abs(alone[i].score),
                        "\(what): image \(i), score within a relative 1e-5 of its score alone")
                }
            }
        }
    }

    func testBatchesStopAtMaxBatchAndEveryRequestIsAnswered() async throws {
        let reference = ServingFixture.makeModel()
        let images = ServingFixture.noise(40, seed: 32)
        let metrics = ServiceMetrics()
        let batcher = InspectionBatcher(
            model: ServingFixture.makeModel(),
            settings: .init(maxBatch: 8, maxWait: .milliseconds(20), queueLimit: 64), metrics: metrics)
        let served = try await serveConcurrently(images, through: batcher)
        batcher.shutDown()
        XCTAssertEqual(served, (0..<40).map { ImageVerdict.inspect(reference, images.slice($0..<($0 + 1)))[0] })
        let batches = try XCTUnwrap(samples(metrics, "dafar_batch_size_count"))
        XCTAssertGreaterThanOrEqual(batches, 5, "40 images in batches of at most 8")
        XCTAssertEqual(samples(metrics, "dafar_batch_size_bucket{le=\"8.0\"}"), batches, "no batch above 8 images: \(metrics.text())")
        XCTAssertEqual(samples(metrics, "dafar_queue_depth"), 0)
    }

    func testAStoppedBatcherRefusesNewWork() async throws {
        let batcher = InspectionBatcher(model: ServingFixture.makeModel(), settings: .init(), metrics: ServiceMetrics())
        batcher.shutDown()
        do {
            _ = try await batcher.inspect(ServingFixture.noise(1, seed: 33))
            XCTFail("a stopped batcher answered")
        } catch let error as BatcherError {
            XCTAssertEqual(error, .stopped)
        }
    }
}
