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

    func testAnImageGetsTheSameScoreBitsAloneAndInsideABatchOfOthers() async throws {
        let reference = ServingFixture.makeModel()
        let images = ServingFixture.noise(12, seed: 31)
        let alone = (0..<12).map { ImageVerdict.inspect(reference, images.slice($0..<($0 + 1)))[0] }
        defer { Parallel.setThreadCount(1) }
        for (mode, threads) in [(BatchMode.perRequest, 1), (.combined, 1), (.combined, 2)] {
            let metrics = ServiceMetrics()
            // 12 images close the batch at once; the 2 s wait only has to outlast the task start-up.
            let batcher = InspectionBatcher(model: ServingFixture.makeModel(),
                                            settings: .init(maxBatch: 12, maxWait: .seconds(2), mode: mode), metrics: metrics)
            Parallel.setThreadCount(threads)  // after makeModel, which sets 1
            let served = try await serveConcurrently(images, through: batcher)
            batcher.shutDown()
            XCTAssertEqual(samples(metrics, "dafar_batch_size_count"), 1, "\(mode), \(threads) threads: the twelve requests shared one batch")
            XCTAssertEqual(samples(metrics, "dafar_batch_size_sum"), 12, "\(mode), \(threads) threads")
            for i in 0..<12 {
                XCTAssertEqual(served[i].score.bitPattern, alone[i].score.bitPattern,
                               "\(mode), \(threads) threads: image \(i) scored \(served[i].score) in a batch of 12 and \(alone[i].score) alone")
                XCTAssertEqual(served[i], alone[i], "\(mode), \(threads) threads: image \(i)")
            }
        }
    }

    func testBatchesStopAtMaxBatchAndEveryRequestIsAnswered() async throws {
        let reference = ServingFixture.makeModel()
        let images = ServingFixture.noise(40, seed: 32)
        let metrics = ServiceMetrics()
        let batcher = InspectionBatcher(model: ServingFixture.makeModel(),
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
