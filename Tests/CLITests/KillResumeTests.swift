import Foundation
import XCTest

/// Long runs survive (issue 7): dafar-train killed with SIGKILL or stopped with SIGINT in the
/// middle of an epoch resumes from its checkpoint to the same weights as an uninterrupted run
/// (same seed, one thread), and a loss that becomes NaN or infinite stops training with the
/// epoch and step while the last good checkpoint stays as it was.
final class KillResumeTests: XCTestCase {
    /// Progress lines go to standard error (not a terminal: one plain line per step here).
    var options: [String] { Reliability.dataOptions(Reliability.dataFolder).filter { $0 != "--quiet" } + Reliability.trainingSettings }

    /// Starts a training run and waits until it has finished steps 1 or more of epoch 2 of 3
    /// (so its epoch-1 checkpoint is on disk and the next one is not); returns the running tool.
    func startAndWaitForEpochTwo(output: String) throws -> Reliability.RunningTool {
        let run = try Reliability.start("dafar-train", options + ["--output", output])
        let midEpoch = run.waitFor(timeout: 120) { run.stderr.range(of: #"epoch 2/3 [1-3]/5"#, options: .regularExpression) != nil }
        XCTAssertTrue(midEpoch, "the run never reached the middle of epoch 2: \(run.stderr)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: output + ".checkpoint"), "no checkpoint after epoch 1")
        return run
    }

    func testKilledMidEpochResumesToTheUninterruptedWeights() throws {
        let reference = try Reliability.referenceModel.get()
        let output = try TinyData.temporaryDirectory().appendingPathComponent("model.safetensors").path
        let run = try startAndWaitForEpochTwo(output: output)
        kill(run.process.processIdentifier, SIGKILL)
        run.process.waitUntilExit()
        XCTAssertEqual(run.process.terminationReason, .uncaughtSignal, "the run should have died of SIGKILL")
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "the killed run must not have written a model")
        let checkpoint = try SafetensorsFile(output + ".checkpoint")
        XCTAssertEqual(checkpoint.metadata["checkpoint_epoch"], "1", "the last complete checkpoint is the one of epoch 1")
        XCTAssertEqual(checkpoint.metadata["checkpoint_step"], "0")

        let resumed = try Reliability.run("dafar-train", options + ["--quiet", "--resume", "--output", output])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        try Reliability.assertSameTensors(output, reference, "killed and resumed vs uninterrupted")
    }

    func testInterruptedWithSIGINTWritesACheckpointAndResumes() throws {
        let reference = try Reliability.referenceModel.get()
        let output = try TinyData.temporaryDirectory().appendingPathComponent("model.safetensors").path
        let run = try startAndWaitForEpochTwo(output: output)
        kill(run.process.processIdentifier, SIGINT)
        let result = run.wait(timeout: 60)
        XCTAssertEqual(result.status, 130, "Ctrl-C exits with 128 + SIGINT: \(result.stderr)")
        XCTAssertEqual(run.process.terminationReason, .exit, "stopped by itself, not killed by the signal")
        XCTAssertTrue(result.stderr.contains("interrupted: checkpoint written to \(output).checkpoint (epoch 2, step "), result.stderr)
        XCTAssertTrue(result.stderr.contains("continue with --resume"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "an interrupted run must not write the model")
        let checkpoint = try SafetensorsFile(output + ".checkpoint")
        XCTAssertEqual(checkpoint.metadata["checkpoint_epoch"], "1")
        let step = Int(checkpoint.metadata["checkpoint_step"] ?? "") ?? -1
        XCTAssertTrue((1..<5).contains(step), "the checkpoint is taken in the middle of epoch 2, at step \(step)")

        let resumed = try Reliability.run("dafar-train", options + ["--quiet", "--resume", "--output", output])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        try Reliability.assertSameTensors(output, reference, "interrupted mid-epoch and resumed vs uninterrupted")
    }

    /// Divergence: one good epoch with SGD, then a resumed run with a learning rate of 9.9 (the
    /// option allows up to 10): the weights blow up and the loss leaves the finite numbers in a
    /// later epoch. The finished model is untouched and the checkpoint left behind is the last
    /// one whose weights were all finite.
    func testNonFiniteLossNamesEpochAndStepAndKeepsTheLastGoodCheckpoint() throws {
        let output = try TinyData.temporaryDirectory().appendingPathComponent("model.safetensors").path
        let data = Reliability.dataOptions(Reliability.dataFolder)
        let sgd = ["--batch-size", "6", "--seed", "5", "--optimizer", "sgd", "--lr-schedule", "constant"]
        let good = try Reliability.run("dafar-train", data + sgd + ["--epochs", "1", "--learning-rate", "0.01", "--output", output])
        XCTAssertEqual(good.status, 0, good.stderr)
        let before = Reliability.snapshot([output])

        let diverging = try Reliability.run(
            "dafar-train", data + sgd + ["--epochs", "6", "--learning-rate", "9.9", "--resume", "--output", output])
        Reliability.assertCleanFailure(
            diverging, status: 70,
            [
                "NaN or infinite", "at epoch ", ", step ", "last good checkpoint is kept",
                "lower learning rate (options: --learning-rate"
            ], "diverging run")
        Reliability.assertUnchanged(before, "diverging run")  // the finished model

        let checkpoint = try SafetensorsFile(output + ".checkpoint")
        XCTAssertGreaterThan(checkpoint.tensors.count, 0)
        for (name, entry) in checkpoint.tensors where entry.dtype == "F32" {
            let finite = entry.bytes.withUnsafeBytes { raw in raw.bindMemory(to: Float.self).allSatisfy { $0.isFinite } }
            XCTAssertTrue(finite, "the kept checkpoint's \(name) holds NaN or infinity")
        }
    }
}
