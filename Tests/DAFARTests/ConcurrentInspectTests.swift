import Tensors
import XCTest
@testable import DAFAR

/// `DAFARModel.inspect` from many tasks at once gives exactly the verdicts of serial calls: the
/// forward pass keeps no state between calls (scratch buffers are taken from and given back to a
/// locked pool), so dafar-serve or any other caller may share one model between threads.
final class ConcurrentInspectTests: XCTestCase {
    /// An untrained MNIST-architecture model with a detector calibrated at z = 0 on noise, so
    /// that some images are flagged and some are not.
    func makeModel() -> DAFARModel {
        let network = JointNetwork(architecture: .mnist, seed: 41)
        let detector = AnomalyDetector(inputSize: 784, hiddenSizes: [32, 16], seed: 42)
        let scores = DAFARModel(network: network, detector: detector).scores(noise(24, seed: 43))
        DetectorTraining.calibrate(detector, statisticsScores: scores, source: "validation", validationScores: scores, z: 0)
        return DAFARModel(network: network, detector: detector)
    }

    func noise(_ count: Int, seed: UInt64) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return Tensor(shape: [count, 1, 28, 28], storage: (0..<(count * 784)).map { _ in Float.random(in: 0...1, using: &generator) })
    }

    func testConcurrentInspectCallsGiveExactlyTheSerialVerdicts() async throws {
        defer { Parallel.setThreadCount(1) }
        let model = makeModel()
        // Requests of different sizes, so that concurrent calls need scratch buffers of different sizes.
        let sizes = [1, 3, 8, 1, 5, 2, 12, 4, 1, 6]
        let requests = sizes.enumerated().map { noise($1, seed: 100 + UInt64($0)) }
        for threads in [1, 2] {
            Parallel.setThreadCount(threads)  // the kernels' own parallel regions, inside every task as well
            let serial = requests.map { model.inspect($0) }
            let flagged = serial.joined().filter(\.isAdversarial).count
            let total = sizes.reduce(0, +)
            XCTAssert(flagged > 0 && flagged < total, "some images flagged and some not (\(flagged) of \(total)): the verdicts differ")
            for round in 0..<2 {
                let concurrent = try await withThrowingTaskGroup(of: (Int, [Verdict]).self) { group in
                    for (i, images) in requests.enumerated() {
                        group.addTask { (i, model.inspect(images)) }
                        group.addTask { (i, model.inspect(images)) }  // the same images twice at once
                    }
                    var answers: [[[Verdict]]] = Array(repeating: [], count: requests.count)
                    for try await (i, verdicts) in group { answers[i].append(verdicts) }
                    return answers
                }
                for (i, answers) in concurrent.enumerated() {
                    XCTAssertEqual(answers.count, 2)
                    for verdicts in answers {
                        XCTAssertEqual(
                            verdicts.map(\.predictedClass), serial[i].map(\.predictedClass),
                            "\(threads) threads, round \(round), request \(i)")
                        XCTAssertEqual(
                            verdicts.map(\.score.bitPattern), serial[i].map(\.score.bitPattern),
                            "\(threads) threads, round \(round), request \(i): scores bit for bit as serial calls")
                        XCTAssertEqual(verdicts, serial[i])
                    }
                }
            }
        }
    }
}
