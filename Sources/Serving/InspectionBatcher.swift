import DAFAR
import Foundation
import ImageFiles
import ServiceLifecycle
import Tensors

/// Why the batcher gave no verdicts.
public enum BatcherError: Error, Equatable, Sendable {
    /// The queue holds `limit` images already (or the request alone has more): answer 503.
    case queueFull(limit: Int)
    /// No verdict within the request timeout: answer 504.
    case timedOut
    /// The service is stopping and takes no new work: answer 503.
    case stopped
}

/// How the images of the requests collected in one batch go through the model.
public enum BatchMode: String, CaseIterable, Sendable {
    /// One `DAFARModel.inspect` call per request, the requests of a batch one after another:
    /// each request's verdicts are exactly those of `dafar-inspect` on a file holding its images.
    case perRequest = "per-request"
    /// One `DAFARModel.inspect` call on all the images of the batch (one forward pass up to 256).
    case combined
}

/// Collects concurrent inspect requests into batches and runs them, one batch at a time, on a
/// thread of its own (never on NIO's event loops).
///
/// A combined batch is closed when it holds `maxBatch` images or `maxWait` after its first
/// request came, whichever is first; a per-request batch is what is queued when the worker is
/// free (up to `maxBatch` images); a request is never split. At most `queueLimit` images wait at once;
/// more is refused at once (`BatcherError.queueFull`), never buffered.
public final class InspectionBatcher: Service, @unchecked Sendable {
    // @unchecked Sendable: `model` is touched only by the worker thread (after `init`), and
    // every other stored `var` is read and written only while `condition` is locked.

    /// Limits and batching.
    public struct Settings: Sendable {
        /// Images per batch at most (a single larger request still runs, alone).
        public var maxBatch: Int
        /// How long the first request of a batch waits for others.
        public var maxWait: Duration
        /// Images waiting at most; a request that would pass it gets 503.
        public var queueLimit: Int
        /// Time from enqueueing to verdict after which a request gets 504.
        public var timeout: Duration
        /// How a batch is run.
        public var mode: BatchMode

        /// Settings with `dafar-serve`'s defaults.
        public init(
            maxBatch: Int = 32, maxWait: Duration = .milliseconds(5), queueLimit: Int = 256,
            timeout: Duration = .seconds(10), mode: BatchMode = .perRequest
        ) {
            precondition(maxBatch >= 1 && queueLimit >= 1, "max batch and queue limit must be positive")
            self.maxBatch = maxBatch
            self.maxWait = maxWait
            self.queueLimit = queueLimit
            self.timeout = timeout
            self.mode = mode
        }
    }

    /// `[C, H, W]` of the images the model reads.
    public let imageShape: [Int]
    /// The settings given at creation.
    public let settings: Settings
    private let model: DAFARModel
    private let metrics: ServiceMetrics
    private let condition = NSCondition()
    private var pending: [PendingInspection] = []
    private var queuedImages = 0
    private var stopping = false
    private var workerDone = false

    /// Starts the worker thread for `model` (which must have a calibrated detector). The caller
    /// hands `model` over: nothing else may use it afterwards.
    public init(model: DAFARModel, settings: Settings, metrics: ServiceMetrics) {
        precondition(model.threshold != nil, "the batcher needs a model with a calibrated detector")
        self.model = model
        self.imageShape = model.inputShape
        self.settings = settings
        self.metrics = metrics
        let thread = Thread { [self] in work() }
        thread.name = "dafar-inspect-batcher"
        thread.start()
    }

    /// The verdicts on `images` (`[N, C, H, W]`, fitting the model), in order.
    /// - Throws: `BatcherError` when the queue is full, the timeout passes or the service stops.
    public func inspect(_ images: Tensor) async throws -> [ImageVerdict] {
        try await answer(PendingInspection(images: images, explains: false)).verdicts
    }

    /// The verdicts on `images` with their explanations (`ImageExplanation`), in order. The
    /// verdicts are those of a per-request batch whatever the batch mode: bit for bit what
    /// `dafar-inspect` prints for a file holding these images (and its `--explain` strips).
    /// - Throws: `BatcherError` as `inspect`.
    public func explain(_ images: Tensor) async throws -> [(verdict: ImageVerdict, explanation: ImageExplanation)] {
        let answer = try await answer(PendingInspection(images: images, explains: true))
        return Array(zip(answer.verdicts, answer.explanations ?? []))
    }

    /// Queues `entry` and waits for its answer, at most the request timeout.
    private func answer(_ entry: PendingInspection) async throws -> InspectionAnswer {
        try enqueue(entry)
        let timeout = settings.timeout
        let timer = Task {
            do {
                try await Task.sleep(for: timeout)
                entry.finish(.failure(BatcherError.timedOut))
            } catch {}  // cancelled: the verdicts came first
        }
        defer { timer.cancel() }
        return try await entry.answer()
    }

    /// Queues `entry`, or refuses it when stopping or when the queue would pass its limit.
    private func enqueue(_ entry: PendingInspection) throws {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { throw BatcherError.stopped }
        guard queuedImages + entry.images.batchSize <= settings.queueLimit else {
            throw BatcherError.queueFull(limit: settings.queueLimit)
        }
        pending.append(entry)
        queuedImages += entry.images.batchSize
        metrics.queueDepth.set(Double(queuedImages))
        condition.signal()
    }

    /// Stops taking requests, lets the worker finish every queued one, and returns when it has.
    public func shutDown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !workerDone { condition.wait() }
        condition.unlock()
    }

    /// Service: waits for graceful shutdown (after the HTTP server has finished its requests,
    /// because Hummingbird stops its server before the services it was given), then drains.
    public func run() async throws {
        try? await gracefulShutdown()
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread { [self] in
                shutDown()
                done.resume()
            }
        }
    }

    /// The worker thread: take a batch, run it, repeat; exit when stopping and the queue is empty.
    private func work() {
        while let batch = nextBatch() {
            let live = batch.filter { !$0.isFinished }  // timed out while queued: not worth a forward pass
            guard !live.isEmpty else { continue }
            let imageCount = live.reduce(0) { $0 + $1.images.batchSize }
            metrics.batchSize.record(Double(imageCount))
            // Explanations always run per request (their verdicts are dafar-inspect's); the other
            // requests of a combined batch share one forward pass.
            let shared = settings.mode == .combined ? live.filter { !$0.explains } : []
            let sharedVerdicts = shared.isEmpty ? [] : ImageVerdict.inspect(model, Tensor.concatenate(shared.map(\.images)))
            var start = 0
            let answers = live.map { entry -> InspectionAnswer in
                if settings.mode == .combined && !entry.explains {
                    defer { start += entry.images.batchSize }
                    return InspectionAnswer(verdicts: Array(sharedVerdicts[start..<(start + entry.images.batchSize)]), explanations: nil)
                }
                return InspectionAnswer(
                    verdicts: ImageVerdict.inspect(model, entry.images),
                    explanations: entry.explains ? ImageExplanation.explain(model, entry.images) : nil)
            }
            metrics.images.increment(by: Int64(imageCount))  // before answering: a client that reads /metrics next sees them
            for (entry, answer) in zip(live, answers) { entry.finish(.success(answer)) }
        }
        condition.lock()
        workerDone = true
        condition.broadcast()
        condition.unlock()
    }

    /// Blocks until a batch is ready (see the type's summary) and takes it off the queue; nil
    /// when stopping with nothing queued.
    private func nextBatch() -> [PendingInspection]? {
        condition.lock()
        defer { condition.unlock() }
        while pending.isEmpty && !stopping { condition.wait() }
        guard !pending.isEmpty else { return nil }
        // per-request batches run one forward pass per request anyway: waiting for company
        // would only add latency, so they take what is queued now (measured: 135 against 515
        // requests/s at concurrency 1 with a 5 ms wait).
        if settings.mode == .combined {
            let closesAt = Date().addingTimeInterval(Self.seconds(settings.maxWait))
            while !stopping && queuedImages < settings.maxBatch && condition.wait(until: closesAt) {}
        }
        var batch: [PendingInspection] = []
        var images = 0
        while let first = pending.first, batch.isEmpty || images + first.images.batchSize <= settings.maxBatch {
            batch.append(pending.removeFirst())
            images += first.images.batchSize
        }
        queuedImages -= images
        metrics.queueDepth.set(Double(queuedImages))
        return batch
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) * 1e-18
    }
}

/// What the worker gives a request: its verdicts, and their explanations when it asked for them.
struct InspectionAnswer: Sendable {
    var verdicts: [ImageVerdict]
    var explanations: [ImageExplanation]?
}

/// One request waiting for its verdicts: resumed exactly once, by the worker or by the timeout,
/// whichever comes first, whether or not the request has started waiting yet.
final class PendingInspection: @unchecked Sendable {
    // @unchecked Sendable: `result` and `continuation` are guarded by `lock`.
    let images: Tensor
    /// True when the request wants explanations beside its verdicts.
    let explains: Bool
    private let lock = NSLock()
    private var result: Result<InspectionAnswer, BatcherError>?
    private var continuation: CheckedContinuation<InspectionAnswer, Error>?

    init(images: Tensor, explains: Bool) {
        self.images = images
        self.explains = explains
    }

    /// True once verdicts or an error were given.
    var isFinished: Bool { lock.withLock { result != nil } }

    /// Gives the outcome; later calls do nothing.
    func finish(_ outcome: Result<InspectionAnswer, BatcherError>) {
        let waiting: CheckedContinuation<InspectionAnswer, Error>? = lock.withLock {
            guard result == nil else { return nil }
            result = outcome
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume(with: outcome.mapError { $0 as Error })
    }

    /// Waits for the outcome.
    func answer() async throws -> InspectionAnswer {
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<InspectionAnswer, Error>) in
            let ready: Result<InspectionAnswer, BatcherError>? = lock.withLock {
                if result == nil { continuation = waiter }
                return result
            }
            if let ready { waiter.resume(with: ready.mapError { $0 as Error }) }
        }
    }
}
