import ArgumentParser
import CommandSupport
import DAFAR
import Foundation
import Serving
import Tensors
import ToolkitCore

extension BatchMode: ExpressibleByArgument {}

/// `dafar-serve`: DAFAR's verdicts over HTTP (the routes and batching are in the Serving module).
struct DAFARServe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dafar-serve",
        abstract: "Answer 'is this image adversarial?' over HTTP with DAFAR's verdict (micro-batched, with Prometheus metrics).",
        discussion: """
            Endpoints: POST /v1/inspect with a PNG body (Content-Type: image/png) or a JSON body (application/json: \
            {"pixels": P} for one image, {"images": [P, ...]} for several; P is [H][W] or [C][H][W], values in [0, 1]) \
            answers {"verdicts": [{"index", "predicted_class", "probability", "score", "threshold", "adversarial"}, ...]}, \
            the fields and values dafar-inspect prints for the same image. GET /healthz, GET /metrics (Prometheus text).

            Refusals are JSON {"error": "..."}: 400 malformed PNG or JSON or a wrong image shape (both shapes named), \
            413 body over --max-body-bytes, 415 another Content-Type, 503 with Retry-After when --queue-limit images \
            already wait, 504 after --timeout-ms.

            Once listening it prints one line on standard output: listening on http://HOST:PORT. SIGTERM or SIGINT: \
            stop accepting, finish the requests in flight, exit 0.

            Example: dafar-serve --model runs/model.safetensors --detector runs/detector.safetensors --port 8080
            """)

    @OptionGroup var runtime: RuntimeOptions

    @Option(help: "Model written by dafar-train.")
    var model: String

    @Option(help: "Detector written by dafar-detector for this model (its active threshold gives the verdicts).")
    var detector: String

    @Option(help: "Address to listen on (127.0.0.1: this machine only).")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free port (printed on standard output).")
    var port = 8080

    @Option(help: "Images per batch at most (1...256): concurrent requests are collected into one batch up to this many images.")
    var maxBatch = 32

    @Option(
        help:
            "Milliseconds the first request of a combined batch waits for others (0...1000); per-request batches take what is queued and never wait."
    )
    var maxWaitMs = 5

    @Option(help: "Images waiting at most; a request that would exceed it gets 503 with Retry-After (1...65536).")
    var queueLimit = 256

    @Option(help: "Largest request body in bytes; larger bodies get 413 (1024...268435456).")
    var maxBodyBytes = 1 << 20

    @Option(help: "Milliseconds from queueing to verdict after which a request gets 504 (1...600000).")
    var timeoutMs = 10_000

    @Option(
        help:
            "How a batch runs: per-request (one forward pass per request, back to back: verdicts bit for bit those of dafar-inspect on the same file) or combined (one forward pass for the whole batch: faster; scores may differ from a lone image's in the last bits)."
    )
    var batchMode: BatchMode = .perRequest

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535, got \(port)") }
        guard (1...256).contains(maxBatch) else { throw ValidationError("--max-batch must be between 1 and 256, got \(maxBatch)") }
        guard (0...1000).contains(maxWaitMs) else { throw ValidationError("--max-wait-ms must be between 0 and 1000, got \(maxWaitMs)") }
        guard (1...65536).contains(queueLimit) else {
            throw ValidationError("--queue-limit must be between 1 and 65536, got \(queueLimit)")
        }
        guard (1024...(1 << 28)).contains(maxBodyBytes) else {
            throw ValidationError("--max-body-bytes must be between 1024 and 268435456, got \(maxBodyBytes)")
        }
        guard (1...600_000).contains(timeoutMs) else {
            throw ValidationError("--timeout-ms must be between 1 and 600000, got \(timeoutMs)")
        }
        guard !host.isEmpty else { throw ValidationError("--host needs an address") }
    }

    func run() throws {
        try reportingErrors {
            runtime.apply()
            try checkInputFile(model, what: "model")
            try checkInputFile(detector, what: "detector")
            let dafar = try DAFARModel(contentsOf: URL(fileURLWithPath: model), detector: URL(fileURLWithPath: detector))
            let settings = DetectionService.Settings(
                host: host, port: port, maxBodyBytes: maxBodyBytes,
                batching: .init(
                    maxBatch: maxBatch, maxWait: .milliseconds(maxWaitMs), queueLimit: queueLimit,
                    timeout: .milliseconds(timeoutMs), mode: batchMode))
            let service = DetectionService(model: dafar, settings: settings) { host, port in
                print("listening on http://\(host):\(port)")
                fflush(nil)  // every stream: so that a test or script reading the pipe sees the line at once
            }
            try runBlocking { try await service.runService() }
        }
    }
}

/// Runs `body` on the concurrency runtime and waits for it on this (the main) thread.
func runBlocking(_ body: @escaping @Sendable () async throws -> Void) throws {
    final class Outcome: @unchecked Sendable {  // written once by the task, read after `wait`
        var error: Error?
    }
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { try await body() } catch { outcome.error = error }
        done.signal()
    }
    done.wait()
    if let error = outcome.error { throw ServeError("the service stopped: \(error)", cause: .internalFailure) }
}

/// A problem `dafar-serve` reports in one line with its sysexits status.
struct ServeError: ToolkitError {
    let description: String
    let cause: ErrorCause
    init(_ description: String, cause: ErrorCause) {
        self.description = description
        self.cause = cause
    }
}

DAFARServe.mainReportingOneLine()
