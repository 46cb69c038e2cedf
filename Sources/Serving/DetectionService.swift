import DAFAR
import Hummingbird
import Logging

/// `dafar-serve` as a Hummingbird application: the routes of `InspectionRoutes` in front of an
/// `InspectionBatcher`, run under swift-service-lifecycle.
///
/// On SIGTERM or SIGINT (`runService()`), the server stops accepting connections and finishes
/// the requests it has, then the batcher finishes what is queued, then `runService` returns.
public struct DetectionService: Sendable {
    /// Where to listen, and the limits.
    public struct Settings: Sendable {
        /// Address to bind (`127.0.0.1` for loopback only).
        public var host: String
        /// Port to bind; 0 picks a free one (see `onListening`).
        public var port: Int
        /// Request bodies above this many bytes get 413.
        public var maxBodyBytes: Int
        /// Batching, queue and timeout.
        public var batching: InspectionBatcher.Settings

        /// Settings with `dafar-serve`'s defaults.
        public init(
            host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = 1 << 20,
            batching: InspectionBatcher.Settings = .init()
        ) {
            self.host = host
            self.port = port
            self.maxBodyBytes = maxBodyBytes
            self.batching = batching
        }
    }

    /// The metrics `GET /metrics` shows.
    public let metrics: ServiceMetrics
    /// The batcher that owns the model.
    public let batcher: InspectionBatcher
    /// The Hummingbird application (router, server, and the batcher as a service).
    public let application: Application<RouterResponder<BasicRequestContext>>

    /// Builds the service around `model`, which it takes over (see `InspectionBatcher`).
    /// `onListening` is called with the bound host and port once the server accepts connections.
    public init(
        model: DAFARModel, settings: Settings, logger: Logger? = nil,
        onListening: @escaping @Sendable (String, Int) async -> Void = { _, _ in }
    ) {
        let metrics = ServiceMetrics()
        let batcher = InspectionBatcher(model: model, settings: settings.batching, metrics: metrics)
        let router = InspectionRoutes.router(batcher: batcher, metrics: metrics, maxBodyBytes: settings.maxBodyBytes)
        var log = logger ?? Logger(label: "dafar-serve")
        if logger == nil { log.logLevel = .warning }
        self.metrics = metrics
        self.batcher = batcher
        self.application = Application(
            router: router,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "dafar-serve"),
            services: [batcher],
            onServerRunning: { channel in
                await onListening(settings.host, channel.localAddress?.port ?? settings.port)
            },
            logger: log)
    }

    /// Runs until SIGTERM or SIGINT, then shuts down gracefully (see the type's summary).
    public func runService() async throws {
        try await application.runService()
    }
}
