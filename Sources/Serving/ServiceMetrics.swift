import Prometheus

/// How a request to `POST /v1/inspect` or `POST /v1/explain` ended: the `outcome` label of `dafar_requests_total`.
public enum RequestOutcome: String, CaseIterable, Sendable {
    /// 200: verdicts answered.
    case ok
    /// 400: a malformed PNG or JSON body, or an image of the wrong shape or values.
    case badRequest = "bad_request"
    /// 413: the body (or its number of images) is over the limit.
    case tooLarge = "too_large"
    /// 415: neither `image/png` nor `application/json`.
    case unsupportedMediaType = "unsupported_media_type"
    /// 503: the queue was full.
    case queueFull = "queue_full"
    /// 504: no verdict within `--timeout-ms`.
    case timeout
    /// 503: the service was shutting down.
    case shuttingDown = "shutting_down"
    /// 500: the explanation's pictures could not be encoded.
    case internalError = "internal_error"
}

/// The service's Prometheus metrics, in one registry that `GET /metrics` writes out.
///
/// - `dafar_requests_total{outcome}`: inspect and explain requests by outcome;
/// - `dafar_images_total`, `dafar_images_flagged_total`: images given a verdict, and flagged;
/// - `dafar_request_duration_seconds`: latency of inspect and explain requests (every outcome), histogram;
/// - `dafar_batch_size`: images per forward batch, histogram (its `_sum / _count` is the mean);
/// - `dafar_queue_depth`: images waiting for the model now.
public final class ServiceMetrics: Sendable {
    /// The registry every metric lives in.
    public let registry: PrometheusCollectorRegistry
    let requests: [RequestOutcome: Counter]
    let images: Counter
    let flagged: Counter
    let latency: DurationHistogram
    let batchSize: ValueHistogram
    let queueDepth: Gauge

    /// Creates the metrics in a fresh registry (one per service, so tests do not share counts).
    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        var requests: [RequestOutcome: Counter] = [:]
        for outcome in RequestOutcome.allCases {
            requests[outcome] = registry.makeCounter(
                name: "dafar_requests_total", labels: [("outcome", outcome.rawValue)],
                help: "Inspect and explain requests by outcome.")
        }
        self.requests = requests
        images = registry.makeCounter(name: "dafar_images_total", help: "Images given a verdict.")
        flagged = registry.makeCounter(name: "dafar_images_flagged_total", help: "Images flagged as adversarial.")
        latency = registry.makeDurationHistogram(
            name: "dafar_request_duration_seconds",
            buckets: [
                .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(20),
                .milliseconds(50), .milliseconds(100), .milliseconds(200), .milliseconds(500), .seconds(1), .seconds(5)
            ],
            help: "Latency of inspect and explain requests, from the first byte read to the answer.")
        batchSize = registry.makeValueHistogram(
            name: "dafar_batch_size", buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
            help: "Images per forward batch.")
        queueDepth = registry.makeGauge(name: "dafar_queue_depth", help: "Images waiting for the model.")
    }

    /// Counts one finished inspect request.
    func record(_ outcome: RequestOutcome, duration: Duration) {
        requests[outcome]!.increment()
        latency.record(duration)
    }

    /// The Prometheus text exposition of every metric.
    public func text() -> String { registry.emitToString() }
}
